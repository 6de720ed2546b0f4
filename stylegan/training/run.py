"""Start or resume a training run: dataset, networks, run directory, snapshots.

:func:`train` takes these steps, each a function below: join the `torchrun` processes, open the dataset,
build the networks, find where to start (fresh, transfer learning, or ``resume latest``), choose the run
folder, then hand everything to :class:`~stylegan.training.loop.Trainer`.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from stylegan import process_group
from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError
from stylegan.networks import build_network
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.ops.backends import cuda_arithmetic
from stylegan.snapshot_names import latest_snapshot, snapshot_filename
from stylegan.training import distributed as dist_utils
from stylegan.training import snapshot as snap
from stylegan.training import progressive
from stylegan.training.config import TrainingOptions, family, setting_name, validate
from stylegan.training.grid import SnapshotImages
from stylegan.training.loop import Trainer
from stylegan.training.progress import Progress

# Kept for callers that still import it from here; the lookup itself lives in stylegan.snapshot_names.

MetricsFn = Callable[[Path, dict], dict[str, float]]

COLOR_AUGMENTATIONS = ("brightness", "contrast", "lumaflip", "hue", "saturation")


# --- the dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetShape:
    """What the networks must fit: image size, channels and label width (0 for an unconditional run)."""

    resolution: int
    channels: int
    c_dim: int


def open_dataset(opts: TrainingOptions):
    from stylegan.data import ImageDataset
    return ImageDataset(opts.data, max_size=opts.max_size, xflip=opts.mirror, use_labels=opts.cond,
                        random_seed=opts.seed)


def dataset_shape(dataset, opts: TrainingOptions) -> DatasetShape:
    """The shape of ``dataset``'s images and labels, refusing ``cond`` on a dataset without labels."""
    from stylegan.data import require_labels
    if opts.cond:
        require_labels(dataset, setting_name("cond"))
    return DatasetShape(dataset.resolution, dataset.num_channels, dataset.label_dim if opts.cond else 0)


def check_dataset_fits_cfg(opts: TrainingOptions, shape: DatasetShape) -> None:
    """Progressive growing halves the images down to the start resolution: refuse a dataset whose side is
    not a power of two (datasets are square already), or smaller than the start."""
    if not opts.progressive:
        return
    res = shape.resolution
    if not progressive.is_power_of_two(res) or res < 4:
        raise StyleGANError(f"{setting_name('cfg')} {opts.cfg} grows the networks by doubling, but the dataset's "
                            f"images are {res}x{res}, not a power of two",
                            f"remake it with `stylegan dataset --resolution {_power_of_two_near(res)}x"
                            f"{_power_of_two_near(res)}`")
    if opts.start_res > res:
        raise StyleGANError(f"{setting_name('start_res')} is {opts.start_res}, above the dataset's {res}x{res}",
                            f"start at {min(8, res)} (or any power of two up to {res})")


def _power_of_two_near(value: int) -> int:
    return max(4, 1 << max(int(value).bit_length() - 1, 2))


def check_augpipe_fits(opts: TrainingOptions, channels: int) -> None:
    """Colour augmentation is defined for RGB and grayscale only: refuse e.g. RGBA before anything is written."""
    from stylegan.training.augment import AUGPIPE_PRESETS
    if opts.aug == "noaug" or channels in (1, 3):
        return
    if any(AUGPIPE_PRESETS[opts.augpipe].get(k) for k in COLOR_AUGMENTATIONS):
        raise StyleGANError(f"{setting_name('augpipe')} {opts.augpipe!r} includes colour augmentation, which needs "
                            f"RGB or grayscale images, but the dataset has {channels} channels",
                            f"choose {setting_name('augpipe')} bg (or blit/geom) or {setting_name('aug')} noaug, "
                            "or remake the dataset with 3 channels")


# --- the networks --------------------------------------------------------------------------------


