"""Generated and real images as the metrics draw them: deterministic per seed, independent of sharding."""

from __future__ import annotations

import numpy as np
import torch

from stylegan.data import ImageDataset
from stylegan.metrics.distributed import Shard
from stylegan.metrics.sampling import (
    GROUP,
    LabelPool,
    generated_batches,
    group_sizes,
    real_batches,
    unit_seed,
)

CPU = torch.device("cpu")


def all_generated(G, num, seed=0, shard=Shard(), batch=64, labels=None):
    labels = labels or LabelPool(None, 0)
    out = list(generated_batches(G, num, seed=seed, labels=labels, device=CPU, shard=shard, batch=batch))
    return np.concatenate([r for r, _ in out]), torch.cat([i for _, i in out])


def test_images_follow_the_documented_protocol(G):
    """Group g: z ~ randn from a generator seeded unit_seed(seed, 'images', g), G's noise from that seed too."""
    rows, images = all_generated(G, 10, seed=5)
    assert list(rows) == list(range(10)) and images.dtype == torch.uint8 and images.shape == (10, 3, 16, 16)
    for g in range(3):
        s = unit_seed(5, "images", g)
        z = torch.randn([GROUP, G.z_dim], generator=torch.Generator().manual_seed(s))
        torch.manual_seed(s)
        ref = (G(z, torch.zeros([GROUP, 0])) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        assert torch.equal(images[g * GROUP: (g + 1) * GROUP], ref[: min(GROUP, 10 - g * GROUP)])


def test_same_seed_same_images_whatever_the_batch_and_the_callers_rng(G):
    state = torch.get_rng_state()
    _, a = all_generated(G, 13, batch=8)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    torch.manual_seed(123)
    _, b = all_generated(G, 13, batch=64)
    assert torch.equal(a, b)
    _, c = all_generated(G, 13, seed=1)
    assert not torch.equal(a, c)


def test_rank_shares_together_are_the_single_process_images(G):
    rows1, images1 = all_generated(G, 22)
    parts = [all_generated(G, 22, shard=Shard(r, 3), batch=8) for r in range(3)]
    rows = np.concatenate([p[0] for p in parts])
    images = torch.cat([p[1] for p in parts])
    order = np.argsort(rows)
    assert list(rows[order]) == list(rows1)
    assert torch.equal(images[torch.from_numpy(order)], images1)
    assert list(group_sizes(22)) == [4, 4, 4, 4, 4, 2]


def test_labels_are_drawn_from_the_dataset(labeled_dataset):
    ds = ImageDataset(labeled_dataset)
    pool = LabelPool.from_dataset(ds, 3)
    c = pool.draw(torch.Generator().manual_seed(0), 600)
    assert c.shape == (600, 3) and torch.all(c.sum(1) == 1)
    assert torch.all(c.mean(0) > 0.25)  # all three classes appear, about equally often
    assert LabelPool(None, 0).draw(torch.Generator(), 4).shape == (4, 0)


def test_generated_pixels_are_truncated_like_the_official_tools():
    # x · 127.5 + 128, clamped and truncated: a generator whose output is known shows the bytes directly.
    class Constant(torch.nn.Module):
        z_dim = 2

        def forward(self, z, c):
            return torch.tensor([-2.0, -1.0, 0.0, 0.7 / 127.5, 0.999, 1.0, 3.0]).repeat(len(z), 1, 1, 1)

    _, images = all_generated(Constant(), 4)
    assert images.dtype == torch.uint8 and images[0].flatten().tolist() == [0, 0, 128, 128, 255, 255, 255]  # 128.7 → 128


def test_real_batches_shard_items_round_robin(dataset):
    ds = ImageDataset(dataset, xflip=True)
    every = torch.cat(list(real_batches(ds, 50, shard=Shard(), batch=16)))
    assert every.shape == (50, 3, 16, 16)
    assert torch.equal(every[0], torch.from_numpy(ds[0][0]))
    assert torch.equal(every[45], torch.from_numpy(ds[45][0]))  # a mirrored copy (items 40..79)
    mine = torch.cat(list(real_batches(ds, 50, shard=Shard(1, 2), batch=16)))
    assert torch.equal(mine, every[1::2])
