"""The progressive-growing schedule against values worked out by hand from the official StyleGAN (v1)
``training_schedule`` formulas (training/training_loop.py of NVlabs/stylegan):

    phase_dur = training + transition;  phase_idx = floor(kimg / phase_dur);  phase_kimg = kimg − idx·dur
    lod = log2(res) − floor(log2(start)) − phase_idx − max(phase_kimg − training, 0) / transition, ≥ 0
    resolution = 2^(log2(res) − floor(lod));  dicts looked up at that resolution;  minibatch −= minibatch % gpus

Each row below was computed on paper from these lines (not by running our code).
"""

import math

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.training import progressive as prog
from stylegan.training.progressive import GrowthSchedule, official_minibatch

# The official FFHQ configuration (train.py): start 8, 600 + 600 kimg, lr dicts, tick dict, 8-GPU minibatches.
FFHQ_LR = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
FFHQ_TICK = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


def ffhq(gpus: int, minibatch_base: int, minibatch: dict) -> GrowthSchedule:
    return GrowthSchedule(resolution=1024, gpus=gpus, start_resolution=8, training_kimg=600, transition_kimg=600,
                          minibatch_base=minibatch_base, minibatch=minibatch, G_lrate_base=0.001, G_lrate=FFHQ_LR,
                          D_lrate_base=0.001, D_lrate=FFHQ_LR, tick_kimg_base=160, tick_kimg=FFHQ_TICK)


# (cur_nimg, lod, resolution, minibatch, lr, tick kimg) — 8 GPUs: base 32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}
FFHQ_8GPU = [
    (0, 7.0, 8, 256, 0.001, 140),  # log2 1024 − log2 8 = 7
    (300_000, 7.0, 8, 256, 0.001, 140),
    (599_999, 7.0, 8, 256, 0.001, 140),
    (600_000, 7.0, 8, 256, 0.001, 140),  # the fade-in starts: max(0, 0)/600 = 0
    (600_001, 7 - 0.001 / 600, 16, 128, 0.001, 120),  # a hair into the fade-in: the new resolution's settings
    (700_000, 7 - 100 / 600, 16, 128, 0.001, 120),
    (900_000, 6.5, 16, 128, 0.001, 120),
    (1_199_999, 7 - 599.999 / 600, 16, 128, 0.001, 120),
    (1_200_000, 6.0, 16, 128, 0.001, 120),  # phase 1 starts: lod 7 − 1
    (1_234_567, 6.0, 16, 128, 0.001, 120),
    (1_800_000, 6.0, 16, 128, 0.001, 120),
    (2_100_000, 5.5, 32, 64, 0.001, 100),
    (2_400_000, 5.0, 32, 64, 0.001, 100),
    (3_300_000, 4.5, 64, 32, 0.001, 80),  # phase 2, 900 kimg in
    (3_600_000, 4.0, 64, 32, 0.001, 80),
    (4_500_000, 3.5, 128, 32, 0.0015, 60),  # 128² is not in the minibatch dict: base 32
    (5_700_000, 2.5, 256, 32, 0.002, 40),
    (6_000_000, 2.0, 256, 32, 0.002, 40),
    (6_900_000, 1.5, 512, 32, 0.003, 30),
    (7_950_000, 1 - 150 / 600, 1024, 32, 0.003, 20),  # phase 6 (7200–8400), 750 kimg in
    (8_100_000, 0.5, 1024, 32, 0.003, 20),
    (8_399_999, 7 - 6 - 599.999 / 600, 1024, 32, 0.003, 20),
    (8_400_000, 0.0, 1024, 32, 0.003, 20),  # 7 − 7: fully grown
    (9_000_000, 0.0, 1024, 32, 0.003, 20),  # 7 − 7 − 0.5 clipped at 0
    (25_000_000, 0.0, 1024, 32, 0.003, 20),
]

# 1 GPU: base 4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}
FFHQ_1GPU = [
    (0, 7.0, 8, 128, 0.001, 140),
    (1_500_000, 6.0, 16, 128, 0.001, 120),
    (2_700_000, 5.0, 32, 64, 0.001, 100),
    (3_300_000, 4.5, 64, 32, 0.001, 80),
    (4_200_000, 4.0, 64, 32, 0.001, 80),
    (4_500_000, 3.5, 128, 16, 0.0015, 60),
    (5_400_000, 3.0, 128, 16, 0.0015, 60),
    (5_700_000, 2.5, 256, 8, 0.002, 40),
    (6_900_000, 1.5, 512, 4, 0.003, 30),
    (8_100_000, 0.5, 1024, 4, 0.003, 20),  # 1024² is not listed: base 4
    (12_000_000, 0.0, 1024, 4, 0.003, 20),
]