def network_classes(opts: TrainingOptions) -> tuple[str, str]:
    """The class names of G and D the run trains."""
    if opts.progressive:
        return "StyleGAN1Generator", "StyleGAN1Discriminator"
    return "Generator", "Discriminator"


def network_kwargs(opts: TrainingOptions, resolution: int, channels: int, c_dim: int) -> tuple[dict, dict]:
    """The constructor kwargs of G and D, nested as the official Generator/Discriminator take them."""
    if opts.progressive:
        return stylegan1_kwargs(opts, resolution, channels, c_dim)
    synthesis = dict(channel_base=opts.channel_base, channel_max=opts.channel_max, num_fp16_res=opts.num_fp16_res,
                     conv_clamp=opts.conv_clamp)
    D_blocks = dict(freeze_layers=opts.freezed)
    # Non-default switches only, so the stored kwargs of other runs stay as the official code writes them.
    if opts.G_architecture != "skip":
        synthesis["architecture"] = opts.G_architecture
    if opts.nhwc:
        synthesis["fp16_channels_last"] = D_blocks["fp16_channels_last"] = True
    G_kwargs = dict(z_dim=opts.z_dim, c_dim=c_dim, w_dim=opts.w_dim, img_resolution=resolution,
                    img_channels=channels, mapping_kwargs=dict(num_layers=opts.map_layers),
                    synthesis_kwargs=synthesis)
    D_kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels,
                    architecture=opts.D_architecture, channel_base=opts.channel_base,
                    channel_max=opts.channel_max, num_fp16_res=opts.num_fp16_res, conv_clamp=opts.conv_clamp,
                    block_kwargs=D_blocks, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=opts.mbstd_group))
    return G_kwargs, D_kwargs


def stylegan1_kwargs(opts: TrainingOptions, resolution: int, channels: int, c_dim: int) -> tuple[dict, dict]:
    """StyleGAN (v1) G and D kwargs. Channels follow the same rule as for StyleGAN2, min(cbase / res,
    cmax), which is v1's fmap_base = cbase / 2; the mapping's hidden layers are w_dim wide (v1: 512)."""
    widths = dict(fmap_base=opts.channel_base // 2, fmap_max=opts.channel_max)
    G_kwargs = dict(z_dim=opts.z_dim, c_dim=c_dim, w_dim=opts.w_dim, img_resolution=resolution,
                    img_channels=channels, mapping_kwargs=dict(num_layers=opts.map_layers, layer_features=opts.w_dim),
                    synthesis_kwargs=dict(widths))
    D_kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels, **widths,
                    mbstd_group_size=opts.mbstd_group)
    return G_kwargs, D_kwargs


