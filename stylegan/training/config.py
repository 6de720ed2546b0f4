"""Training options: the official base configs and the user's overrides, resolved into one record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from stylegan.errors import StyleGANError, setting
from stylegan.limits import quote
from stylegan.networks.stylegan2 import ARCHITECTURES
from stylegan.training import progressive as growth
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
PROGRESSIVE_CFG = "stylegan1"  # StyleGAN (v1) with progressive growing (see stylegan.training.progressive)
CONFIG_NAMES = ("auto", *BASE_CONFIGS, PROGRESSIVE_CFG)
AUG_MODES = ("ada", "noaug", "fixed")  # adaptive p, no augmentation, constant p


def family(cfg: str) -> str:
    """The network family a config trains: 'stylegan1' (progressive growing) or 'stylegan2'."""
    return "stylegan1" if cfg == PROGRESSIVE_CFG else "stylegan2"


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
    mode_seeking: float = 0.0  # weight of the mode-seeking term (see training/loss.py), 0 = off
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
    # Progressive growing (cfg stylegan1 only; see stylegan.training.progressive). There ``batch``,
    # ``G_lr``, ``D_lr`` and ``kimg_per_tick`` are the values for resolutions the *_per_res maps leave out.
    start_res: int = growth.OFFICIAL_START_RESOLUTION
    lod_training_kimg: float = growth.OFFICIAL_PHASE_KIMG[0]
    lod_transition_kimg: float = growth.OFFICIAL_PHASE_KIMG[1]
    batch_per_res: dict[int, int] = field(default_factory=dict)
    G_lr_per_res: dict[int, float] = field(default_factory=dict)
    D_lr_per_res: dict[int, float] = field(default_factory=dict)
    tick_per_res: dict[int, float] = field(default_factory=dict)
    reset_opt_for_new_lod: bool = True  # fresh Adam moments whenever a fade-in starts or ends

    @property
    def progressive(self) -> bool:
        return self.cfg == PROGRESSIVE_CFG

    def growth_schedule(self, resolution: int) -> growth.GrowthSchedule:
        """The progressive-growing schedule of these options for a dataset of ``resolution``²."""
        return growth.GrowthSchedule(
            resolution=resolution, gpus=self.gpus, start_resolution=self.start_res,
            training_kimg=self.lod_training_kimg, transition_kimg=self.lod_transition_kimg,
            minibatch_base=self.batch, minibatch=self.batch_per_res, G_lrate_base=self.G_lr,
            G_lrate=self.G_lr_per_res, D_lrate_base=self.D_lr, D_lrate=self.D_lr_per_res,
            tick_kimg_base=self.kimg_per_tick, tick_kimg=self.tick_per_res)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# CLI names of the overrides → TrainingOptions fields.
RENAMES = dict(gamma="r1_gamma", kimg="total_kimg", glr="G_lr", dlr="D_lr", cbase="channel_base",
               cmax="channel_max", map="map_layers", subset="max_size", target="ada_target", tick="kimg_per_tick",
               glr_per_res="G_lr_per_res", dlr_per_res="D_lr_per_res")
# Progressive growing: a per-resolution map and the flag that sets the value for the resolutions it leaves out.
_PER_RES_BASES = {"batch_per_res": "batch", "G_lr_per_res": "G_lr", "D_lr_per_res": "D_lr",
                  "tick_per_res": "kimg_per_tick"}


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
    if cfg == PROGRESSIVE_CFG:
        return _resolve_progressive(data, outdir, gpus, overrides)
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


def progressive_defaults(data: str, outdir: str, gpus: int) -> TrainingOptions:
    """The official StyleGAN (v1) FFHQ training configuration, with the minibatches of its preset for
    ``gpus`` GPUs: networks as in the paper (8 mapping layers, 512 channels up to 32², halving above),
    logistic loss with R1 (γ 10) at every D step, style mixing 0.9, EMA half-life 10 kimg without ramp-up,
    lr 0.001 (more from 128²), no augmentation, growing from 8² with 600 + 600 kimg per resolution."""
    base, per_res = growth.official_minibatch(gpus)
    largest = max([base, *per_res.values()])
    return TrainingOptions(
        data=data, outdir=outdir, cfg=PROGRESSIVE_CFG, gpus=gpus, total_kimg=25000, batch=base,
        batch_gpu=max(largest // gpus, 1), mbstd_group=4, G_lr=growth.OFFICIAL_LRATE_BASE,
        D_lr=growth.OFFICIAL_LRATE_BASE, r1_gamma=10.0, pl_weight=0.0, style_mixing_prob=0.9, ema_kimg=10.0,
        ema_rampup=None, G_reg_interval=0, D_reg_interval=0, channel_base=16384, channel_max=512, map_layers=8,
        num_fp16_res=0, conv_clamp=None, aug="noaug", kimg_per_tick=growth.OFFICIAL_TICK_BASE, snap=10,
        batch_per_res=per_res, G_lr_per_res=dict(growth.OFFICIAL_LRATE),
        D_lr_per_res=dict(growth.OFFICIAL_LRATE), tick_per_res=dict(growth.OFFICIAL_TICK))


def _resolve_progressive(data: str, outdir: str, gpus: int, overrides: dict) -> TrainingOptions:
    """``resolve_options`` for cfg stylegan1. A base value given without its per-resolution map (say
    ``batch`` without ``batch_per_res``) holds at every resolution."""
    opts = progressive_defaults(data, outdir, gpus)
    overrides = _rename(overrides)
    overrides.pop("fp32", None)  # v1 networks compute in float32 anyway
    for per_res, base in _PER_RES_BASES.items():
        if base in overrides and per_res not in overrides:
            setattr(opts, per_res, {})
    for key, value in overrides.items():
        if not hasattr(opts, key):
            raise StyleGANError(f"unknown training option {key!r}", "see `stylegan train --help`")
        setattr(opts, key, dict(value) if isinstance(value, dict) else value)
    if "batch_gpu" not in overrides:  # by default each process runs its share in one pass
        opts.batch_gpu = max(max([opts.batch, *opts.batch_per_res.values()]) // gpus, 1)
    if opts.resume not in (None, "", "latest"):
        opts.ada_kimg = 100  # the official transfer-learning setting of ADA, should --aug ada be chosen
    validate(opts)
    return opts


def _per_res_from_json(value, field_name: str) -> dict:
    """A per-resolution map read back from a snapshot's JSON (keys are strings there) → {int: number}."""
    if not isinstance(value, dict):
        _refuse(field_name, f"is {quote(value)}, not a map of resolutions", "remake the snapshot with `stylegan train`")
    try:
        return {int(k): v for k, v in value.items()}
    except (TypeError, ValueError):
        _refuse(field_name, f"has a resolution that is not a number ({quote(list(value))})",
                "remake the snapshot with `stylegan train`")


