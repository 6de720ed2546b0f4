"""Mass projection: every target image on every snapshot of a training run, scored by PSNR, SSIM, MSE, LPIPS.

Writes into ``outdir``:
  ``state.json``        finished pairs and their scores (rewritten atomically after each pair: the resume point)
  ``KIMG_NAME/TARGET/`` ``target.png``, ``proj.png`` and ``projected_w.npz`` of each pair
  ``metrics.csv``       one row per (snapshot, image) pair
  ``metrics-mean.csv``  one row per snapshot: the mean over its images
  ``metrics.json``      both tables
  ``plot-<metric>.png`` each metric against snapshot kimg (per-image points and the mean)
A rerun with the same options skips the pairs already in ``state.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stylegan.atomic import atomic_output
from stylegan.errors import StyleGANError, setting
from stylegan.explore.labels import CLASS_SETTING
from stylegan.explore.project_jobs import target_classes
from stylegan.explore.projection_files import render_projection, write_projection
from stylegan.explore.projector import DEFAULT_SEED, ProjectorConfig, check_projectable, project
from stylegan.explore.quality import METRICS, image_quality
from stylegan.explore.targets import list_targets, output_name, read_target, unique_names

STATE_FILE = "state.json"
STATE_VERSION = 1
NETWORK_SUFFIXES = (".pkl", ".safetensors")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Snapshot:
    kimg: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def find_snapshots(folder: str | os.PathLike) -> list[Snapshot]:
    """Network files (``.pkl``/``.safetensors``) in ``folder`` whose name ends in a kimg number, in kimg order.

    ``network-snapshot-000100.safetensors`` → kimg 100. Files without a trailing number are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise StyleGANError(f"{setting('networks')} {folder} is not a folder",
                            "give the run folder holding network-snapshot-*.safetensors or .pkl files")
    found = []
    for path in folder.iterdir():
        m = _TRAILING_NUMBER.search(path.stem)
        if path.is_file() and path.suffix.lower() in NETWORK_SUFFIXES and m is not None:
            found.append(Snapshot(int(m.group(1)), path))
    if not found:
        raise StyleGANError(f"{folder} holds no network snapshots (NAME-<kimg>.pkl or .safetensors)",
                            "give the run folder that `stylegan train` wrote")
    return sorted(found, key=lambda s: (s.kimg, s.name))


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path, "results file", "check free space and permissions") as tmp:
        tmp.write_text(text, encoding="utf-8")


def _state_options(config: ProjectorConfig, seed: int, class_idx: int | None) -> dict:
    return {"projector": asdict(config), "seed": seed, "class": class_idx}


def load_state(outdir: Path, options: dict) -> dict:
    """The saved state in ``outdir`` (an empty one if none); StyleGANError if it was made with other options."""
    path = outdir / STATE_FILE
    if not path.exists():
        return {"version": STATE_VERSION, "options": options, "results": []}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        ok = state.get("version") == STATE_VERSION and isinstance(state.get("results"), list)
    except (OSError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise StyleGANError(f"{path} is not a mass-project state file",
                            f"remove it, or choose another {setting('outdir')}")
    if state.get("options") != options:
        raise StyleGANError(f"{outdir} holds results made with other projector options",
                            f"rerun with the same {setting('config', '--num-steps/--w-plus')}, {setting('seed')} and "
                            f"{CLASS_SETTING}, or choose another {setting('outdir')}")
    return state


def mean_rows(results: list[dict]) -> list[dict]:
    """Per-snapshot means of each metric over its images (None when no image has the metric)."""
    rows = []
    for network in dict.fromkeys(r["network"] for r in results):
        mine = [r for r in results if r["network"] == network]
        row = {"network": network, "kimg": mine[0]["kimg"], "num_images": len(mine)}
        for m in METRICS:
            values = [r[m] for r in mine if r[m] is not None]
            row[m] = float(np.mean(values)) if values else None
        rows.append(row)
    return sorted(rows, key=lambda r: (r["kimg"], r["network"]))


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in columns})
    return buf.getvalue()