@dataclass
class Networks:
    """Everything a run trains or tracks: G, D, the moving average of G, and the augmentation pipe."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    augment_pipe: nn.Module | None = None

    def trained(self) -> list[tuple[str, nn.Module]]:
        """(snapshot name, module) of the three networks a snapshot or transfer source provides."""
        return [("G", self.G), ("D", self.D), ("G_ema", self.G_ema)]


def averaged_generator(G: nn.Module, G_kwargs: dict, class_name: str = "Generator") -> nn.Module:
    """The generator whose weights follow G's moving average; it starts out equal to G.

    It is built from G's kwargs and takes G's state; its own random initialisation runs on a forked RNG
    and is discarded, so the global random stream is the same as if only G and D had been built.
    """
    with torch.random.fork_rng(devices=[]):
        average = build_network(class_name, G_kwargs)
    average.load_state_dict(G.state_dict())
    return average.eval()


def augment_pipe_for(opts: TrainingOptions) -> nn.Module | None:
    """The ADA pipe for ``opts.augpipe`` starting at probability ``opts.p``; None for ``aug=noaug``."""
    if opts.aug == "noaug":
        return None
    from stylegan.training.augment import AUGPIPE_PRESETS, AugmentPipe
    pipe = AugmentPipe(**AUGPIPE_PRESETS[opts.augpipe])
    pipe.p.fill_(opts.p)
    return pipe


def build_networks(opts: TrainingOptions, shape: DatasetShape) -> Networks:
    """Freshly initialised networks: ``opts.seed`` seeds G's and then D's weights, as in the official order."""
    G_kwargs, D_kwargs = network_kwargs(opts, shape.resolution, shape.channels, shape.c_dim)
    G_class, D_class = network_classes(opts)
    torch.manual_seed(opts.seed)
    G = build_network(G_class, G_kwargs)
    D = build_network(D_class, D_kwargs)
    return Networks(G, D, averaged_generator(G, G_kwargs, G_class), augment_pipe_for(opts))


# --- where the run starts ------------------------------------------------------------------------


@dataclass
class StartingPoint:
    """Counters to continue from, the snapshot's resume state, and the run folder to keep writing into
    (``run_dir`` None: a new folder is made)."""

    progress: Progress = field(default_factory=Progress)
    resume_state: dict | None = None
    run_dir: Path | None = None


def snapshot_to_continue(outdir: Path) -> Path:
    """The snapshot that ``resume latest`` continues: the newest under ``outdir``, or a StyleGANError."""
    found = latest_snapshot(outdir) if outdir.is_dir() else None
    if found is None:
        raise StyleGANError(f"{setting_name('resume')} 'latest' found no network-snapshot-*.safetensors under "
                            f"{outdir}",
                            f"start a new run without resume, or point {setting_name('outdir')} at an earlier "
                            "run's folder")
    return found


def copy_matching_weights(src: nn.Module, dst: nn.Module, what: str) -> None:
    """Transfer learning: take every parameter/buffer of ``src`` that ``dst`` has with the same shape.

    A tensor of ``src`` that ``dst`` has no place for means the run builds another architecture (say two
    mapping layers where the file has eight): refused, since its weights would be dropped without a word.
    """
    src_state = src.state_dict()
    unplaced = [name for name in src_state if name not in dst.state_dict()]
    if unplaced:
        shown = ", ".join(unplaced[:3]) + (f", … ({len(unplaced)} in all)" if len(unplaced) > 3 else "")
        raise StyleGANError(f"{setting_name('resume')} network's {what} has tensors this run has no place for "
                            f"({shown})", "train with the settings the network was built with: --map, --cbase, "
                            "--cmax, --cfg")
    for name, tensor in dst.state_dict().items():
        if name in src_state:
            if src_state[name].shape != tensor.shape:
                raise StyleGANError(f"{setting_name('resume')} network's {what}.{name} has shape "
                                    f"{list(src_state[name].shape)}, but this run needs {list(tensor.shape)}",
                                    "resume from a network with the same architecture and channel settings")
            tensor.copy_(src_state[name])


def network_family(net: nn.Module) -> str:
    """'stylegan1' for a StyleGAN (v1) network, else 'stylegan2'."""
    return "stylegan1" if type(net).__name__.startswith("StyleGAN1") else "stylegan2"


def check_resume_family(net: dict, opts: TrainingOptions, source: str) -> None:
    """Refuse to continue or start from networks of the other family: their weights would not carry over."""
    found = {network_family(module) for name, module in net.items()
             if name in ("G", "D", "G_ema") and isinstance(module, nn.Module)}
    wanted = family(opts.cfg)
    if found and found != {wanted}:
        other = " and ".join(sorted(found))
        hint = "--cfg stylegan1" if "stylegan1" in found else "a StyleGAN2 --cfg (e.g. auto)"
        raise StyleGANError(f"{setting_name('resume')} {source} holds {other} networks, but {setting_name('cfg')} "
                            f"{opts.cfg} trains {wanted} networks",
                            f"train it with {hint}, or start without {setting_name('resume')}")


def check_resume_fits(net: dict, shape: DatasetShape, source: str) -> None:
    G = net["G_ema"]
    found = (G.img_resolution, G.img_channels, G.c_dim)
    if found != (shape.resolution, shape.channels, shape.c_dim):
        raise StyleGANError(
            f"{setting_name('resume')} {source} makes {found[0]}x{found[0]} images with {found[1]} channel(s) and "
            f"c_dim {found[2]}, but the dataset has {shape.resolution}x{shape.resolution}, {shape.channels} "
            f"channel(s) and c_dim {shape.c_dim}",
            f"resume from a network trained at the dataset's resolution/channels, or toggle {setting_name('cond')}")


def continue_latest(opts: TrainingOptions, nets: Networks, shape: DatasetShape) -> StartingPoint:
    """``resume latest``: the newest snapshot's weights, ADA probability, counters and optimizer state."""
    path = snapshot_to_continue(Path(opts.outdir))
    state = snap.load_training_snapshot(path)
    stored = state["networks"]
    check_resume_family(stored, opts, str(path))
    check_resume_fits(stored, shape, str(path))
    for name, module in nets.trained():
        copy_matching_weights(stored[name], module, name)
    if nets.augment_pipe is not None and stored.get("augment_pipe") is not None:
        nets.augment_pipe.p.copy_(snap.augment_p(stored["augment_pipe"]))
    progress = state["progress"]
    if progress.cur_nimg >= opts.total_kimg * 1000:
        raise StyleGANError(f"{path} has already trained for {progress.cur_nimg / 1000:g} kimg "
                            f"({setting_name('total_kimg')} is {opts.total_kimg:g})",
                            f"raise {setting_name('total_kimg')} to train further")
    return StartingPoint(progress, state, path.parent)