def resume_options(stored: dict, gpus: int = 1, **overrides) -> TrainingOptions:
    """The options of a run continued with ``--resume latest``: those saved in its snapshot, with only the
    overrides the user typed (e.g. a longer ``kimg``) applied on top. ``gpus`` is the new process count;
    the per-pass batch shrinks when needed so that the global batch (and the result) stays the same."""
    fields = {f.name for f in dataclasses.fields(TrainingOptions)}
    opts = TrainingOptions(**{k: v for k, v in stored.items() if k in fields})
    for per_res in _PER_RES_BASES:
        setattr(opts, per_res, _per_res_from_json(getattr(opts, per_res), per_res))
    overrides = _rename(overrides)
    if "cfg" in overrides and family(overrides["cfg"]) != family(opts.cfg):
        _refuse("cfg", f"{overrides['cfg']!r} trains {family(overrides['cfg'])} networks, but the run to continue "
                f"trains {family(opts.cfg)} networks with cfg {opts.cfg!r}",
                f"leave out {setting_name('cfg')} to continue it, or start a new run in another --outdir")
    overrides.pop("cfg", None)  # a run keeps its config; only the flags typed on top apply
    if opts.progressive:  # as for a new run: a base value typed alone holds at every resolution
        for per_res, base in _PER_RES_BASES.items():
            if base in overrides and per_res not in overrides:
                setattr(opts, per_res, {})
    fp32 = overrides.pop("fp32", False)
    for key, value in overrides.items():
        if key not in fields:
            raise StyleGANError(f"unknown training option {key!r}", "see `stylegan train --help`")
        setattr(opts, key, value)
    opts.resume, opts.gpus = "latest", gpus
    if "batch_gpu" not in overrides and opts.batch % gpus == 0 and not opts.progressive:
        per_rank = opts.batch // gpus
        while per_rank % opts.batch_gpu:  # largest divisor of the new per-rank batch not above the old pass
            opts.batch_gpu -= 1
    if fp32:
        opts.num_fp16_res, opts.conv_clamp = 0, None
    validate(opts)
    return opts



