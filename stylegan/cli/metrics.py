"""``stylegan metrics``: FID, KID, precision/recall, IS and PPL of a network, as the official tables report them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import torch

from stylegan.cli.options import device_option, network_option, quiet_option, threads_option
from stylegan.errors import StyleGANError

if TYPE_CHECKING:
    from stylegan.metrics.distributed import Shard


@click.command()
@network_option
@click.option("--metrics", "metric_names", metavar="LIST",
              help="Comma-separated metrics, e.g. fid50k_full,kid50k_full (NAME@N: N generated images). "
                   "[default: fid50k_full]")
@click.option("--data", type=click.Path(path_type=Path), metavar="ZIP|DIR",
              help="Dataset the network was trained on [default: the path stored in the network, if it exists].")
@click.option("--mirror/--no-mirror", default=None,
              help="The dataset was trained with x-flips (legacy metrics use them) [default: as stored in the network].")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for all random draws.")
@click.option("--num-gen", type=click.IntRange(min=1), metavar="N",
              help="Quick version: N generated images (PPL: samples) instead of 50000.")
@click.option("--detector-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder with the detector files (offline use): inception-2015-12-05.pt, vgg16.pt, and for the _pt "
                   "metrics pt_inception-2015-12-05-6726825d.pth, vgg16-397923af.pth, for ls the 40 "
                   "celebahq-classifier-NN-*.pkl [default: "
                   "$STYLEGAN_DETECTOR_DIR, else download once].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.jsonl",
              help="Append one JSON line per metric here.")
@click.option("--export-stats", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.npz",
              help="Write the dataset's Inception statistics (mu, sigma, count); without --metrics, only that.")
@click.option("--ref-stats", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.npz|FILE.pkl",
              help="Reference statistics that FID uses instead of the dataset: an .npz with mu, sigma (ours, "
                   "pytorch-fid, clean-fid) or an MMGeneration FID-Reals .pkl. Ours record their Inception variant, "
                   "which must match the metric's.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per detector call.")
@click.option("--no-cache", is_flag=True, help="Recompute the dataset statistics instead of reusing cached ones.")
@device_option
@threads_option
@quiet_option
def metrics(network: str, metric_names: str | None, data: Path | None, mirror: bool | None, seed: int,
            num_gen: int | None, detector_dir: Path | None, out: Path | None, export_stats: Path | None,
            ref_stats: Path | None, batch_size: int, no_cache: bool, device: torch.device, quiet: bool) -> None:
    """Measure a network with the official metrics and protocol; print a table.

    \b
    Metrics: fid50k_full kid50k_full pr50k3_full ppl2_wend is50k
             fid50k kid50k pr50k3 ppl_zfull ppl_wfull ppl_zend ppl_wend
             fid50k_full_pt fid50k_pt pr50k3_full_pt pr50k3_pt  (_pt: the PyTorch
             Inception of pytorch-fid / torchvision's VGG16, as MMGeneration reports)
             ls  (linear separability, ls_z and ls_w: the StyleGAN paper's 40 CelebA-HQ
             attribute classifiers; networks of 256x256 and up; ls@N keeps N/2)
    \b
    Examples:
      stylegan metrics --network ffhq.pkl --data ffhq.zip --metrics fid50k_full,kid50k_full --mirror
      stylegan metrics --network snapshot.safetensors --metrics fid50k_full@1000 --out metrics.jsonl
      stylegan metrics --data ffhq.zip --export-stats ffhq-stats.npz
      stylegan metrics --network ffhq.pkl --metrics fid50k_full_pt --ref-stats ffhq-1024-50k-rgb.pkl
    Under torchrun (one process per GPU) the work is shared out; rank 0 prints and writes.
    """
    from stylegan.metrics.distributed import shutdown, start_shard
    from stylegan.metrics.reports import ensure_writable_parent
    from stylegan.metrics.specs import parse_metrics

    if metric_names is not None or export_stats is None:
        parse_metrics(metric_names or "fid50k_full", num_gen)  # bad names fail before anything is loaded
    for path, option in ((out, "--out"), (export_stats, "--export-stats")):
        ensure_writable_parent(path, option)
    shard, device = start_shard(device)  # under torchrun, auto or plain cuda → this process's own GPU
    try:
        _run(shard, network, metric_names, data, mirror, seed, num_gen, detector_dir, out, export_stats, ref_stats,
             batch_size, no_cache, device, quiet)
    finally:
        shutdown(shard)


def _run(shard: Shard, network: str, metric_names: str | None, data: Path | None, mirror: bool | None, seed: int,
         num_gen: int | None, detector_dir: Path | None, out: Path | None, export_stats: Path | None,
         ref_stats: Path | None, batch_size: int, no_cache: bool, device: torch.device, quiet: bool) -> None:
    from stylegan.formats import load_network_file
    from stylegan.metrics.evaluation import evaluate, reference_stats
    from stylegan.metrics.reports import append_result, format_table, snapshot_kimg, write_reference_stats

    def note(message: str) -> None:
        if shard.is_main:
            click.echo(f"warning: {message}", err=True)

    if metric_names is None and export_stats is not None:  # statistics only: no network needed
        if data is None:
            raise StyleGANError("--export-stats needs the dataset", "pass it with --data PATH")
        stats = reference_stats(data, mirror=bool(mirror), device=device, detector_dir=detector_dir,
                                progress=not quiet, cache=not no_cache, batch=batch_size)
        if shard.is_main:
            write_reference_stats(stats, export_stats)
            click.echo(f"wrote {export_stats} ({stats.count} images, {stats.mu.size} features)")
        return

    from stylegan.metrics.stats import FeatureStats

    reference = FeatureStats.load(ref_stats) if ref_stats is not None else None  # a bad file fails before the network
    nets, _extra, training = load_network_file(network, progress=not quiet and shard.is_main)
    G = nets["G_ema"]
    stored = nets.get("training_set_kwargs") or {}
    if data is None and stored.get("path") and Path(stored["path"]).exists():
        data = Path(stored["path"])
        note(f"using dataset {data} from the network's training options")
    if mirror is None:
        mirror = bool(stored.get("xflip", False)) if data is not None and stored.get("path") and \
            Path(stored["path"]) == data else False

    counters = training.get("progress") or {}
    results = evaluate(metric_names or "fid50k_full", G, data, mirror=mirror, device=device,
                       detector_dir=detector_dir, num_gen=num_gen, seed=seed, progress=not quiet,
                       cache=not no_cache, ref_stats=reference, export_stats=export_stats, batch=batch_size,
                       network=network, snapshot_kimg=snapshot_kimg(network, counters.get("cur_nimg")), warn=note)
    if not shard.is_main:
        return
    click.echo(format_table(results))
    if out is not None:
        for r in results:
            append_result(out, r)
        click.echo(f"appended {len(results)} line(s) to {out}")
    if export_stats is not None:
        click.echo(f"wrote {export_stats}")
