"""Training options: the official base configs and the user's overrides, resolved into one record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from stylegan.errors import StyleGANError, setting
from stylegan.networks.stylegan2 import ARCHITECTURES
from stylegan.training.augment import AUGPIPE_PRESETS


@dataclass(frozen=True)
class BaseConfig:
    ref_gpus: int  # the batch per GPU is batch / ref_gpus
    kimg: int
    batch: int
    mbstd: int  # minibatch-std group size
    fmaps: float  # channel_base = fmaps · 32768
    lrate: float
    gamma: float
    ema_kimg: float
    ema_rampup: float | None
    map: int  # mapping layers


# The official StyleGAN2-ADA base configs (train.py); 'auto' is filled in from resolution and GPU count.
BASE_CONFIGS = {
    "stylegan2": BaseConfig(8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": BaseConfig(8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": BaseConfig(8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": BaseConfig(8, 25000, 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": BaseConfig(2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2),
}
CONFIG_NAMES = ("auto", *BASE_CONFIGS)
AUG_MODES = ("ada", "noaug", "fixed")  # adaptive p, no augmentation, constant p


def auto_config(resolution: int, gpus: int) -> BaseConfig:
    """The official 'auto' heuristics: batch, group size, width, lr and γ from resolution and GPU count."""
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return BaseConfig(
        ref_gpus=gpus, kimg=25000, batch=batch, mbstd=min(batch // gpus, 4),
        fmaps=1 if resolution >= 512 else 0.5, lrate=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution**2 / batch, ema_kimg=batch * 10 / 32, ema_rampup=0.05, map=2)


@dataclass
class TrainingOptions:
    """Everything a run needs, resolved from a base config and overrides; saved as training_options.json."""

    data: str
    outdir: str
    cfg: str = "auto"
    gpus: int = 1  # processes (ranks) taking part
    total_kimg: float = 25000
    batch: int = 32
    batch_gpu: int = 32  # samples per forward pass and rank (gradient accumulation below batch/gpus)
    mbstd_group: int = 4
    G_lr: float = 0.0025
    D_lr: float = 0.0025
    r1_gamma: float = 10.0
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    G_reg_interval: int = 4
    D_reg_interval: int = 16
    channel_base: int = 16384
    channel_max: int = 512
    map_layers: int = 2
    z_dim: int = 512
    w_dim: int = 512
    G_architecture: str = "skip"  # synthesis blocks: orig | skip | resnet (the official training uses skip)
    D_architecture: str = "resnet"
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    cond: bool = False
    mirror: bool = False
    max_size: int | None = None
    aug: str = "ada"  # one of AUG_MODES
    augpipe: str = "bgc"
    p: float = 0.0  # initial (ada) or fixed (fixed) augmentation probability
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500
    resume: str | None = None
    freezed: int = 0
    kimg_per_tick: float = 4
    snap: int = 50  # ticks between snapshots (network + image grid)
    seed: int = 0
    workers: int = 3
    nhwc: bool = False  # fp16 blocks in channels-last layout (CUDA)
    cudnn_benchmark: bool = True  # let cuDNN time its algorithms at the start (the official default)
    allow_tf32: bool = False  # TF32 matmuls/convolutions on Ampere and newer GPUs (off, as officially)
    metrics: list[str] = field(default_factory=list)
    device: str = "auto"
    quiet: bool = False  # progress lines only in log.txt, not on the terminal
    grid: list[int] | None = None  # [width, height] of the snapshot image grids; None: the official layout
    desc: str | None = None  # words appended to the run folder's name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# CLI names of the overrides → TrainingOptions fields.
RENAMES = dict(gamma="r1_gamma", kimg="total_kimg", glr="G_lr", dlr="D_lr", cbase="channel_base",
               cmax="channel_max", map="map_layers", subset="max_size", target="ada_target", tick="kimg_per_tick")


def _rename(overrides: dict) -> dict:
    return {RENAMES.get(k, k): v for k, v in overrides.items() if v is not None}


def resolve_options(data: str, outdir: str, resolution: int, cfg: str = "auto", gpus: int = 1,
                    **overrides) -> TrainingOptions:
    """Start from a base config (as the official train.py does) and apply the given overrides.

    ``overrides`` use the CLI names: gamma, batch, batch_gpu, kimg, glr, dlr, cbase, cmax, map,
    mbstd_group, fp32, plus any TrainingOptions field. None values are ignored.
    """
    if cfg not in CONFIG_NAMES:
        _refuse("cfg", f"{cfg!r} is unknown", f"choose one of {', '.join(CONFIG_NAMES)}")
    spec = auto_config(resolution, gpus) if cfg == "auto" else BASE_CONFIGS[cfg]
    opts = TrainingOptions(
        data=data, outdir=outdir, cfg=cfg, gpus=gpus, total_kimg=spec.kimg, batch=spec.batch,
        batch_gpu=spec.batch // spec.ref_gpus, mbstd_group=spec.mbstd, G_lr=spec.lrate, D_lr=spec.lrate,
        r1_gamma=spec.gamma, ema_kimg=spec.ema_kimg, ema_rampup=spec.ema_rampup,
        channel_base=int(spec.fmaps * 32768), map_layers=spec.map)
    if cfg == "cifar":  # the official cifar config turns these off
        opts.pl_weight, opts.style_mixing_prob, opts.D_architecture = 0.0, 0.0, "orig"

    overrides = _rename(overrides)
    fp32 = overrides.pop("fp32", False)
    batch_given = "batch" in overrides
    for key, value in overrides.items():
        if not hasattr(opts, key):
            raise StyleGANError(f"unknown training option {key!r}", "see `stylegan train --help`")
        setattr(opts, key, value)
    if batch_given and "batch_gpu" not in overrides:
        opts.batch_gpu = opts.batch // gpus
    if batch_given and "mbstd_group" not in overrides:
        opts.mbstd_group = min(opts.mbstd_group, opts.batch_gpu)
    if fp32:
        opts.num_fp16_res, opts.conv_clamp = 0, None
    if opts.resume not in (None, "", "latest"):
        opts.ada_kimg, opts.ema_rampup = 100, None  # official transfer-learning settings
    validate(opts)
    return opts


def resume_options(stored: dict, gpus: int = 1, **overrides) -> TrainingOptions:
    """The options of a run continued with ``--resume latest``: those saved in its snapshot, with only the
    overrides the user typed (e.g. a longer ``kimg``) applied on top. ``gpus`` is the new process count;
    the per-pass batch shrinks when needed so that the global batch (and the result) stays the same."""
    fields = {f.name for f in dataclasses.fields(TrainingOptions)}
    opts = TrainingOptions(**{k: v for k, v in stored.items() if k in fields})
    overrides = _rename(overrides)
    fp32 = overrides.pop("fp32", False)
    for key, value in overrides.items():
        if key not in fields:
            raise StyleGANError(f"unknown training option {key!r}", "see `stylegan train --help`")
        setattr(opts, key, value)
    opts.resume, opts.gpus = "latest", gpus
    if "batch_gpu" not in overrides and opts.batch % gpus == 0:
        per_rank = opts.batch // gpus
        while per_rank % opts.batch_gpu:  # largest divisor of the new per-rank batch not above the old pass
            opts.batch_gpu -= 1
    if fp32:
        opts.num_fp16_res, opts.conv_clamp = 0, None
    validate(opts)
    return opts



# How `stylegan train` spells the fields it does not name after themselves (batch_gpu is --batch-gpu, …).
_FLAGS = {field: f"--{cli}" for cli, field in RENAMES.items() if cli != "subset"}
_FLAGS.update(max_size="--subset", z_dim="--zdim", w_dim="--wdim", gpus="torchrun --nproc_per_node")
# Fields only a Python caller (or a base config) sets.
_NO_FLAG = {"G_architecture", "D_architecture", "pl_weight", "style_mixing_prob", "ema_kimg", "ema_rampup",
            "G_reg_interval", "D_reg_interval", "num_fp16_res", "conv_clamp", "ada_interval", "ada_kimg"}


def setting_name(field: str) -> str:
    """How error messages name a setting for both audiences: ``r1_gamma (--gamma)``, or the bare field name
    when the command line has no flag for it. Python callers set the field, CLI users type the flag."""
    return setting(field, "" if field in _NO_FLAG else _FLAGS.get(field))


def _refuse(field: str, problem: str, fix: str) -> None:
    raise StyleGANError(f"{setting_name(field)} {problem}", fix)


def validate(opts: TrainingOptions) -> None:
    """Refuse options no run can use, with one line that names the setting (field and flag)."""
    _check_names(opts)
    _check_batch_split(opts)
    _check_ranges(opts)
    _check_augmentation(opts)


def _check_names(opts: TrainingOptions) -> None:
    choices = [("cfg", CONFIG_NAMES), ("aug", AUG_MODES), ("augpipe", tuple(AUGPIPE_PRESETS)),
               ("G_architecture", ARCHITECTURES), ("D_architecture", ARCHITECTURES)]
    for field_name, allowed in choices:
        value = getattr(opts, field_name)
        if value not in allowed:
            _refuse(field_name, f"{value!r} is unknown", f"choose one of {', '.join(allowed)}")


# Lower bounds: (field, smallest allowed value, whether the bound itself is allowed).
_BOUNDS = [("total_kimg", 0, False), ("kimg_per_tick", 0, False), ("snap", 0, True), ("G_lr", 0, False),
           ("D_lr", 0, False), ("r1_gamma", 0, True), ("ema_kimg", 0, True), ("mbstd_group", 0, True),
           ("freezed", 0, True), ("workers", 0, True)]


def _check_ranges(opts: TrainingOptions) -> None:
    for field_name, low, inclusive in _BOUNDS:
        value = getattr(opts, field_name)
        if value < low or (value == low and not inclusive):
            bound = f"at least {low}" if inclusive else f"above {low}"
            _refuse(field_name, f"is {value:g}, but must be {bound}", f"set {setting_name(field_name)} to a "
                    f"number {bound}")
    if not 0 < opts.ada_target < 1:
        _refuse("ada_target", f"is {opts.ada_target:g}, outside (0, 1)", "the default is 0.6")
    if not 0 <= opts.p <= 1:
        _refuse("p", f"is {opts.p:g}, outside [0, 1]", "give a probability")


def _check_batch_split(opts: TrainingOptions) -> None:
    """The global batch splits evenly over the processes, each process's share into equal passes, and each
    pass into whole minibatch-std groups."""
    if opts.gpus < 1:
        _refuse("gpus", f"is {opts.gpus}, but at least one process must train", "start 1 or more processes")
    if opts.batch < 1:
        _refuse("batch", f"is {opts.batch}, but must be at least 1", "give the number of images per step")
    if opts.batch % opts.gpus != 0:
        _refuse("batch", f"{opts.batch} is not divisible by the number of processes ({opts.gpus})",
                "pick a batch that is a multiple of the process count")
    per_rank = opts.batch // opts.gpus
    if opts.batch_gpu < 1 or per_rank % opts.batch_gpu != 0:
        _refuse("batch_gpu", f"{opts.batch_gpu} does not divide the per-process batch {per_rank}",
                f"use a divisor of batch / processes for {setting_name('batch_gpu')}")
    if opts.mbstd_group > 0 and opts.batch_gpu % min(opts.mbstd_group, opts.batch_gpu) != 0:
        _refuse("mbstd_group", f"{opts.mbstd_group} does not divide the batch per pass {opts.batch_gpu}",
                f"use a group size that divides {setting_name('batch_gpu')}")


def _check_augmentation(opts: TrainingOptions) -> None:
    if opts.aug == "fixed" and opts.p == 0:
        p_name = setting_name("p")
        _refuse("aug", f"'fixed' needs a probability, but {p_name} is 0", f"set {p_name} above 0, e.g. 0.2")