# How `stylegan train` spells the fields it does not name after themselves (batch_gpu is --batch-gpu, …).
_FLAGS = {field: f"--{cli}" for cli, field in RENAMES.items() if cli != "subset"}
_FLAGS.update(max_size="--subset", z_dim="--zdim", w_dim="--wdim", gpus="torchrun --nproc_per_node",
              batch_per_res="--batch-per-res", tick_per_res="--tick-per-res", lod_training_kimg="--lod-kimg",
              lod_transition_kimg="--lod-kimg", reset_opt_for_new_lod="--reset-adam/--no-reset-adam")
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
    if opts.progressive:
        _check_growth(opts)
    else:
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
           ("D_lr", 0, False), ("r1_gamma", 0, True), ("mode_seeking", 0, True), ("ema_kimg", 0, True), ("mbstd_group", 0, True),
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


def _check_growth(opts: TrainingOptions) -> None:
    """Progressive growing: a power-of-two start, phases of sensible length, and per-resolution maps of
    powers of two to positive values, whose minibatches leave every process at least one image."""
    if not (growth.is_power_of_two(opts.start_res) and opts.start_res >= 4):
        _refuse("start_res", f"is {opts.start_res}, not a power of two from 4 on", "e.g. 8 (the official start)")
    for name in ("lod_training_kimg", "lod_transition_kimg"):
        value = getattr(opts, name)
        if not (isinstance(value, (int, float)) and 0 <= value < 1e9):
            _refuse(name, f"is {quote(value)}, but must be a number of kimg from 0", "e.g. --lod-kimg 600,600")
    if opts.gpus < 1:
        _refuse("gpus", f"is {opts.gpus}, but at least one process must train", "start 1 or more processes")
    for per_res, base in _PER_RES_BASES.items():
        values = getattr(opts, per_res)
        if not isinstance(values, dict):
            _refuse(per_res, f"is {quote(values)}, not a map of resolutions", "e.g. 4:512,8:256")
        for res, value in values.items():
            if not (isinstance(res, int) and growth.is_power_of_two(res) and res >= 4):
                _refuse(per_res, f"has the resolution {quote(res)}, not a power of two from 4 on", "e.g. 4:512,8:256")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
                _refuse(per_res, f"has {quote(value)} at {res}, but values must be positive", "e.g. 4:512,8:256")
        if per_res == "batch_per_res":
            for res, value in {0: opts.batch, **values}.items():
                if not isinstance(value, int) or value < opts.gpus:
                    where = f"at {res}" if res else "(the default of unlisted resolutions)"
                    _refuse(per_res if res else base, f"{quote(value)} {where} is not a whole number of images of at "
                            f"least one per process ({opts.gpus})", "give larger minibatches")
    if opts.batch_gpu < 1:
        _refuse("batch_gpu", f"is {opts.batch_gpu}, but must be at least 1", "give the largest pass size")


def _check_augmentation(opts: TrainingOptions) -> None:
    if opts.aug == "fixed" and opts.p == 0:
        p_name = setting_name("p")
        _refuse("aug", f"'fixed' needs a probability, but {p_name} is 0", f"set {p_name} above 0, e.g. 0.2")
