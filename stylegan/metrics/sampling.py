"""Images the metrics look at: generated ones drawn as the official metrics draw them, and real ones.

Generated images: z ~ N(0, I), labels drawn uniformly from the dataset's labels (conditional networks),
truncation off, G's default noise ('random'), converted to bytes by :func:`stylegan.pixels.float_to_bytes`.
They come in groups of :data:`GROUP` (the official generator batch); each group's z, labels and noise
come from its own seed derived from (``seed``, stream name, group number), so the images do not depend
on batch sizes, devices' RNG state or how groups are shared out over ranks.
"""

from __future__ import annotations

import contextlib
import copy
import zlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from stylegan.data import ImageDataset, leave_stop_signals_to_the_main_process
from stylegan.metrics.distributed import Shard
from stylegan.pixels import float_to_bytes

GROUP = 4  # images per generator call and per seed


def unit_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for unit ``index`` of ``stream``, stable across processes and platforms."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, zlib.crc32(stream.encode()), index])
    return int(state.generate_state(1, np.uint64)[0] & np.uint64(2**63 - 1))


def frozen_copy(net: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``net`` on ``device``, in eval mode and without gradients; ``net`` itself stays as it was
    (the metrics overwrite noise buffers and must not move or retrain the caller's network)."""
    twin = copy.deepcopy(net)
    twin.requires_grad_(False)
    twin.eval()
    return twin.to(device)


class LabelPool:
    """The labels generated images are conditioned on: rows of the dataset's labels, drawn uniformly.

    ``labels`` ``[N, c_dim]`` float32, or None for an unconditional network (labels ``[n, 0]``).
    """

    def __init__(self, labels: np.ndarray | None, c_dim: int):
        if c_dim > 0 and (labels is None or labels.ndim != 2 or labels.shape[1] != c_dim or len(labels) == 0):
            raise ValueError(f"a conditional network (c_dim {c_dim}) needs labels [N, {c_dim}]")
        self.c_dim = c_dim
        self.labels = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)) if c_dim > 0 else None

    @classmethod
    def from_dataset(cls, dataset: ImageDataset | None, c_dim: int) -> "LabelPool":
        if c_dim == 0:
            return cls(None, 0)
        assert dataset is not None
        return cls(np.stack([dataset.get_label(i) for i in range(len(dataset))]), c_dim)

    def draw(self, generator: torch.Generator, n: int) -> torch.Tensor:
        """Labels ``[n, c_dim]`` (CPU) for ``n`` images."""
        if self.labels is None:
            return torch.zeros([n, 0])
        return self.labels[torch.randint(len(self.labels), [n], generator=generator)]


@contextlib.contextmanager
def private_rng(device: torch.device) -> Iterator[None]:
    """Seed torch's global RNGs freely inside; the caller's RNG state comes back afterwards."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def generate_group(G: nn.Module, index: int, *, seed: int, labels: LabelPool, device: torch.device,
                   stream: str = "images") -> torch.Tensor:
    """Group ``index`` of the stream: uint8 images ``[GROUP, C, H, W]`` on ``device``.

    Call inside :func:`private_rng`: the group's seed is also put into torch's global RNG, which draws
    G's per-pixel noise.
    """
    s = unit_seed(seed, stream, index)
    gen = torch.Generator().manual_seed(s)
    z = torch.randn([GROUP, G.z_dim], generator=gen)
    c = labels.draw(gen, GROUP)
    torch.manual_seed(s)
    return float_to_bytes(G(z.to(device), c.to(device)))


def generated_batches(G: nn.Module, num: int, *, seed: int, labels: LabelPool, device: torch.device,
                      shard: Shard, batch: int = 64) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """This rank's share of the first ``num`` images of the stream, ``batch`` at a time.

    Yields ``(rows, images)``: the global sample numbers ``[b]`` (int64) and uint8 images ``[b, C, H, W]``.
    Row ``i`` belongs to group ``i // GROUP``; groups go to ranks round-robin.
    """
    num_groups = -(-num // GROUP)
    groups_per_batch = max(1, batch // GROUP)
    mine = list(shard.units(num_groups))
    with private_rng(device):
        for start in range(0, len(mine), groups_per_batch):
            chunk = mine[start: start + groups_per_batch]
            images = torch.cat([generate_group(G, g, seed=seed, labels=labels, device=device) for g in chunk])
            rows = np.concatenate([np.arange(g * GROUP, (g + 1) * GROUP) for g in chunk])
            keep = rows < num
            yield rows[keep], images[torch.from_numpy(keep).to(images.device)]


def group_sizes(num: int) -> np.ndarray:
    """Rows per group when the stream is cut at ``num`` images ``[ceil(num / GROUP)]``."""
    num_groups = -(-num // GROUP)
    return np.minimum(GROUP, num - GROUP * np.arange(num_groups)).astype(np.int64)


def real_batches(dataset: ImageDataset, num: int, *, shard: Shard, batch: int = 64,
                 workers: int = 0) -> Iterator[torch.Tensor]:
    """This rank's share (items ``rank, rank + world, …``) of the first ``num`` dataset items, as uint8
    ``[b, C, H, W]`` batches in item order."""
    items = list(shard.units(num))
    if not items:
        return
    # A private generator: the loader would otherwise draw its worker seed from the caller's global RNG.
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=items, num_workers=workers,
                                         prefetch_factor=2 if workers > 0 else None, generator=torch.Generator(),
                                         worker_init_fn=leave_stop_signals_to_the_main_process)
    for images, _labels in loader:
        yield images
