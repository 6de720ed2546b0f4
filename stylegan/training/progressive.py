"""Progressive growing (StyleGAN v1): the schedule of the level of detail, and the pieces the training loop
uses to follow it (real images faded by lod, data batches whose size changes with the resolution).

The schedule is a pure function of the images shown so far (``cur_nimg``), as in the official TF release:

* training spends ``training_kimg`` at a resolution, then ``transition_kimg`` fading in the next one;
* ``lod`` = log2(dataset resolution) − log2(start resolution) − (phases done) − (fraction of the current
  fade-in), never below 0; so lod counts how many doublings the networks are short of full size, and a
  fractional lod is a fade-in between two resolutions;
* the current resolution is ``2^(log2 full − floor(lod))``: the per-resolution minibatch size, learning
  rates and tick length switch to the new resolution when its fade-in starts.

The loop reads the schedule every ``repeats`` (4) minibatches; snapshots fall between such groups, so a
resumed run reads the schedule at the same ``cur_nimg`` as the uninterrupted one did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.limits import quote
from stylegan.pixels import bytes_to_float
from stylegan.training.sampler import index_stream

# The official FFHQ configuration of StyleGAN (v1), for 1, 2, 4 and 8 GPUs: (minibatch for resolutions not
# listed, minibatch per resolution). The learning rates and tick lengths below are the same for all.
OFFICIAL_MINIBATCH = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
OFFICIAL_LRATE_BASE = 0.001
OFFICIAL_LRATE = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
OFFICIAL_TICK_BASE = 160.0
OFFICIAL_TICK = {4: 160.0, 8: 140.0, 16: 120.0, 32: 100.0, 64: 80.0, 128: 60.0, 256: 40.0, 512: 30.0, 1024: 20.0}
OFFICIAL_START_RESOLUTION = 8
OFFICIAL_PHASE_KIMG = (600.0, 600.0)  # (training, transition) per resolution
MINIBATCH_REPEATS = 4  # minibatches between two readings of the schedule


def official_minibatch(gpus: int) -> tuple[int, dict[int, int]]:
    """(minibatch base, per-resolution minibatch) of the official preset for ``gpus`` GPUs: the preset of the
    largest listed count not above it (1, 2, 4 or 8)."""
    preset = max(count for count in OFFICIAL_MINIBATCH if count <= max(gpus, 1))
    base, per_res = OFFICIAL_MINIBATCH[preset]
    return base, dict(per_res)


@dataclass(frozen=True)
class GrowthSchedule:
    """The settings of the schedule (the official ``training_schedule`` arguments we use)."""

    resolution: int  # the dataset's (final) resolution, a power of two
    gpus: int = 1  # the minibatch is rounded down to a multiple of this
    start_resolution: int = OFFICIAL_START_RESOLUTION
    training_kimg: float = OFFICIAL_PHASE_KIMG[0]
    transition_kimg: float = OFFICIAL_PHASE_KIMG[1]
    minibatch_base: int = 32
    minibatch: Mapping[int, int] = field(default_factory=dict)
    G_lrate_base: float = OFFICIAL_LRATE_BASE
    G_lrate: Mapping[int, float] = field(default_factory=dict)
    D_lrate_base: float = OFFICIAL_LRATE_BASE
    D_lrate: Mapping[int, float] = field(default_factory=dict)
    tick_kimg_base: float = OFFICIAL_TICK_BASE
    tick_kimg: Mapping[int, float] = field(default_factory=dict)

    def at(self, cur_nimg: int) -> "ScheduleState":
        return schedule_at(self, cur_nimg)


@dataclass(frozen=True)
class ScheduleState:
    """What the schedule says at one point of a run."""

    kimg: float
    lod: float  # 0 = full resolution; 1.5 = halfway through fading in the resolution one below full
    resolution: int  # the resolution being trained or faded in: 2^(log2 full − floor(lod))
    minibatch: int  # images per minibatch, all processes together
    G_lrate: float
    D_lrate: float
    tick_kimg: float


def schedule_at(sched: GrowthSchedule, cur_nimg: int) -> ScheduleState:
    """The schedule after ``cur_nimg`` images, computed as the official ``training_schedule`` does."""
    kimg = cur_nimg / 1000.0
    phase_dur = sched.training_kimg + sched.transition_kimg
    phase_idx = math.floor(kimg / phase_dur) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = float(log2_int(sched.resolution) - math.floor(math.log2(sched.start_resolution)) - phase_idx)
    if sched.transition_kimg > 0:
        lod -= max(phase_kimg - sched.training_kimg, 0.0) / sched.transition_kimg
    lod = max(lod, 0.0)
    resolution = 2 ** (log2_int(sched.resolution) - math.floor(lod))
    minibatch = sched.minibatch.get(resolution, sched.minibatch_base)
    minibatch -= minibatch % sched.gpus
    return ScheduleState(
        kimg=kimg, lod=lod, resolution=resolution, minibatch=minibatch,
        G_lrate=sched.G_lrate.get(resolution, sched.G_lrate_base),
        D_lrate=sched.D_lrate.get(resolution, sched.D_lrate_base),
        tick_kimg=sched.tick_kimg.get(resolution, sched.tick_kimg_base))


def log2_int(value: int) -> int:
    """log2 of a power of two."""
    return int(value).bit_length() - 1


def is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


def lod_changed_level(previous: float | None, current: float) -> bool:
    """Whether going from ``previous`` to ``current`` lod starts or ends a fade-in (floor or ceil changes):
    when the official loop resets Adam. None (nothing trained yet) counts as a change."""
    if previous is None:
        return True
    return math.floor(previous) != math.floor(current) or math.ceil(previous) != math.ceil(current)


def mixable_ws(num_ws: int, lod: float) -> int:
    """How many ws the active layers read at ``lod``: two per resolution up to the current one. Style
    mixing picks its crossover among these."""
    return num_ws - 2 * math.floor(lod)


# --- parsing ---------------------------------------------------------------------------------------


def parse_per_resolution(text: str, what: str, integer: bool = False) -> dict[int, float]:
    """``"4:512,8:256"`` → {4: 512, 8: 256}: resolutions (powers of two ≥ 4) to positive numbers.
    An empty text (or ``none``) is an empty mapping."""
    fix = f"write {what} as RES:VALUE pairs separated by commas, e.g. 4:512,8:256 (or none)"
    result: dict[int, float] = {}
    if text.strip().lower() in ("", "none"):
        return result
    for item in text.split(","):
        key, sep, value = item.partition(":")
        try:
            res, number = int(key.strip()), (int if integer else float)(value.strip())
        except ValueError:
            raise StyleGANError(f"{what} has a bad entry {quote(item.strip())}", fix) from None
        if not sep or not is_power_of_two(res) or res < 4 or not (number > 0 and math.isfinite(number)):
            raise StyleGANError(f"{what} has a bad entry {quote(item.strip())} (resolutions are powers of two from 4, "
                                "values positive)", fix)
        result[res] = number
    return result


def format_per_resolution(values: Mapping[int, float]) -> str:
    return ",".join(f"{res}:{values[res]:g}" for res in sorted(values)) or "none"


# --- the data side ---------------------------------------------------------------------------------


def box_down(images: torch.Tensor, times: int) -> torch.Tensor:
    """``[N, C, H, W]`` averaged over 2×2 boxes ``times`` times: ``[N, C, H/2^t, W/2^t]``."""
    for _ in range(times):
        images = F.avg_pool2d(images, 2)
    return images


def faded_reals(pixels: torch.Tensor, lod: float) -> torch.Tensor:
    """Real images as D sees them at ``lod``: uint8 ``[N, C, H, W]`` → float32 in [−1, 1], full size.

    As the official multi-resolution datasets and their training feed them: the image at the current
    resolution (2×2 box averages of the full one, rounded to bytes as those files store them); during a
    fade-in it is blended with its own 2×-box-averaged, nearest-upsampled copy by frac(lod); then it is
    nearest-upscaled to full size.
    """
    level = math.floor(lod)
    x = pixels.to(torch.float32)
    if level > 0:
        x = box_down(x, level).round()  # round-half-even, as numpy's rint in the official dataset tool
    x = bytes_to_float(x)
    fraction = lod - level
    if fraction > 0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(x, coarse, fraction)
    if level > 0:
        x = F.interpolate(x, scale_factor=2 ** level, mode="nearest")
    return x


class ScheduledBatches(torch.utils.data.Sampler):
    """This process's share of each minibatch, with the minibatch size the schedule gives: a batch sampler.

    The images come in the same epoch-by-epoch order as :class:`~stylegan.training.sampler.GlobalBatchSampler`
    (shuffled by (seed, epoch)); the sizes follow ``sched`` read every ``repeats`` minibatches, starting at
    ``start_nimg`` images (a group boundary). Rank r takes the r-th of ``world`` equal slices.
    """

    def __init__(self, size: int, sched: GrowthSchedule, rank: int, world: int, seed: int, start_nimg: int = 0,
                 repeats: int = MINIBATCH_REPEATS):
        self.size, self.sched, self.rank, self.world = size, sched, rank, world
        self.seed, self.start_nimg, self.repeats = seed, start_nimg, repeats

    def __iter__(self) -> Iterator[list[int]]:
        nimg = self.start_nimg
        stream = index_stream(self.size, self.seed, nimg)
        while True:
            minibatch = self.sched.at(nimg).minibatch
            share = minibatch // self.world
            for _ in range(self.repeats):
                indices = [next(stream) for _ in range(minibatch)]
                yield indices[self.rank * share:(self.rank + 1) * share]
                nimg += minibatch


# --- the networks' lod -----------------------------------------------------------------------------


def lod_buffers(module: nn.Module) -> list[torch.Tensor]:
    """The ``lod`` buffers of a v1 network (G: ``synthesis.lod``; D: ``lod``)."""
    return [buffer for name, buffer in module.named_buffers() if name == "lod" or name.endswith(".lod")]


@torch.no_grad()
def set_lod(modules: list[nn.Module], lod: float) -> None:
    """Write ``lod`` into every module's lod buffers (which changes what they compute)."""
    for module in modules:
        buffers = lod_buffers(module)
        if not buffers:
            raise StyleGANError(f"{type(module).__name__} has no level of detail (lod) to grow with",
                                "progressive growing needs StyleGAN (v1) networks (--cfg stylegan1)")
        for buffer in buffers:
            buffer.fill_(lod)


def stored_lod(module: nn.Module) -> float | None:
    """The lod a network holds (of a snapshot: the lod it was last trained at); None without a lod."""
    buffers = lod_buffers(module)
    return float(buffers[0]) if buffers else None


def pass_size(per_rank: int, limit: int, mbstd_group: int) -> int:
    """Samples per forward pass: the largest divisor of this process's share that is at most ``limit`` and
    splits into whole minibatch-std groups."""
    size = max(1, min(limit, per_rank))
    while per_rank % size or (mbstd_group > 1 and size % min(mbstd_group, size)):
        size -= 1
    return size
