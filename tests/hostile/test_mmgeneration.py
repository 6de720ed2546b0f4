"""Hostile and malformed MMGeneration/mmagic checkpoints through the command line: one `error:` line (exit 2)
under 4 GiB of address space, nothing in the file runs."""

from __future__ import annotations

import argparse
import pathlib

import pytest
import torch

from tests.formats.mmgen_writer import checkpoint, save, small_discriminator, small_generator
from tests.hostile.harness import run_refused
from tests.hostile.torch_zip_tampering import hostile_data_pkl, with_members


def test_a_pth_of_another_model_lists_its_keys_and_the_layouts(tmp_path):
    other = {"meta": {"mmcv_version": "1.3"}, "state_dict": {"backbone.conv1.weight": torch.zeros(2),
                                                              "head.fc.weight": torch.zeros(2)}}
    line = run_refused(["info", "--network", str(save(tmp_path / "resnet.pth", other))], cwd=tmp_path,
                       expect="its state_dict holds backbone., head.")
    assert "keys meta, state_dict" in line and "generator_ema." in line and "convert_weight.py" in line


@pytest.mark.parametrize("change, expect", [
    (lambda s: s.pop("to_rgbs.0.bias"), "missing to_rgbs.0.bias"),
    (lambda s: s.update({"convs.0.noise_injector.extra": torch.zeros(1)}), "unexpected convs.0.noise_injector.extra"),
    (lambda s: s.update({"style_mapping.2.linear.weight_orig": torch.zeros(24, 7)}),
     "style_mapping.2.linear.weight_orig has shape [24, 7], expected [24, 24]"),
    (lambda s: s.update({"constant_input.input": torch.zeros(3)}), "constant_input.input has shape [3]"),
    (lambda s: s.update({"injected_noise_0": torch.zeros(1, 1, 5, 5)}), "injected_noise_0 has shape [1, 1, 5, 5]"),
    (lambda s: s.update({"conv1.activate.bias": [1.0] * 32}), "not a float tensor"),
    (lambda s: s.update({"w_avg": torch.zeros(3, 5)}), "w_avg is [3, 5]"),
])
def test_a_generator_with_missing_extra_or_misfit_tensors(tmp_path, change, expect):
    state = small_generator()
    change(state)
    path = save(tmp_path / "bad.pth", checkpoint(g_ema=state))
    run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)


def test_a_discriminator_that_does_not_fit(tmp_path):
    d = small_discriminator()
    d["final_linear.1.linear.weight_orig"] = torch.zeros(2, 32)
    path = save(tmp_path / "bad.pth", checkpoint(g_ema=small_generator(), d=d))
    run_refused(["info", "--network", str(path)], cwd=tmp_path,
                expect="final_linear.1.linear.weight_orig has shape [2, 32]")


@pytest.mark.parametrize("meta, expect", [
    ({"config": pathlib.PurePosixPath("configs/x.py")}, "pathlib.PurePosixPath"),  # refused by the unpickler
    ({"env_info": argparse.Namespace(cuda=True)}, "meta in"),  # an allowed record, but not plain data
    ({"iter": torch.zeros(3)}, "holds a Tensor"),
    ("a string", "not a dict"),
])
def test_a_meta_holding_an_unexpected_object(tmp_path, meta, expect):
    path = save(tmp_path / "meta.pth", checkpoint(g_ema=small_generator(), meta=meta))
    run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)


@pytest.mark.parametrize("module, name", [("os", "system"), ("subprocess", "call"), ("builtins", "eval")])
def test_a_malicious_data_pkl_runs_nothing(tmp_path, module, name):
    marker = tmp_path / "pwned"
    argument = f"touch {marker}" if module == "os" else (f"open({str(marker)!r}, 'w')" if name == "eval"
                                                          else str(marker))
    save(tmp_path / "evil.pth", checkpoint(g_ema=small_generator()))
    path = with_members(tmp_path / "evil.pth", {"/data.pkl": hostile_data_pkl(module, name, argument)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect=f"'{module}.{name}'")
    assert not marker.exists()