def plot_metrics(results: list[dict], means: list[dict], outdir: Path) -> list[Path]:
    """``plot-<metric>.png``: each image's score (dots) and the snapshot mean (line) against kimg."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    paths = []
    for m in METRICS:
        points = [(r["kimg"], r[m]) for r in results if r[m] is not None]
        line = [(r["kimg"], r[m]) for r in means if r[m] is not None]
        if not line:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        ax.scatter(*zip(*points), s=12, alpha=0.4, label="per image")
        ax.plot(*zip(*line), marker="o", label="mean")
        ax.set_xlabel("snapshot (kimg)")
        ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM", "mse": "MSE", "lpips": "LPIPS"}[m])
        ax.set_title(f"{m.upper()} of projections by snapshot")
        ax.grid(alpha=0.3)
        ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        path = outdir / f"plot-{m}.png"
        with atomic_output(path, "plot", "check free space and permissions") as tmp:
            tmp.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def write_tables(results: list[dict], outdir: Path) -> list[Path]:
    """``metrics.csv``, ``metrics-mean.csv``, ``metrics.json`` and the plots from ``results``."""
    results = sorted(results, key=lambda r: (r["kimg"], r["network"], r["image"]))
    means = mean_rows(results)
    columns = ["network", "kimg", "image", *METRICS]
    _write_text(outdir / "metrics.csv", _csv(results, columns))
    _write_text(outdir / "metrics-mean.csv", _csv(means, ["network", "kimg", "num_images", *METRICS]))
    _write_text(outdir / "metrics.json", json.dumps({"per_image": results, "per_snapshot": means}, indent=2) + "\n")
    return [outdir / "metrics.csv", outdir / "metrics-mean.csv", outdir / "metrics.json",
            *plot_metrics(results, means, outdir)]


def mass_project(
    networks: str | os.PathLike,
    data: str | os.PathLike,
    num_images: int,
    outdir: str | os.PathLike,
    *,
    load_generator: Callable[[Path], torch.nn.Module],
    detector: torch.jit.ScriptModule,
    config: ProjectorConfig = ProjectorConfig(),
    seed: int = DEFAULT_SEED,
    class_idx: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Project the first ``num_images`` of ``data`` on every snapshot in ``networks``; returns the state dict.

    ``load_generator(path)`` returns the G_ema to project with (on the detector's device). Pairs already in
    ``outdir/state.json`` are skipped; the state is saved after every pair, so an interrupted run resumes.
    """
    if num_images < 1:
        raise StyleGANError(f"{setting('num_images')} is {num_images}, but must be at least 1",
                            "project at least 1 image")
    config.check()
    snapshots = find_snapshots(networks)
    targets, _ = list_targets(data, limit=num_images)
    names = unique_names([output_name(t.name) for t in targets])
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    state = load_state(outdir, _state_options(config, seed, class_idx))
    done = {(r["network"], r["image"]) for r in state["results"]}
    todo = [(s, t, n) for s in snapshots for t, n in zip(targets, names) if (s.name, t.name) not in done]
    log(f"{len(snapshots)} snapshots x {len(targets)} images: {len(todo)} to project, "
        f"{len(snapshots) * len(targets) - len(todo)} already done")
    G, loaded, classes = None, None, {}
    for i, (snap, target, name) in enumerate(todo):
        if loaded != snap.path:
            G, loaded = load_generator(snap.path), snap.path
            check_projectable(G)
            # --class, or each target's own class label from the dataset.json; all checked up front.
            classes = dict(zip([t.name for t in targets], target_classes(G, targets, class_idx)))
        image = read_target(target, G.img_resolution, G.img_channels)
        log(f"[{i + 1}/{len(todo)}] {snap.name} (kimg {snap.kimg}) <- {target.name}")
        projection = project(G, torch.from_numpy(image).permute(2, 0, 1), detector, config=config, seed=seed,
                             class_idx=classes[target.name], progress=progress)
        pair_dir = outdir / snap.path.stem / name
        write_projection(G, image, projection, pair_dir, save_video=False)
        proj = next(render_projection(G, projection.final_ws))  # the pixels of proj.png
        scores = {k: _finite(v) for k, v in image_quality(image, proj, detector).items()}
        state["results"].append({"network": snap.name, "kimg": snap.kimg, "image": target.name, **scores})
        _write_text(outdir / STATE_FILE, json.dumps(state, indent=1) + "\n")
    write_tables(state["results"], outdir)
    return state
