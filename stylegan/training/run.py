"""Start or resume a training run: dataset, networks, run directory, snapshots."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Callable

import torch

from stylegan import process_group
from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError
from stylegan.networks import build_network
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.ops.backends import cuda_arithmetic
from stylegan.training import distributed as dist_utils
from stylegan.training import snapshot as snap
from stylegan.training.config import TrainingOptions
from stylegan.training.loop import Progress, SnapshotImages, Trainer

SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6})\.safetensors$")


def open_dataset(opts: TrainingOptions):
    from stylegan.data import ImageDataset
    return ImageDataset(opts.data, max_size=opts.max_size, xflip=opts.mirror, use_labels=opts.cond,
                        random_seed=opts.seed)


def network_kwargs(opts: TrainingOptions, resolution: int, channels: int, c_dim: int) -> tuple[dict, dict]:
    G_kwargs = dict(z_dim=opts.z_dim, c_dim=c_dim, w_dim=opts.w_dim, img_resolution=resolution,
                    img_channels=channels, mapping_kwargs=dict(num_layers=opts.map_layers),
                    synthesis_kwargs=dict(channel_base=opts.channel_base, channel_max=opts.channel_max,
                                          num_fp16_res=opts.num_fp16_res, conv_clamp=opts.conv_clamp))
    D_kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels,
                    architecture=opts.D_architecture, channel_base=opts.channel_base,
                    channel_max=opts.channel_max, num_fp16_res=opts.num_fp16_res, conv_clamp=opts.conv_clamp,
                    block_kwargs=dict(freeze_layers=opts.freezed), mapping_kwargs={},
                    epilogue_kwargs=dict(mbstd_group_size=opts.mbstd_group))
    if opts.nhwc:  # only when asked, so the stored kwargs of other runs stay as the official code writes them
        G_kwargs["synthesis_kwargs"]["fp16_channels_last"] = D_kwargs["block_kwargs"]["fp16_channels_last"] = True
    return G_kwargs, D_kwargs


def find_latest_snapshot(outdir: Path) -> Path | None:
    """The newest snapshot (highest kimg, newest run) among the run directories under ``outdir``."""
    best = None
    for path in sorted(outdir.glob("*/network-snapshot-*.safetensors")):
        m = SNAPSHOT_RE.search(path.name)
        if m:
            key = (path.parent.name, int(m.group(1)))
            if best is None or key > best[0]:
                best = (key, path)
    return best[1] if best else None


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


def copy_matching_weights(src: torch.nn.Module, dst: torch.nn.Module, what: str) -> None:
    """Transfer learning: take every parameter/buffer of ``src`` that ``dst`` has with the same shape."""
    src_state = src.state_dict()
    for name, tensor in dst.state_dict().items():
        if name in src_state:
            if src_state[name].shape != tensor.shape:
                raise StyleGANError(f"--resume network's {what}.{name} has shape {list(src_state[name].shape)}, "
                                    f"but this run needs {list(tensor.shape)}",
                                    "resume from a network with the same architecture and channel settings")
            tensor.copy_(src_state[name])


def check_resume_fits(net: dict, resolution: int, channels: int, c_dim: int, source: str) -> None:
    G = net["G_ema"]
    found = (G.img_resolution, G.img_channels, G.c_dim)
    if found != (resolution, channels, c_dim):
        raise StyleGANError(
            f"--resume {source} makes {found[0]}x{found[0]} images with {found[1]} channel(s) and c_dim {found[2]}, "
            f"but the dataset has {resolution}x{resolution}, {channels} channel(s) and c_dim {c_dim}",
            "resume from a network trained at the dataset's resolution/channels, or toggle --cond")


MetricsFn = Callable[[Path, dict], dict[str, float]]


COLOR_AUGMENTATIONS = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def check_augpipe_fits(opts: TrainingOptions, channels: int) -> None:
    """Colour augmentation is defined for RGB and grayscale only: refuse e.g. RGBA before anything is written."""
    from stylegan.training.augment import AUGPIPE_PRESETS
    if opts.aug == "noaug" or channels in (1, 3):
        return
    if any(AUGPIPE_PRESETS[opts.augpipe].get(k) for k in COLOR_AUGMENTATIONS):
        raise StyleGANError(f"--augpipe {opts.augpipe} includes colour augmentation, which needs RGB or grayscale "
                            f"images, but the dataset has {channels} channels",
                            "use --augpipe bg (or blit/geom), --aug noaug, or remake the dataset with --channels 3")


def train(opts: TrainingOptions, metrics_fn: MetricsFn | None = None) -> Path | None:
    """Run (or resume) training as described by ``opts``; returns the run directory on rank 0.

    ``metrics_fn(snapshot_path, context)`` is the metrics hook: called on every rank right after each
    snapshot is written (``snapshot_path`` is None on ranks other than 0), with ``context`` =
    {"G_ema", "dataset", "device", "rank", "world", "names"} (names = ``opts.metrics``); it returns
    {metric name: value}, recorded as ``Metrics/<name>`` in stats.jsonl, TensorBoard and the plot.
    None (``--metrics none``) skips metrics.
    """
    tune_cpu_allocator()  # the step's large activations are reused instead of page-faulted afresh each time
    rank = dist_utils.init_from_env(opts.device)
    try:
        with cuda_arithmetic(benchmark=opts.cudnn_benchmark, allow_tf32=opts.allow_tf32):
            return _train(opts, rank, metrics_fn)
    finally:
        process_group.leave()


def _snapshot_path(run_dir: Path, cur_nimg: int) -> Path:
    return run_dir / f"network-snapshot-{cur_nimg // 1000:06d}.safetensors"


def _train(opts: TrainingOptions, rank: dist_utils.Rank, metrics_fn: MetricsFn | None) -> Path | None:
    from stylegan.data import require_labels
    from stylegan.formats import load_network
    from stylegan.training.augment import AUGPIPE_PRESETS, AugmentPipe

    outdir = Path(opts.outdir)
    dataset = open_dataset(opts)
    if opts.cond:
        require_labels(dataset, "--cond")
    res, channels = dataset.resolution, dataset.num_channels
    check_augpipe_fits(opts, channels)
    c_dim = dataset.label_dim if opts.cond else 0
    G_kwargs, D_kwargs = network_kwargs(opts, res, channels, c_dim)
    torch.manual_seed(opts.seed)
    G = build_network("Generator", G_kwargs)
    D = build_network("Discriminator", D_kwargs)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if opts.aug != "noaug":
        augment_pipe = AugmentPipe(**AUGPIPE_PRESETS[opts.augpipe])
        augment_pipe.p.fill_(opts.p)

    progress, resume_state, run_dir = Progress(), None, None
    if opts.resume == "latest":
        latest = find_latest_snapshot(outdir) if outdir.is_dir() else None
        if latest is None:
            raise StyleGANError(f"--resume latest found no network-snapshot-*.safetensors under {outdir}",
                                "start a new run without --resume, or point --outdir at an earlier run's folder")
        state = snap.load_training_snapshot(latest)
        check_resume_fits(state["networks"], res, channels, c_dim, str(latest))
        for name, module in [("G", G), ("D", D), ("G_ema", G_ema)]:
            copy_matching_weights(state["networks"][name], module, name)
        if augment_pipe is not None and state["networks"].get("augment_pipe") is not None:
            augment_pipe.p.copy_(snap.augment_p(state["networks"]["augment_pipe"]))
        progress, resume_state = state["progress"], state
        if progress.cur_nimg >= opts.total_kimg * 1000:
            raise StyleGANError(f"{latest} has already trained for {progress.cur_nimg / 1000:g} kimg "
                                f"(--kimg {opts.total_kimg:g})", "pass a larger --kimg to train further")
        run_dir = latest.parent
    elif opts.resume:
        net = load_network(opts.resume)
        check_resume_fits(net, res, channels, c_dim, opts.resume)
        for name, module in [("G", G), ("D", D), ("G_ema", G_ema)]:
            if name in net:
                copy_matching_weights(net[name], module, name)
        if "G" not in net:
            copy_matching_weights(net["G_ema"], G, "G")

    fresh = rank.is_main and run_dir is None
    if fresh:
        outdir.mkdir(parents=True, exist_ok=True)
        run_dir = new_run_dir(outdir, describe(opts, Path(opts.data).stem))
    try:
        return _train_in(opts, rank, dataset, G, D, G_ema, augment_pipe, run_dir, progress, resume_state, metrics_fn)
    except KeyboardInterrupt:
        # Ctrl-C before the training loop took over SIGINT: no snapshot exists, so a new run folder holds
        # nothing worth keeping, and leaving it would only make the next run 00001 and `--resume latest` fail.
        if fresh:
            _remove_unstarted_run(run_dir)
        raise


def _remove_unstarted_run(run_dir: Path) -> None:
    """Delete ``run_dir`` when it holds no snapshot and only files training writes at its start."""
    names = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
    startup = {"training_options.json", "log.txt", "reals.png", "fakes_init.png", "stats.jsonl"}
    if all(n in startup or n.startswith("events.out.tfevents.") for n in names):
        shutil.rmtree(run_dir, ignore_errors=True)


def _train_in(opts: TrainingOptions, rank: dist_utils.Rank, dataset, G, D, G_ema, augment_pipe, run_dir: Path,
              progress: Progress, resume_state, metrics_fn: MetricsFn | None) -> Path | None:
    """The part of ``_train`` after the networks are built and the run folder is chosen."""
    if rank.is_main:
        with atomic_path(run_dir / "training_options.json") as tmp:
            tmp.write_text(json.dumps(opts.to_dict(), indent=2))

    trainer = Trainer(opts, rank, dataset, G, D, G_ema, augment_pipe, run_dir, progress, resume_state)
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