def _check(sched: GrowthSchedule, nimg: int, lod: float, res: int, minibatch: int, lr: float, tick: float) -> None:
    state = sched.at(nimg)
    assert state.kimg == nimg / 1000
    assert state.lod == pytest.approx(lod, abs=1e-12), nimg
    assert (state.resolution, state.minibatch, state.tick_kimg) == (res, minibatch, tick), nimg
    assert state.G_lrate == lr and state.D_lrate == lr, nimg


@pytest.mark.parametrize("row", FFHQ_8GPU, ids=lambda r: f"{r[0] / 1000:g}kimg")
def test_the_official_ffhq_schedule_on_8_gpus(row):
    base, per_res = official_minibatch(8)
    _check(ffhq(8, base, per_res), *row)


@pytest.mark.parametrize("row", FFHQ_1GPU, ids=lambda r: f"{r[0] / 1000:g}kimg")
def test_the_official_ffhq_schedule_on_1_gpu(row):
    base, per_res = official_minibatch(1)
    _check(ffhq(1, base, per_res), *row)


def test_the_gpu_presets_are_the_official_ones_and_counts_between_take_the_one_below():
    assert official_minibatch(1) == (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4})
    assert official_minibatch(2) == (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8})
    assert official_minibatch(4) == (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16})
    assert official_minibatch(8) == (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32})
    assert official_minibatch(3) == official_minibatch(2) and official_minibatch(16) == official_minibatch(8)


def test_the_minibatch_is_rounded_down_to_a_multiple_of_the_gpu_count():
    sched = GrowthSchedule(resolution=64, gpus=3, minibatch_base=32, minibatch={8: 256})
    assert sched.at(0).minibatch == 255  # 256 − 256 % 3
    assert sched.at(10**9).minibatch == 30  # 32 − 2 at 64²


def test_other_starts_and_phase_lengths():
    # The function's own default start (4) at 32²: lod 3 = 4×4, growing 10 + 20 kimg per resolution.
    sched = GrowthSchedule(resolution=32, start_resolution=4, training_kimg=10, transition_kimg=20)
    table = [(0, 3.0, 4), (10_000, 3.0, 4), (15_000, 2.75, 8), (29_000, 3 - 19 / 20, 8), (30_000, 2.0, 8),
             (50_000, 1.5, 16), (70_000, 1.0, 16), (80_000, 0.5, 32), (90_000, 0.0, 32), (120_000, 0.0, 32)]
    for nimg, lod, res in table:
        state = sched.at(nimg)
        assert (state.lod, state.resolution) == (pytest.approx(lod, abs=1e-12), res), nimg
    # No growing (the official 'nogrowing' setting): start at full size, phases of 0 kimg.
    flat = GrowthSchedule(resolution=1024, start_resolution=1024, training_kimg=0, transition_kimg=0)
    assert [flat.at(n).lod for n in (0, 1, 10**7)] == [0.0, 0.0, 0.0]
    # A fade-in of 0 kimg jumps: 8 → 16 exactly when the training phase ends.
    jump = GrowthSchedule(resolution=16, start_resolution=8, training_kimg=5, transition_kimg=0)
    assert [jump.at(n).lod for n in (0, 4_999, 5_000, 6_000)] == [1.0, 1.0, 0.0, 0.0]


def test_adam_resets_when_a_fade_in_starts_or_ends():
    # (previous lod, lod) → reset? (floor or ceil changed)
    cases = [(None, 7.0, True), (7.0, 7.0, False), (7.0, 6.99, True), (6.99, 6.5, False), (6.5, 6.0, True),
             (6.0, 6.0, False), (0.5, 0.0, True), (0.0, 0.0, False)]
    for previous, lod, expected in cases:
        assert prog.lod_changed_level(previous, lod) is expected, (previous, lod)