def start_from_network(source: str, nets: Networks, shape: DatasetShape, opts: TrainingOptions | None = None) -> None:
    """Transfer learning from a network file: its weights, fresh counters and a new run folder.
    A file without the training G (e.g. only G_ema) seeds G from its G_ema."""
    from stylegan.formats import load_network
    loaded = load_network(source)
    if opts is not None:
        check_resume_family(loaded, opts, source)
    check_resume_fits(loaded, shape, source)
    for name, module in nets.trained():
        if name in loaded:
            copy_matching_weights(loaded[name], module, name)
    if "G" not in loaded:
        copy_matching_weights(loaded["G_ema"], nets.G, "G")


def starting_point(opts: TrainingOptions, nets: Networks, shape: DatasetShape) -> StartingPoint:
    if opts.resume == "latest":
        return continue_latest(opts, nets, shape)
    if opts.resume:
        start_from_network(opts.resume, nets, shape, opts)
    return StartingPoint()


# --- the run folder ------------------------------------------------------------------------------


def new_run_dir(outdir: Path, desc: str) -> Path:
    """``outdir/NNNNN-desc`` with the next free number; runs started at the same moment get different ones."""
    while True:
        ids = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d{5})-", p.name))]  # files too
        run_dir = outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"
        try:
            run_dir.mkdir()  # atomic: of two runs that picked the same number, one takes the next
            return run_dir
        except FileExistsError:
            continue


def describe(opts: TrainingOptions, dataset_name: str) -> str:
    parts = [dataset_name]
    if opts.cond:
        parts.append("cond")
    if opts.mirror:
        parts.append("mirror")
    parts += [opts.cfg, f"batch{opts.batch}", opts.aug]
    if opts.aug != "noaug":
        parts.append(opts.augpipe)
    if opts.resume:
        parts.append("resume")
    if opts.desc:
        parts.append(opts.desc)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def _remove_unstarted_run(run_dir: Path) -> None:
    """Delete ``run_dir`` when it holds no snapshot and only files training writes at its start."""
    names = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
    startup = {"training_options.json", "log.txt", "reals.png", "fakes_init.png", "stats.jsonl"}
    if all(n in startup or n.startswith("events.out.tfevents.") for n in names):
        shutil.rmtree(run_dir, ignore_errors=True)


