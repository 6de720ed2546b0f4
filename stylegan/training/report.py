"""What a run reports: the per-tick progress line, stats.jsonl, log.txt, TensorBoard, and a PNG plot."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from stylegan.atomic import atomic_path

PLOTTED = [  # (panel title, stat keys)
    ("losses", ["Loss/G/loss", "Loss/D/loss"]),
    ("regularisers", ["Loss/r1_penalty", "Loss/pl_penalty"]),
    ("augmentation p", ["Progress/augment"]),
    ("speed (sec/kimg)", ["Timing/sec_per_kimg"]),
]


class StatsAccumulator:
    """Collects scalar samples during a tick and reduces them to means (over all ranks)."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, name: str, values: list[torch.Tensor] | torch.Tensor | float) -> None:
        if isinstance(values, (int, float)):
            self.sums[name] += float(values)
            self.counts[name] += 1
            return
        flat = torch.cat([v.reshape(-1) for v in values]) if isinstance(values, list) else values.reshape(-1)
        self.sums[name] += float(flat.double().sum())
        self.counts[name] += flat.numel()

    def reduce(self, world: int) -> dict[str, float]:
        names = sorted(self.sums)
        if world > 1 and names:
            import torch.distributed as dist
            t = torch.tensor([[self.sums[n], self.counts[n]] for n in names], dtype=torch.float64)
            dist.all_reduce(t)
            self.sums = dict(zip(names, t[:, 0].tolist()))
            self.counts = dict(zip(names, t[:, 1].tolist()))
        means = {n: self.sums[n] / self.counts[n] for n in names if self.counts[n]}
        self.sums, self.counts = defaultdict(float), defaultdict(int)
        return means


class RunReporter:
    """Rank 0's writer of everything a person watches during training."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, echo: bool = True):
        self.run_dir, self.echo = run_dir, echo
        self.history: list[dict] = []
        stats_path = run_dir / "stats.jsonl"
        if stats_path.exists():  # a resumed run keeps its curves
            for line in stats_path.read_text().splitlines():
                try:
                    self.history.append(json.loads(line))
                except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                    break  # a line cut short by a crash (or damaged) ends the history
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run_dir))
            except Exception:  # tensorboard is optional
                self.tb = None

    def log(self, text: str) -> None:
        if self.echo:
            print(text, flush=True)
        with open(self.run_dir / "log.txt", "a") as f:
            f.write(text + "\n")

    def record(self, stats: dict[str, float]) -> None:
        self.history.append(stats)
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(stats) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.tb is not None:
            step = int(stats.get("Progress/kimg", 0) * 1000)
            for name, value in stats.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(name, value, global_step=step)
            self.tb.flush()

    def plot(self) -> None:
        """Write training_curves.png: losses, regularisers, ADA p and speed against kimg."""
        if not self.history:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metric_keys = sorted({k for h in self.history for k in h if k.startswith("Metrics/")})
        panels = PLOTTED + ([("metrics", metric_keys)] if metric_keys else [])
        fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.2 * len(panels)), sharex=True)
        kimg = np.array([h.get("Progress/kimg", np.nan) for h in self.history])
        for ax, (title, keys) in zip(np.atleast_1d(axes), panels):
            for key in keys:
                ys = np.array([h.get(key, np.nan) for h in self.history], dtype=float)
                seen = np.isfinite(ys) & np.isfinite(kimg)  # lazy regularisers and metrics skip some ticks
                if seen.any():
                    ax.plot(kimg[seen], ys[seen], label=key.split("/", 1)[-1], marker="." if seen.sum() < 50 else None)
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        np.atleast_1d(axes)[-1].set_xlabel("kimg")
        fig.tight_layout()
        with atomic_path(self.run_dir / "training_curves.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def format_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    return f"{s // 86400}d {s // 3600 % 24:02d}h"