def test_style_mixing_picks_among_the_layers_in_use():
    # 32²: 8 ws, two per resolution 4² … 32². lod 3: 4² only → 2; lod 2: up to 8² → 4; lod 1.5 (16² fading
    # in) and 1 → 6; below 1 (32² in use) → 8.
    assert [prog.mixable_ws(8, lod) for lod in (3.0, 2.0, 1.5, 1.0, 0.25, 0.0)] == [2, 4, 6, 6, 8, 8]


def test_per_resolution_maps_parse_and_refuse_bad_entries():
    assert prog.parse_per_resolution("4:512, 8:256,16:128", "--batch-per-res", integer=True) == \
        {4: 512, 8: 256, 16: 128}
    assert prog.parse_per_resolution("128:0.0015,256:2e-3", "--glr-per-res") == {128: 0.0015, 256: 0.002}
    assert prog.parse_per_resolution("none", "x") == {} and prog.parse_per_resolution("", "x") == {}
    for bad in ("4=512", "3:512", "4:0", "4:-1", "8:abc", "2:10", "4:nan", "4:1.5"):
        with pytest.raises(StyleGANError, match="--batch-per-res"):
            prog.parse_per_resolution(bad, "--batch-per-res", integer=True)
    assert prog.format_per_resolution({8: 256, 4: 512}) == "4:512,8:256"


def _reals_by_hand(pixels: torch.Tensor, lod: float) -> torch.Tensor:
    """float64 re-derivation: the level's image by 2×2 means in float then rounded (the official dataset
    tool's rint), to [−1, 1], blended with its 2×2-mean nearest copy by frac(lod), repeated to full size."""
    x = pixels.double()
    level = math.floor(lod)
    for _ in range(level):
        x = (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) * 0.25
    if level:
        x = torch.round(x)
    x = x * (2 / 255) - 1
    t = lod - level
    y = (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) * 0.25
    y = y.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    x = x + (y - x) * t
    return x.repeat_interleave(2**level, dim=2).repeat_interleave(2**level, dim=3)


@pytest.mark.parametrize("lod", [0.0, 0.25, 1.0, 1.5, 2.75, 3.0])
def test_reals_fade_with_lod(lod):
    pixels = torch.randint(0, 256, [3, 2, 32, 32], generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    ours = prog.faded_reals(pixels, lod)
    assert ours.shape == (3, 2, 32, 32) and ours.dtype == torch.float32
    # Inputs are multiples of 1/255 in [−1, 1]; a few float32 operations: errors of a few ulp of 1.
    torch.testing.assert_close(ours.double(), _reals_by_hand(pixels, lod), rtol=0, atol=1e-6)


def test_batches_follow_the_schedule_split_over_ranks_and_resume_at_a_group():
    sched = GrowthSchedule(resolution=16, start_resolution=4, training_kimg=0.024, transition_kimg=0.024,
                           minibatch_base=4, minibatch={4: 8, 8: 6})
    size, seed = 50, 3

    def take(sampler, count):
        it = iter(sampler)
        return [next(it) for _ in range(count)]

    whole = take(prog.ScheduledBatches(size, sched, 0, 1, seed), 40)
    # Sizes: read every 4 minibatches at the images shown so far.
    nimg, expected = 0, []
    for group in range(10):
        mb = sched.at(nimg).minibatch
        expected += [mb] * 4
        nimg += 4 * mb
    assert [len(b) for b in whole] == expected and {8, 6, 4} <= set(expected)
    # The stream is the epoch-shuffled order: each run of `size` indices is a permutation.
    flat = [i for b in whole for i in b]
    assert sorted(flat[:size]) == list(range(size))
    # Two ranks take halves of the same minibatches.
    halves = zip(take(prog.ScheduledBatches(size, sched, 0, 2, seed), 40),
                 take(prog.ScheduledBatches(size, sched, 1, 2, seed), 40))
    assert [a + b for a, b in halves] == whole
    # Resuming after 5 groups continues the same stream.
    start = sum(len(b) for b in whole[:20])
    assert take(prog.ScheduledBatches(size, sched, 0, 1, seed, start_nimg=start), 20) == whole[20:]


def test_pass_size_divides_the_share_and_keeps_whole_mbstd_groups():
    assert prog.pass_size(64, 64, 4) == 64
    assert prog.pass_size(64, 24, 4) == 16
    assert prog.pass_size(12, 8, 4) == 4
    assert prog.pass_size(6, 100, 4) == 3  # 6 does not split into groups of 4; 3 is one group of 3