def _snapshot_path(run_dir: Path, cur_nimg: int) -> Path:
    return run_dir / snapshot_filename(cur_nimg // 1000)


# --- the run -------------------------------------------------------------------------------------


def train(opts: TrainingOptions, metrics_fn: MetricsFn | None = None) -> Path | None:
    """Run (or resume) training as described by ``opts``; returns the run directory on rank 0.

    ``metrics_fn(snapshot_path, context)`` is the metrics hook: called on every rank right after each
    snapshot is written (``snapshot_path`` is None on ranks other than 0), with ``context`` =
    {"G_ema", "dataset", "device", "rank", "world", "names"} (names = ``opts.metrics``); it returns
    {metric name: value}, recorded as ``Metrics/<name>`` in stats.jsonl, TensorBoard and the plot.
    None (``--metrics none``) skips metrics.
    """
    validate(opts)  # options a Python caller put together by hand get the same checks as the command line's
    tune_cpu_allocator()  # the step's large activations are reused instead of page-faulted afresh each time
    launch, device = process_group.start(opts.device)
    try:
        with cuda_arithmetic(benchmark=opts.cudnn_benchmark, allow_tf32=opts.allow_tf32):
            return _train(opts, dist_utils.Rank.of(launch, device), metrics_fn)
    finally:
        process_group.leave()


def _train(opts: TrainingOptions, rank: dist_utils.Rank, metrics_fn: MetricsFn | None) -> Path | None:
    dataset = open_dataset(opts)
    shape = dataset_shape(dataset, opts)
    check_dataset_fits_cfg(opts, shape)
    check_augpipe_fits(opts, shape.channels)
    nets = build_networks(opts, shape)
    start = starting_point(opts, nets, shape)
    fresh = rank.is_main and start.run_dir is None
    if fresh:
        outdir = Path(opts.outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        start.run_dir = new_run_dir(outdir, describe(opts, Path(opts.data).stem))
    try:
        return _train_in(opts, rank, dataset, nets, start, metrics_fn)
    except KeyboardInterrupt:
        # Ctrl-C before the training loop took over SIGINT: no snapshot exists, so a new run folder holds
        # nothing worth keeping, and leaving it would only make the next run 00001 and `--resume latest` fail.
        if fresh:
            _remove_unstarted_run(start.run_dir)
        raise


def _train_in(opts: TrainingOptions, rank: dist_utils.Rank, dataset, nets: Networks, start: StartingPoint,
              metrics_fn: MetricsFn | None) -> Path | None:
    """Record the options, then run the loop with a snapshot step that saves (rank 0) and measures (all)."""
    run_dir = start.run_dir
    if rank.is_main:
        with atomic_path(run_dir / "training_options.json") as tmp:
            tmp.write_text(json.dumps(opts.to_dict(), indent=2))

    trainer = Trainer(opts, rank, dataset, nets.G, nets.D, nets.G_ema, nets.augment_pipe, run_dir,
                      start.progress, start.resume_state)
    images = SnapshotImages(trainer, run_dir) if rank.is_main else None

    def on_snapshot(t: Trainer) -> dict[str, float]:
        """The one place that runs at every snapshot: write it (rank 0), then the metrics hook (all ranks)."""
        path = _snapshot_path(run_dir, t.progress.cur_nimg) if rank.is_main else None
        if rank.is_main:
            snap.save_training_snapshot(t, path)
        dist_utils.barrier(rank.world)
        if metrics_fn is None or not opts.metrics:
            return {}
        context = dict(G_ema=t.G_ema, dataset=dataset, device=t.device, rank=rank.rank, world=rank.world,
                       names=list(opts.metrics), cur_nimg=t.progress.cur_nimg)
        return metrics_fn(path, context)

    trainer.run(on_snapshot, image_fn=images)
    return run_dir
