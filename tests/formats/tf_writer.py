"""Test-only writer of TensorFlow-FORMAT network pickles (StyleGAN v1, StyleGAN2, StyleGAN2-ADA), no TF needed.

A TF snapshot is ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network`` objects, whose
``__getstate__`` gives ``{version, name, static_kwargs, components, build_module_src, build_func_name,
variables}`` (ADA adds input/output shapes and names). The variables here are random, with the names and
shapes the official build functions create (``G_main``/``G_mapping``/``G_synthesis_stylegan2``,
``D_stylegan2``; ADA's ``G_synthesis``/``D_main``; v1's ``G_style``/``G_mapping``/``G_synthesis``/
``D_basic``), derived here from the TF code's rules, independently of the package's converter.

A fake ``dnnlib.tflib.network`` module exists only while a file is written, so pickle names the class
as the official files do.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tests.formats.official_writer import installed_modules

DEFAULT_BUILD_SRC = "# the network's build module would be here; loaders must never execute it\n"


@dataclass
class TFNet:
    """What one Network pickles as; ``variables`` maps scoped names to numpy values."""

    name: str
    build_func_name: str
    static_kwargs: dict[str, Any]
    variables: dict[str, Any]
    components: dict[str, "TFNet"] = field(default_factory=dict)
    version: int = 4
    build_module_src: str = DEFAULT_BUILD_SRC

    def all_variables(self, prefix: str = "") -> dict[str, Any]:
        out = {prefix + k: v for k, v in self.variables.items()}
        for name, comp in self.components.items():
            out.update(comp.all_variables(f"{prefix}{name}/"))
        return out


@contextlib.contextmanager
def tf_network_class() -> Iterator[type]:
    """A ``dnnlib.tflib.network.Network`` class registered only while writing."""
    network = type("Network", (), {"__module__": "dnnlib.tflib.network"})
    network.__getstate__ = lambda self: self._state
    fakes = {name: types.ModuleType(name) for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    fakes["dnnlib.tflib.network"].Network = network
    with installed_modules(fakes):
        yield network


def _as_network(net: TFNet, network_class: type) -> Any:
    obj = network_class.__new__(network_class)
    state = dict(version=net.version, name=net.name, static_kwargs=dict(net.static_kwargs),
                 components={k: _as_network(v, network_class) for k, v in net.components.items()},
                 build_module_src=net.build_module_src, build_func_name=net.build_func_name,
                 variables=list(net.variables.items()))
    if net.version >= 5:  # ADA's extra fields
        state.update(input_shapes=[[None, 1]], output_shapes=[[None, 1]], input_names=["x"], output_names=["y"])
    obj._state = state
    return obj


def tf_pickle_bytes(nets: Any, protocol: int = 4) -> bytes:
    """``(G, D, Gs)`` (or one TFNet) as an official-format TF pickle."""
    with tf_network_class() as network:
        obj = tuple(_as_network(n, network) for n in nets) if isinstance(nets, tuple) else _as_network(nets, network)
        buffer = io.BytesIO()
        pickle.dump(obj, buffer, protocol=protocol)
    return buffer.getvalue()


def write_tf_pickle(path: Path, nets: Any, protocol: int = 4) -> Path:
    path.write_bytes(tf_pickle_bytes(nets, protocol))
    return path


class _Random:
    def __init__(self, seed: int, scale: float = 1.0):
        self.rng, self.scale = np.random.RandomState(seed), scale

    def __call__(self, *shape: int, scale: float | None = None) -> np.ndarray:
        return (self.rng.randn(*shape) * (self.scale if scale is None else scale)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# StyleGAN2 (TF) and StyleGAN2-ADA (TF)


def sg2_nf(stage: int, fmap_base: int, fmap_max: int) -> int:
    return int(np.clip(int(fmap_base / 2.0**stage), 1, fmap_max))


def stylegan2_generator(seed: int, *, ada: bool = False, c_dim: int = 0, resolution: int = 16, z_dim: int = 8,
                        w_dim: int = 8, img_channels: int = 3, mapping_layers: int = 2, fmap_base: int = 32,
                        fmap_max: int = 8, architecture: str = "skip", use_noise: bool = True,
                        extra_kwargs: dict | None = None, write_defaults: bool = True) -> TFNet:
    """A ``G_main`` network with random variables. StyleGAN2-TF conditioning is LabelConcat; ADA's is
    LabelEmbed (width = z_dim). Mapping width = w_dim (passed as mapping_fmaps for StyleGAN2-TF)."""
    r = _Random(seed, 0.5)
    nf = lambda s: sg2_nf(s, fmap_base, fmap_max)  # noqa: E731
    log2 = int(math.log2(resolution))
    kwargs: dict[str, Any] = dict(num_channels=img_channels, resolution=resolution, label_size=c_dim,
                                  latent_size=z_dim, dlatent_size=w_dim, mapping_layers=mapping_layers,
                                  fmap_base=fmap_base, fmap_max=fmap_max, architecture=architecture)
    if not ada:
        kwargs["mapping_fmaps"] = w_dim
    if ada:
        kwargs["use_noise"] = use_noise
    if write_defaults:
        kwargs.update(style_mixing_prob=0.9, truncation_psi=0.5)
    kwargs.update(extra_kwargs or {})

    mapping: dict[str, Any] = {}
    width = z_dim
    if c_dim and not ada:
        mapping["LabelConcat/weight"] = r(c_dim, z_dim, scale=1.0)
        width += z_dim
    elif c_dim:
        mapping["LabelEmbed/weight"] = r(c_dim, z_dim, scale=1.0)
        mapping["LabelEmbed/bias"] = r(z_dim)
        width += z_dim
    for i in range(mapping_layers):
        mapping[f"Dense{i}/weight"] = r(width, w_dim, scale=30.0)  # ~1/lrmul, as trained weights are
        mapping[f"Dense{i}/bias"] = r(w_dim, scale=30.0)
        width = w_dim

    syn: dict[str, Any] = {}
    num_layers = 2 * log2 - 2
    if use_noise:
        for i in range(num_layers - 1):
            res = 2 ** ((i + 5) // 2)
            syn[f"noise{i}"] = r(1, 1, res, res, scale=1.0)

    def layer(scope: str, cin: int, cout: int, k: int = 3, noise: bool = True, bias: bool = True) -> None:
        syn[f"{scope}/weight"] = r(k, k, cin, cout, scale=1.0)
        syn[f"{scope}/mod_weight"] = r(w_dim, cin, scale=1.0)
        syn[f"{scope}/mod_bias"] = r(cin, scale=0.3)
        if noise and use_noise:
            syn[f"{scope}/noise_strength"] = np.float32(r(1)[0])
        syn[f"{scope}/bias"] = r(cout)

    syn["4x4/Const/const"] = r(1, nf(1), 4, 4, scale=1.0)
    layer("4x4/Conv", nf(1), nf(1))
    if architecture == "skip":
        layer("4x4/ToRGB", nf(1), img_channels, k=1, noise=False)
    for res_log2 in range(3, log2 + 1):
        s = f"{2**res_log2}x{2**res_log2}"
        layer(f"{s}/Conv0_up", nf(res_log2 - 2), nf(res_log2 - 1))
        layer(f"{s}/Conv1", nf(res_log2 - 1), nf(res_log2 - 1))
        if architecture == "resnet":
            syn[f"{s}/Skip/weight"] = r(1, 1, nf(res_log2 - 2), nf(res_log2 - 1), scale=1.0)
        if architecture == "skip" or res_log2 == log2:
            layer(f"{s}/ToRGB", nf(res_log2 - 1), img_channels, k=1, noise=False)

    own: dict[str, Any] = {"dlatent_avg": r(w_dim)}
    if not ada:
        own["lod"] = np.float32(0)
    version = 5 if ada else 4
    synthesis_func = "G_synthesis" if ada else "G_synthesis_stylegan2"
    components = {
        "synthesis": TFNet("G_synthesis", synthesis_func, dict(kwargs), syn, version=version),
        "mapping": TFNet("G_mapping", "G_mapping", dict(kwargs, dlatent_broadcast=num_layers), mapping, version=version),
    }
    return TFNet("G", "G_main", kwargs, own, components, version=version)


def stylegan2_discriminator(seed: int, *, ada: bool = False, c_dim: int = 0, resolution: int = 16,
                            img_channels: int = 3, fmap_base: int = 32, fmap_max: int = 8,
                            architecture: str = "resnet", mbstd_group_size: int | None = None,
                            mapping_layers: int = 0, extra_kwargs: dict | None = None) -> TFNet:
    """A ``D_stylegan2`` (or ADA ``D_main``) network with random variables."""
    r = _Random(seed, 1.0)
    nf = lambda s: sg2_nf(s, fmap_base, fmap_max)  # noqa: E731
    log2 = int(math.log2(resolution))
    kwargs: dict[str, Any] = dict(num_channels=img_channels, resolution=resolution, label_size=c_dim,
                                  fmap_base=fmap_base, fmap_max=fmap_max, architecture=architecture)
    if mbstd_group_size is not None:
        kwargs["mbstd_group_size"] = mbstd_group_size
    if ada and mapping_layers:
        kwargs["mapping_layers"] = mapping_layers
    kwargs.update(extra_kwargs or {})
    v: dict[str, Any] = {}

    def conv(scope: str, cin: int, cout: int, k: int, bias: bool = True) -> None:
        v[f"{scope}/weight"] = r(k, k, cin, cout)
        if bias:
            v[f"{scope}/bias"] = r(cout, scale=0.2)

    for res_log2 in range(log2, 2, -1):
        s = f"{2**res_log2}x{2**res_log2}"
        if architecture == "skip" or res_log2 == log2:
            conv(f"{s}/FromRGB", img_channels, nf(res_log2 - 1), 1)
        conv(f"{s}/Conv0", nf(res_log2 - 1), nf(res_log2 - 1), 3)
        conv(f"{s}/Conv1_down", nf(res_log2 - 1), nf(res_log2 - 2), 3)
        if architecture == "resnet":
            conv(f"{s}/Skip", nf(res_log2 - 1), nf(res_log2 - 2), 1, bias=False)
    if architecture == "skip":
        conv("4x4/FromRGB", img_channels, nf(1), 1)
    mbstd = 0 if (not ada and mbstd_group_size is not None and mbstd_group_size <= 1) else 1
    conv("4x4/Conv", nf(1) + mbstd, nf(1), 3)
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = r(nf(1) * 16, nf(0)), r(nf(0), scale=0.2)
    if ada and c_dim:
        cmap = nf(0)
        v["LabelEmbed/weight"], v["LabelEmbed/bias"] = r(c_dim, cmap), r(cmap, scale=0.2)
        for i in range(mapping_layers):
            v[f"Mapping{i}/weight"], v[f"Mapping{i}/bias"] = r(cmap, cmap, scale=10.0), r(cmap, scale=2.0)
        v["Output/weight"], v["Output/bias"] = r(nf(0), cmap), r(cmap, scale=0.2)
    else:
        v["Output/weight"], v["Output/bias"] = r(nf(0), max(c_dim, 1)), r(max(c_dim, 1), scale=0.2)
    return TFNet("D", "D_main" if ada else "D_stylegan2", kwargs, v, version=5 if ada else 4)


def stylegan2_snapshot(seed: int = 0, **kwargs: Any) -> tuple[TFNet, TFNet, TFNet]:
    """(G, D, Gs) as a StyleGAN2(-ADA) TF training run pickles them. kwargs: ada, c_dim, resolution, ..."""
    shared = {"ada", "c_dim", "resolution", "img_channels", "fmap_base", "fmap_max"}
    return _snapshot(stylegan2_generator, stylegan2_discriminator, shared, seed, kwargs)


def _snapshot(generator: Any, discriminator: Any, shared_with_d: set[str], seed: int,
              kwargs: dict[str, Any]) -> tuple[TFNet, TFNet, TFNet]:
    """(G, D, Gs): two generators from ``kwargs`` (seeds ``seed``, ``seed + 1``), a discriminator (``seed + 2``)
    from the kwargs in ``shared_with_d`` plus ``kwargs['d_kwargs']``."""
    d_kwargs = {k: v for k, v in kwargs.items() if k in shared_with_d}
    d_kwargs.update(kwargs.pop("d_kwargs", {}))
    G, Gs = generator(seed, **kwargs), generator(seed + 1, **kwargs)
    Gs.name = "Gs"
    return G, discriminator(seed + 2, **d_kwargs), Gs


# --------------------------------------------------------------------------------------------------
# StyleGAN (v1)


def v1_nf(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def stylegan1_generator(seed: int, *, c_dim: int = 0, resolution: int = 16, z_dim: int = 8, w_dim: int = 8,
                        img_channels: int = 3, mapping_layers: int = 2, mapping_fmaps: int = 8, fmap_base: int = 32,
                        fmap_max: int = 8, lod: float = 0.0, synthesis_lod: float | None = None,
                        growing_layers: bool = True, extra_kwargs: dict | None = None) -> TFNet:
    """A ``G_style`` network with random variables, as a training run leaves it at ``lod`` (0 = finished),
    including the ToRGB layers of every growing phase (``growing_layers=False``: ToRGB_lod0 only, as the
    'fixed' structure builds it). ``synthesis_lod``: the synthesis network's own copy (default ``lod``)."""
    r = _Random(seed, 0.5)
    nf = lambda s: v1_nf(s, fmap_base, fmap_max)  # noqa: E731
    log2 = int(math.log2(resolution))
    kwargs: dict[str, Any] = dict(num_channels=img_channels, resolution=resolution, label_size=c_dim,
                                  latent_size=z_dim, dlatent_size=w_dim, mapping_layers=mapping_layers,
                                  mapping_fmaps=mapping_fmaps, fmap_base=fmap_base, fmap_max=fmap_max)
    kwargs.update(extra_kwargs or {})
    mapping: dict[str, Any] = {}
    width = z_dim
    if c_dim:
        mapping["LabelConcat/weight"] = r(c_dim, z_dim, scale=1.0)
        width = 2 * z_dim
    for i in range(mapping_layers):
        out = w_dim if i == mapping_layers - 1 else mapping_fmaps
        mapping[f"Dense{i}/weight"] = r(width, out, scale=50.0)  # ~1/lrmul
        mapping[f"Dense{i}/bias"] = r(out, scale=20.0)
        width = out
    syn: dict[str, Any] = {"lod": np.float32(lod if synthesis_lod is None else synthesis_lod)}
    num_layers = 2 * log2 - 2
    for i in range(num_layers):
        res = 2 ** (i // 2 + 2)
        syn[f"noise{i}"] = r(1, 1, res, res, scale=1.0)

    def epilogue(scope: str, ch: int) -> None:
        syn[f"{scope}/Noise/weight"] = r(ch)
        syn[f"{scope}/bias"] = r(ch)
        syn[f"{scope}/StyleMod/weight"] = r(w_dim, 2 * ch, scale=1.0)
        syn[f"{scope}/StyleMod/bias"] = r(2 * ch, scale=0.3)

    syn["4x4/Const/const"] = np.ones([1, nf(1), 4, 4], np.float32) + r(1, nf(1), 4, 4, scale=0.2)
    epilogue("4x4/Const", nf(1))
    syn["4x4/Conv/weight"] = r(3, 3, nf(1), nf(1), scale=1.0)
    epilogue("4x4/Conv", nf(1))
    for res_log2 in range(3, log2 + 1):
        s = f"{2**res_log2}x{2**res_log2}"
        syn[f"{s}/Conv0_up/weight"] = r(3, 3, nf(res_log2 - 2), nf(res_log2 - 1), scale=1.0)
        epilogue(f"{s}/Conv0_up", nf(res_log2 - 1))
        syn[f"{s}/Conv1/weight"] = r(3, 3, nf(res_log2 - 1), nf(res_log2 - 1), scale=1.0)
        epilogue(f"{s}/Conv1", nf(res_log2 - 1))
    for res_log2 in range(2, log2 + 1):
        lod_index = log2 - res_log2
        weight, bias = r(1, 1, nf(res_log2 - 1), img_channels, scale=1.0), r(img_channels)
        if growing_layers or lod_index == 0:  # drawn either way: the other variables do not depend on it
            syn[f"ToRGB_lod{lod_index}/weight"], syn[f"ToRGB_lod{lod_index}/bias"] = weight, bias
    own = {"lod": np.float32(lod), "dlatent_avg": r(w_dim, scale=0.3)}
    components = {
        "synthesis": TFNet("G_synthesis", "G_synthesis", dict(kwargs), syn, version=3),
        "mapping": TFNet("G_mapping", "G_mapping", dict(kwargs, dlatent_broadcast=num_layers), mapping, version=3),
    }
    return TFNet("G", "G_style", kwargs, own, components, version=3)


def stylegan1_discriminator(seed: int, *, c_dim: int = 0, resolution: int = 16, img_channels: int = 3,
                            fmap_base: int = 32, fmap_max: int = 8, lod: float = 0.0,
                            growing_layers: bool = True, extra_kwargs: dict | None = None) -> TFNet:
    """A ``D_basic`` network with random variables at ``lod`` (FromRGB layers of every growing phase included,
    or FromRGB_lod0 only with ``growing_layers=False``)."""
    r = _Random(seed, 1.0)
    nf = lambda s: v1_nf(s, fmap_base, fmap_max)  # noqa: E731
    log2 = int(math.log2(resolution))
    kwargs: dict[str, Any] = dict(num_channels=img_channels, resolution=resolution, label_size=c_dim,
                                  fmap_base=fmap_base, fmap_max=fmap_max)
    kwargs.update(extra_kwargs or {})
    v: dict[str, Any] = {"lod": np.float32(lod)}
    for res_log2 in range(log2, 1, -1):
        lod_index = log2 - res_log2
        weight, bias = r(1, 1, img_channels, nf(res_log2 - 1)), r(nf(res_log2 - 1), scale=0.2)
        if growing_layers or lod_index == 0:  # drawn either way: the other variables do not depend on it
            v[f"FromRGB_lod{lod_index}/weight"], v[f"FromRGB_lod{lod_index}/bias"] = weight, bias
    for res_log2 in range(log2, 2, -1):
        s = f"{2**res_log2}x{2**res_log2}"
        v[f"{s}/Conv0/weight"], v[f"{s}/Conv0/bias"] = r(3, 3, nf(res_log2 - 1), nf(res_log2 - 1)), r(nf(res_log2 - 1))
        v[f"{s}/Conv1_down/weight"] = r(3, 3, nf(res_log2 - 1), nf(res_log2 - 2))
        v[f"{s}/Conv1_down/bias"] = r(nf(res_log2 - 2))
    v["4x4/Conv/weight"], v["4x4/Conv/bias"] = r(3, 3, nf(1) + 1, nf(1)), r(nf(1))
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = r(nf(1) * 16, nf(0)), r(nf(0))
    v["4x4/Dense1/weight"], v["4x4/Dense1/bias"] = r(nf(0), max(c_dim, 1)), r(max(c_dim, 1))
    return TFNet("D", "D_basic", kwargs, v, version=3)


def stylegan1_snapshot(seed: int = 0, **kwargs: Any) -> tuple[TFNet, TFNet, TFNet]:
    """(G, D, Gs) as a StyleGAN (v1) TF training run pickles them."""
    shared = {"c_dim", "resolution", "img_channels", "fmap_base", "fmap_max", "lod"}
    return _snapshot(stylegan1_generator, stylegan1_discriminator, shared, seed, kwargs)


# --------------------------------------------------------------------------------------------------
# CelebA-HQ attribute classifiers (the `ls` metric): one Network per file, ProGAN D_paper or v1 D_basic


def attribute_classifier(seed: int, *, build_func: str = "D_paper", resolution: int = 16, fmap_base: int = 32,
                         fmap_max: int = 8, mbstd_group_size: int = 0, outputs: int = 1, lod: float = 0.0,
                         scale: float = 1.0, extra_kwargs: dict | None = None) -> TFNet:
    """A classifier network with random variables as ``D_paper``/``D_basic`` name and shape them: FromRGB of
    every growing level, per block Conv0 and Conv1_down, at 4×4 Conv (one more input channel with a
    minibatch-stddev layer), Dense0, Dense1 with ``outputs`` outputs; static kwargs RGB, no labels and
    ``mbstd_group_size`` (0: none, as the official classifiers)."""
    r = _Random(seed, scale)
    nf = lambda s: v1_nf(s, fmap_base, fmap_max)  # noqa: E731
    log2 = int(math.log2(resolution))
    kwargs: dict[str, Any] = dict(num_channels=3, resolution=resolution, label_size=0, fmap_base=fmap_base,
                                  fmap_max=fmap_max, mbstd_group_size=mbstd_group_size)
    kwargs.update(extra_kwargs or {})
    v: dict[str, Any] = {"lod": np.float32(lod)}
    for res_log2 in range(log2, 1, -1):
        level = log2 - res_log2
        v[f"FromRGB_lod{level}/weight"] = r(1, 1, 3, nf(res_log2 - 1))
        v[f"FromRGB_lod{level}/bias"] = r(nf(res_log2 - 1), scale=0.2)
    for res_log2 in range(log2, 2, -1):
        s = f"{2**res_log2}x{2**res_log2}"
        v[f"{s}/Conv0/weight"], v[f"{s}/Conv0/bias"] = r(3, 3, nf(res_log2 - 1), nf(res_log2 - 1)), r(nf(res_log2 - 1))
        v[f"{s}/Conv1_down/weight"] = r(3, 3, nf(res_log2 - 1), nf(res_log2 - 2))
        v[f"{s}/Conv1_down/bias"] = r(nf(res_log2 - 2))
    stat = 1 if mbstd_group_size > 1 else 0
    v["4x4/Conv/weight"], v["4x4/Conv/bias"] = r(3, 3, nf(1) + stat, nf(1)), r(nf(1))
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = r(nf(1) * 16, nf(0)), r(nf(0))
    v["4x4/Dense1/weight"], v["4x4/Dense1/bias"] = r(nf(0), outputs), r(outputs)
    return TFNet("D", build_func, kwargs, v, version=3)
