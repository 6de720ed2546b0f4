"""Bad TensorFlow pickles: unsupported networks, mid-training snapshots, missing variables, stored code."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import stylegan
from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats import describe_source
from tests.formats.tf_writer import (
    TFNet,
    stylegan1_discriminator,
    stylegan1_generator,
    stylegan1_snapshot,
    stylegan2_discriminator,
    stylegan2_generator,
    stylegan2_snapshot,
    tf_pickle_bytes,
    write_tf_pickle,
)


def error_for(path) -> str:
    with pytest.raises(StyleGANError) as info:
        stylegan.load_network(path)
    return str(info.value)


def test_unsupported_generator_types_are_named(tmp_path):
    G = stylegan2_generator(1)
    G.components["synthesis"].build_func_name = "G_synthesis_stylegan_revised"  # StyleGAN2 configs B-D
    path = write_tf_pickle(tmp_path / "revised.pkl", (G, stylegan2_discriminator(2), G))
    message = error_for(path)
    assert "unsupported TensorFlow network: G_main with G_synthesis_stylegan_revised" in message
    assert "supported:" in message
    G = TFNet("G", "G_paper", {"resolution": 16}, {"lod": np.float32(0)})  # a Progressive GAN generator
    assert "unsupported TensorFlow network: G_paper" in error_for(write_tf_pickle(tmp_path / "pg.pkl", (G, G, G)))


def test_unsupported_discriminator_is_named(tmp_path):
    G = stylegan2_generator(1)
    D = stylegan2_discriminator(2)
    D.build_func_name = "D_stylegan"
    message = error_for(write_tf_pickle(tmp_path / "d.pkl", (G, D, G)))
    assert "D in" in message and "unsupported TensorFlow discriminator: D_stylegan" in message


@pytest.mark.parametrize("which", ["G", "D"])
def test_a_snapshot_with_a_lod_out_of_range_is_refused(tmp_path, which):
    G, D, Gs = stylegan1_snapshot(0)
    if which == "G":
        G = stylegan1_generator(0, lod=3.0)  # 16x16: lods 0 (full resolution) to 2 (4x4)
    else:
        D = stylegan1_discriminator(2, lod=-0.5)
    message = error_for(write_tf_pickle(tmp_path / "growing.pkl", (G, D, Gs)))
    assert f"{which} in" in message and "lod is" in message and "outside 0 to 2" in message


def test_missing_variables_are_named(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    del Gs.components["synthesis"].variables["8x8/Conv0_up/mod_bias"]
    message = error_for(write_tf_pickle(tmp_path / "missing.pkl", (G, D, Gs)))
    assert "G_ema in" in message and "lacks the variable synthesis/8x8/Conv0_up/mod_bias" in message
    G, D, Gs = stylegan1_snapshot(0)
    del D.variables["4x4/Dense1/bias"]
    assert "lacks the variable 4x4/Dense1/bias" in error_for(write_tf_pickle(tmp_path / "missing1.pkl", (G, D, Gs)))


def test_variables_that_do_not_fit_are_refused(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    Gs.components["synthesis"].variables["8x8/Conv1/weight"] = np.zeros([3, 3, 5, 8], np.float32)
    message = error_for(write_tf_pickle(tmp_path / "shape.pkl", (G, D, Gs)))
    assert "synthesis.b8.conv1.weight has shape [8, 5, 3, 3], expected [8, 8, 3, 3]" in message
    G, D, Gs = stylegan2_snapshot(0)
    Gs.components["mapping"].variables["Dense7/weight"] = np.zeros([8, 8], np.float32)
    message = error_for(write_tf_pickle(tmp_path / "extra.pkl", (G, D, Gs)))
    assert "has variables this network variant does not use: mapping/Dense7/weight" in message


def test_unknown_v1_kwargs_and_unsupported_options_are_named(tmp_path):
    G = stylegan1_generator(0, extra_kwargs=dict(use_pixel_norm=True))
    message = error_for(write_tf_pickle(tmp_path / "a.pkl", (G, stylegan1_discriminator(1), G)))
    assert "use_pixel_norm=True, which this converter does not support" in message
    D = stylegan1_discriminator(1, extra_kwargs=dict(frobnicate=2))
    G = stylegan1_generator(0)
    assert "unknown TensorFlow kwargs: frobnicate=2" in error_for(write_tf_pickle(tmp_path / "b.pkl", (G, D, G)))


def payload_source(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('build_module_src was executed')\n"


def test_build_module_src_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    src = payload_source(marker)
    exec(compile(src, "payload", "exec"), {})  # the payload works when run ...
    assert marker.exists()
    marker.unlink()
    G, D, Gs = stylegan2_snapshot(0)
    for net in (G, D, Gs, *G.components.values(), *Gs.components.values()):
        net.build_module_src = src
    path = write_tf_pickle(tmp_path / "payload.pkl", (G, D, Gs))
    net = stylegan.load_network(path)  # ... and loading neither runs it nor fails
    assert describe_source(path) == "StyleGAN2 TensorFlow pickle"
    stylegan.save_network(net, tmp_path / "converted.safetensors")
    assert not marker.exists()
    assert "tensorflow" not in sys.modules and "dnnlib" not in sys.modules


def test_hostile_globals_inside_a_tf_pickle_are_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch '{marker}'",)

    G, D, Gs = stylegan2_snapshot(0)
    G.static_kwargs["resolution"] = Payload()
    path = tmp_path / "hostile.pkl"
    path.write_bytes(tf_pickle_bytes((G, D, Gs)))
    with pytest.raises(UnsafePickleError, match=r"'posix.system'.*not on the allow-list"):
        stylegan.load_network(path)
    assert not marker.exists()


NETWORK_NEWOBJ = b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81"  # GLOBAL, empty args, NEWOBJ


def test_the_network_stand_in_takes_its_state_once(tmp_path):
    """A pickle that BUILDs a network twice (to swap its state after it was checked) is refused, and so
    is one whose state is not a dict of the expected fields."""
    path = tmp_path / "twice.pkl"
    path.write_bytes(NETWORK_NEWOBJ + b"}b}b.")  # EMPTY_DICT BUILD, twice
    assert "corrupt (the pickle tries to change a TensorFlow network)" in error_for(path)
    path.write_bytes(NETWORK_NEWOBJ + b"K\x01b.")  # BUILD with the int 1
    assert "a TensorFlow network whose state is not a dict" in error_for(path)
    path.write_bytes(NETWORK_NEWOBJ + b"}b.")  # an empty state: no name, no variables
    assert "malformed" in error_for(path)
    path.write_bytes(NETWORK_NEWOBJ + b".")  # never given a state
    assert "without a readable state" in error_for(path)


def test_a_tf_pickle_that_is_not_a_snapshot(tmp_path):
    G = stylegan2_generator(0)
    path = write_tf_pickle(tmp_path / "pair.pkl", (G, G))
    assert "not a (G, D, Gs) network snapshot: it holds a tuple of 2" in error_for(path)
    # A lone generator is read as G_ema.
    net = stylegan.load_network(write_tf_pickle(tmp_path / "gs.pkl", G))
    assert set(k for k in net if k != "format") == {"G_ema"}


def test_mixed_families_are_refused(tmp_path):
    G = stylegan2_generator(0)
    v1 = stylegan1_generator(0)
    message = error_for(write_tf_pickle(tmp_path / "mixed.pkl", (v1, stylegan2_discriminator(1), G)))
    assert "G in" in message and "StyleGAN (v1) network" in message


def test_a_bad_resolution_is_named(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    Gs.static_kwargs["resolution"] = 12
    assert "resolution=12, expected a power of two >= 4" in error_for(write_tf_pickle(tmp_path / "r.pkl", (G, D, Gs)))


def test_a_malformed_variable_is_a_clear_error(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    Gs.components["synthesis"].variables["noise0"] = np.zeros([4], np.float32)  # should be [1, 1, 4, 4]
    message = error_for(write_tf_pickle(tmp_path / "m.pkl", (G, D, Gs)))
    assert "cannot convert G_ema in" in message and "unexpected form" in message
