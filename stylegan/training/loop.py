"""The StyleGAN2-ADA training loop: a minibatch's phases with lazy regularisation, G's moving average,
adaptive augmentation, and the run's ticks and snapshots, on one process or many (``torchrun``).

Determinism by construction: every random draw of a (phase, sub-batch) is seeded from
(seed, minibatch index, phase, global sub-batch index) and the data order from (seed, epoch). So a run
resumed from a snapshot replays exactly what the uninterrupted run would have done, and N ranks give
the same result as one process that accumulates the same sub-batches.

The pieces live beside this module: phases.py (optimisers), sampler.py (seeds, data order), ema.py,
ada.py, progress.py (counters), grid.py (image grids), snapshot.py (files), report.py (logs, stats),
progressive.py (StyleGAN v1's growing schedule, followed here when ``opts.cfg`` is stylegan1).
"""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from stylegan.data.dataset import STOP_SIGNALS, leave_stop_signals_to_the_main_process
from stylegan.errors import StyleGANError
from stylegan.pixels import bytes_to_float
from stylegan.training import distributed as dist_utils
from stylegan.training import progressive
from stylegan.training.ada import AdaController
from stylegan.training.config import TrainingOptions, setting_name
from stylegan.training.ema import ema_beta, ema_update
from stylegan.training.loss import LossConfig, StyleGAN2Loss
from stylegan.training.phases import Phase, load_optimizer_moments, make_phases, on_device, optimizer_moments
from stylegan.training.progress import Progress
from stylegan.training.report import RunReporter, StatsAccumulator, format_seconds
from stylegan.training.sampler import GlobalBatchSampler, derived_seed

SnapshotFn = Callable[["Trainer"], "dict[str, float] | None"]
ImageFn = Callable[["Trainer", str], None]


class TrainingDiverged(StyleGANError):
    pass


@dataclass
class _Clock:
    """Wall-clock bookkeeping of one ``run`` call (not part of a snapshot)."""

    run_start: float
    tick_start: float
    run_start_nimg: int
    maintenance: float = 0.0  # seconds the previous tick spent on snapshots, images and records


class Trainer:
    """One rank's training: :meth:`train_step` trains one minibatch, :meth:`run` the whole run with its
    ticks, reports and snapshots. Rank 0 also writes the run folder's logs (``run_dir``, when given)."""

    def __init__(self, opts: TrainingOptions, rank: dist_utils.Rank, dataset, G: nn.Module, D: nn.Module,
                 G_ema: nn.Module, augment_pipe: nn.Module | None, run_dir: Path | None,
                 progress: Progress | None = None, resume_state: dict | None = None):
        """``resume_state``: a loaded snapshot (``snapshot.load_training_snapshot``); its ``trainer``
        entry is handed to :meth:`restore`."""
        self.opts, self.rank, self.dataset = opts, rank, dataset
        self.device = rank.device
        self.G = G.train().requires_grad_(False).to(self.device)
        self.D = on_device(D.train().requires_grad_(False), self.device)
        self.G_ema = G_ema.eval().requires_grad_(False).to(self.device)
        self.augment_pipe = augment_pipe.train().requires_grad_(False).to(self.device) if augment_pipe else None
        self.run_dir = run_dir
        self.progress = progress or Progress()
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment_pipe, LossConfig(
            r1_gamma=opts.r1_gamma, style_mixing_prob=opts.style_mixing_prob, pl_weight=opts.pl_weight,
            mode_seeking=opts.mode_seeking))
        self.phases = make_phases(self.G, self.D, opts.G_lr, opts.D_lr, opts.G_reg_interval, opts.D_reg_interval)
        self.ada = (AdaController(opts.ada_target, opts.ada_interval, opts.ada_kimg, opts.batch)
                    if opts.aug == "ada" and self.augment_pipe is not None else None)
        # The minibatch: fixed, or (progressive growing) set by the schedule, read every few minibatches.
        self.growth = opts.growth_schedule(dataset.resolution) if opts.progressive else None
        self.sched: progressive.ScheduleState | None = None
        # The lod trained before this call (None: nothing yet): a resumed G holds it in its lod buffer.
        self.previous_lod = progressive.stored_lod(self.G) if self.progress.cur_nimg > 0 else None
        self._set_minibatch(opts.batch)
        if resume_state is not None:
            self.restore(resume_state["trainer"])
        dist_utils.broadcast_(self._replicated_tensors(), rank.world)  # every rank starts from rank 0's weights
        self.stats = StatsAccumulator()
        self.stop_requested: str | bool = False  # or the name of the signal that asked for it
        self.diverged: str | None = None  # the first non-finite loss seen on this rank
        self.stop_agreed = self.diverged_somewhere = False  # the same on every rank (see _sync_step)
        self._step_signs = [0.0, 0]  # this rank's sum and count of sign(D(real)) in the current step
        self.reporter = RunReporter(run_dir, echo=not opts.quiet) if (rank.is_main and run_dir is not None) else None
        self.loader = self._make_loader()

    # --- setup -----------------------------------------------------------------------------------

    def _set_minibatch(self, batch: int) -> None:
        """Global minibatch ``batch``: this rank's share, and its split into sub-batches (``pass_size``
        images each, ``rounds`` of them per phase)."""
        opts = self.opts
        self.batch = batch
        self.per_rank = batch // self.rank.world
        self.pass_size = (progressive.pass_size(self.per_rank, opts.batch_gpu, opts.mbstd_group)
                          if self.growth is not None else opts.batch_gpu)
        self.rounds = self.per_rank // self.pass_size
        if self.ada is not None and self.ada.batch != batch:
            self.ada = dataclasses.replace(self.ada, batch=batch)

    def _make_loader(self):
        """This rank's endless iterator of (uint8 images, labels), ``per_rank`` at a time, in the
        global order, resuming after the minibatches already trained."""
        opts, workers = self.opts, self.opts.workers
        if self.growth is not None:  # sizes change with the resolution
            batches = progressive.ScheduledBatches(len(self.dataset), self.growth, self.rank.rank, self.rank.world,
                                                   opts.seed, start_nimg=self.progress.cur_nimg)
            sizes = dict(batch_sampler=batches)
        else:
            sampler = GlobalBatchSampler(len(self.dataset), opts.batch, self.rank.rank, self.rank.world, opts.seed,
                                         start_batch=self.progress.batch_idx)
            sizes = dict(sampler=sampler, batch_size=self.per_rank)
        return iter(torch.utils.data.DataLoader(
            self.dataset, **sizes, num_workers=workers,
            pin_memory=self.device.type == "cuda", prefetch_factor=2 if workers > 0 else None,
            persistent_workers=workers > 0, worker_init_fn=leave_stop_signals_to_the_main_process))

    def _replicated_tensors(self) -> list[torch.Tensor]:
        """Everything every rank must hold identically: all networks' parameters and buffers, pl_mean."""
        modules = [self.G, self.D, self.G_ema] + ([self.augment_pipe] if self.augment_pipe is not None else [])
        tensors = [t.data for m in modules for t in [*m.parameters(), *m.buffers()]]
        return tensors + [self.loss.pl_mean]

    def _running_buffers(self) -> list[torch.Tensor]:
        """Running statistics a phase updates: averaged over sub-batches and ranks afterwards."""
        return [b for n, b in self.G.named_buffers() if n.endswith("w_avg")] + [self.loss.pl_mean]

    # --- snapshot state --------------------------------------------------------------------------

    def state_for_snapshot(self) -> dict:
        """What a snapshot stores: ``networks`` (modules, or None), ``dataset`` (how to reopen it), ``progress``
        and ``options`` (plain dicts), and ``trainer``: {"optimizers": moments by network and parameter,
        "pl_mean": scalar tensor}, CPU copies that :meth:`restore` takes back."""
        opts = self.opts
        # A run without augmentation has augment_pipe None, which the snapshot file leaves out.
        networks = {"G": self.G, "D": self.D, "G_ema": self.G_ema, "augment_pipe": self.augment_pipe}
        dataset = {"path": opts.data, "xflip": opts.mirror, "use_labels": opts.cond, "max_size": opts.max_size,
                   "resolution": self.dataset.resolution}
        own = {"optimizers": optimizer_moments(self.phases), "pl_mean": self.loss.pl_mean.detach().cpu().clone()}
        return {"networks": networks, "dataset": dataset, "progress": dataclasses.asdict(self.progress),
                "options": opts.to_dict(), "trainer": own}

    def restore(self, state: dict) -> None:
        """Take back the ``trainer`` part of :meth:`state_for_snapshot` (optimiser moments, pl_mean)."""
        load_optimizer_moments(self.phases, state["optimizers"])
        if state.get("pl_mean") is not None:
            self.loss.pl_mean.copy_(state["pl_mean"].reshape([]))

    # --- one minibatch ---------------------------------------------------------------------------

    def train_step(self) -> None:
        """One minibatch: every phase that is due, then the EMA, counters, agreement and ADA."""
        if self.growth is not None and self._at_group_start():
            self._follow_schedule()
        images, labels = next(self.loader)
        images = images.to(self.device)
        pixels = bytes_to_float(images) if self.sched is None else progressive.faded_reals(images, self.sched.lod)
        reals = (pixels.split(self.pass_size), labels.to(self.device).float().split(self.pass_size))
        for index, phase in enumerate(self.phases):
            if phase.due(self.progress.batch_idx):
                self._run_phase(index, phase, reals)
        self._update_ema()
        self.progress.cur_nimg += self.batch
        self.progress.batch_idx += 1
        self._sync_step()
        if self.diverged_somewhere:
            self._raise_diverged()
        self._adapt_augmentation()

    def _at_group_start(self) -> bool:
        """Whether the schedule is read before this minibatch: the growing loop reads it every
        ``MINIBATCH_REPEATS`` minibatches (always true without growing)."""
        return self.growth is None or self.progress.batch_idx % progressive.MINIBATCH_REPEATS == 0

    def _follow_schedule(self) -> None:
        """Read the growing schedule at ``cur_nimg``: lod into every network, the minibatch, learning rates,
        style mixing's active layers, and fresh Adam moments when a fade-in starts or ends."""
        sched = self.growth.at(self.progress.cur_nimg)
        self.sched = sched
        progressive.set_lod([self.G, self.D, self.G_ema], sched.lod)
        if self.opts.reset_opt_for_new_lod and progressive.lod_changed_level(self.previous_lod, sched.lod):
            for phase in self.phases:
                phase.opt.state.clear()  # Adam's moments and step count start afresh, as TF's re-initialised slots
        self.previous_lod = sched.lod
        for phase in self.phases:
            for group in phase.opt.param_groups:
                group["lr"] = sched.G_lrate if phase.network == "G" else sched.D_lrate
        self.loss.active_ws = progressive.mixable_ws(self.G.num_ws, sched.lod)
        self._set_minibatch(sched.minibatch)

    def _run_phase(self, index: int, phase: Phase, reals: tuple) -> None:
        fakes = self._phase_latents(index)
        with phase.open_for_gradients():
            self._accumulate_over_rounds(index, phase, reals, fakes)
        grads = phase.gradients()
        dist_utils.all_reduce_mean_(grads, self.rank.world)
        for grad in grads:  # one bad sample must not wreck the weights; divergence is caught by the losses
            torch.nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5, out=grad)
        phase.opt.step()
        self._collect_phase_stats()

    def _phase_latents(self, index: int) -> tuple:
        """(z, c) of this rank's share, split into sub-batches: drawn for the whole global batch from the
        (seed, minibatch, phase) seed, identically on every rank."""
        seed = derived_seed(self.opts.seed, self.progress.batch_idx, index)
        z = torch.randn([self.batch, self.G.z_dim], generator=torch.Generator().manual_seed(seed))
        c = self._random_labels(seed, self.batch)
        share = slice(self.rank.rank * self.per_rank, (self.rank.rank + 1) * self.per_rank)
        return z[share].to(self.device).split(self.pass_size), c[share].to(self.device).split(self.pass_size)

    def _random_labels(self, seed: int, count: int) -> torch.Tensor:
        """Labels of ``count`` dataset images picked at random (with repeats): the conditioning of fakes."""
        picks = np.random.RandomState(seed % 2**32).randint(len(self.dataset), size=count)
        return torch.from_numpy(np.stack([self.dataset.get_label(int(i)) for i in picks])).float()

    def _accumulate_over_rounds(self, index: int, phase: Phase, reals: tuple, fakes: tuple) -> None:
        """Gradients of all sub-batches, summed into ``.grad`` as a mean over the global batch.

        Each sub-batch starts from the running buffers as they were before the phase, and the buffers end
        as the mean of the sub-batches' results (then over ranks): the same as one pass over the batch.
        """
        running = self._running_buffers()
        before = [b.clone() for b in running]
        summed = [torch.zeros_like(b) for b in running]
        global_round = self.rank.rank * self.rounds
        for r in range(self.rounds):
            for buffer, value in zip(running, before):
                buffer.copy_(value)
            torch.manual_seed(derived_seed(self.opts.seed, self.progress.batch_idx, index, global_round + r))
            # The lazy-regularisation interval scales the regulariser's gradients up.
            self.loss.accumulate_gradients(phase.name, reals[0][r], reals[1][r], fakes[0][r], fakes[1][r],
                                           gain=phase.interval / self.rounds)
            for total, buffer in zip(summed, running):
                total += buffer
        for buffer, total in zip(running, summed):
            buffer.copy_(total / self.rounds)
        dist_utils.all_reduce_mean_(running, self.rank.world)

    def _collect_phase_stats(self) -> None:
        for name, values in self.loss.pop_stats().items():
            flat = torch.cat(values)
            if name.startswith("Loss/") and self.diverged is None and not torch.isfinite(flat).all():
                self.diverged = name  # acted on once every rank knows (see _sync_step), so no rank is left waiting
            self.stats.add(name, flat)
            if name == "Loss/signs/real":
                self._step_signs[0] += float(flat.sum())
                self._step_signs[1] += flat.numel()

    def _update_ema(self) -> None:
        opts = self.opts
        ema_update(self.G_ema, self.G, ema_beta(self.batch, opts.ema_kimg, opts.ema_rampup, self.progress.cur_nimg))

    def _adapt_augmentation(self) -> None:
        """Let ADA move p when due, with the signs gathered (over all ranks) since it last did."""
        prog = self.progress
        if self.ada is None or not self.ada.due(prog.batch_idx):
            return
        self.ada.adjust_(self.augment_pipe.p, prog.ada_sign_sum, prog.ada_sign_count)
        prog.ada_sign_sum, prog.ada_sign_count = 0.0, 0

    def _sync_step(self) -> None:
        """One small collective per minibatch: this step's signs of D(real) for ADA, and whether any rank
        wants to stop or saw a non-finite loss — so every rank holds the same counters and decides alike."""
        local = torch.tensor([self._step_signs[0], self._step_signs[1], float(bool(self.stop_requested)),
                              float(self.diverged is not None)], dtype=torch.float64)
        total = dist_utils.all_reduce_sum(local, self.rank.world)
        self._step_signs = [0.0, 0]
        self.progress.ada_sign_sum += float(total[0])
        self.progress.ada_sign_count += int(total[1])
        self.stop_agreed, self.diverged_somewhere = bool(total[2] > 0), bool(total[3] > 0)

    def _raise_diverged(self) -> None:
        what = self.diverged or "a loss on another process"
        raise TrainingDiverged(
            f"training diverged: {what} became NaN/Inf at kimg {self.progress.cur_nimg / 1000:.3f}; "
            "no snapshot was written after that, the last good one is kept",
            f"continue from it with {setting_name('resume')} 'latest' and a lower {setting_name('G_lr')}/"
            f"{setting_name('D_lr')}, or a higher {setting_name('r1_gamma')}")

    def check_ranks_agree(self, final: bool = False) -> None:
        """Every rank must hold the same networks (the official code checks this too): compare checksums."""
        if self.rank.world <= 1:
            return
        tensors = self._replicated_tensors()
        sums = torch.stack([t.detach().double().sum() for t in tensors] +
                           [t.detach().double().abs().sum() for t in tensors]).cpu()
        reference = sums.clone()
        dist_utils.broadcast_([reference], self.rank.world)
        mismatch = torch.tensor([float(not torch.equal(sums, reference))])
        bad = int(dist_utils.all_reduce_sum(mismatch, self.rank.world))
        if bad:
            raise StyleGANError(f"{bad} of {self.rank.world} processes diverged from rank 0's weights",
                                "this is a bug; please report it with the command line used")
        if self.reporter is not None and final:
            self.reporter.log(f"All {self.rank.world} processes hold identical networks.")

    # --- the run ---------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict:
        """SIGINT/SIGTERM/SIGHUP ask for a stop at the end of the current minibatch; returns the old handlers.

        SIGHUP is a closed terminal (e.g. a dropped SSH session): the run stops with a snapshot as for the
        others, and prints no more, since writing to a terminal that is gone would fail. A signal the process
        was started ignoring (``nohup`` ignores SIGHUP) stays ignored.
        """
        def request_stop(signum, frame):
            self.stop_requested = signal.Signals(signum).name
            if signum == getattr(signal, "SIGHUP", None) and self.reporter is not None:
                self.reporter.echo = False
        previous = {}
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_IGN:
                continue
            try:
                previous[sig] = signal.signal(sig, request_stop)
            except ValueError:  # not the main thread (e.g. under a test runner)
                pass
        return previous

    def run(self, snapshot_fn: SnapshotFn, image_fn: ImageFn | None = None) -> Progress:
        """Train until ``total_kimg``, a stop signal, or divergence (TrainingDiverged).

        Every ``snap`` ticks, at the end and when stopped by SIGINT/SIGTERM, ``image_fn(trainer, name)``
        writes a fakes grid (rank 0) and ``snapshot_fn(trainer)`` is called on every rank: it writes the
        snapshot and may return metrics ({name: value}) to record with the tick's stats.
        """
        previous_handlers = self._install_signal_handlers()
        try:
            return self._run(snapshot_fn, image_fn)
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            if self.reporter is not None:
                self.reporter.close()

    def _run(self, snapshot_fn: SnapshotFn, image_fn: ImageFn | None) -> Progress:
        prog = self.progress
        self._log_start()
        if image_fn is not None and prog.cur_nimg == 0 and self.rank.is_main:
            image_fn(self, "fakes_init.png")
        now = time.time()
        clock = _Clock(run_start=now, tick_start=now, run_start_nimg=prog.cur_nimg)
        prog.tick_start_nimg = prog.cur_nimg
        while True:
            self.train_step()
            if not self._at_group_start():  # a growing run stops, ticks and snapshots between groups only
                continue
            finished = prog.cur_nimg >= self.opts.total_kimg * 1000
            ending = finished or self.stop_agreed
            if not (ending or self._tick_is_over()):
                continue
            tick, stats = self._close_tick(clock)
            self._log_tick(tick, stats, clock)
            maintenance_start = time.time()
            snapped = self._snapshot_if_due(tick, ending, stats, snapshot_fn, image_fn)
            if self.reporter is not None:
                self.reporter.record(stats)
                if snapped:
                    self.reporter.plot()  # after record(): the curves include this tick
            clock.tick_start = time.time()
            clock.maintenance = clock.tick_start - maintenance_start
            if ending:
                self._log_end(finished)
                return prog

    def _tick_is_over(self) -> bool:
        """The first minibatch is a tick of its own (an early sign of life); later ticks last
        ``kimg_per_tick`` thousand images."""
        prog = self.progress
        tick_kimg = self.opts.kimg_per_tick if self.sched is None else self.sched.tick_kimg
        return prog.cur_tick == 0 or prog.cur_nimg >= prog.tick_start_nimg + tick_kimg * 1000

    def _close_tick(self, clock: _Clock) -> tuple[int, dict[str, float]]:
        """Advance the tick counters and return (the tick just completed, its stats: means over ranks plus
        progress and timing). A snapshot written after this resumes with the next tick."""
        prog, now = self.progress, time.time()
        tick_sec = now - clock.tick_start
        tick_kimg = (prog.cur_nimg - prog.tick_start_nimg) / 1000
        stats = self.stats.reduce(self.rank.world)
        tick = prog.cur_tick
        prog.cur_tick += 1
        prog.tick_start_nimg = prog.cur_nimg
        stats.update({
            "Progress/tick": tick, "Progress/kimg": prog.cur_nimg / 1000,
            "Progress/augment": float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
            "Timing/total_sec": now - clock.run_start, "Timing/sec_per_tick": tick_sec,
            "Timing/sec_per_kimg": tick_sec / max(tick_kimg, 1e-8), "Timing/maintenance_sec": clock.maintenance,
            "Loss/pl_mean": float(self.loss.pl_mean),
        })
        if self.sched is not None:  # the schedule of the tick's last group
            stats.update({"Progress/lod": self.sched.lod, "Progress/resolution": self.sched.resolution,
                          "Progress/minibatch": self.sched.minibatch, "Progress/G_lrate": self.sched.G_lrate,
                          "Progress/D_lrate": self.sched.D_lrate})
        return tick, stats

    def _log_start(self) -> None:
        if self.reporter is None:
            return
        opts, nimg = self.opts, self.progress.cur_nimg
        resumed = f", resuming at kimg {nimg / 1000:g}" if nimg else ""
        batch = f"batch {opts.batch}"
        if self.growth is not None:
            start = self.growth.at(nimg)
            batch = (f"growing toward {self.dataset.resolution}x{self.dataset.resolution} by "
                     f"{opts.lod_training_kimg:g} + {opts.lod_transition_kimg:g} kimg per resolution, now at "
                     f"{start.resolution}x{start.resolution} (lod {start.lod:g}) with minibatch {start.minibatch}")
        self.reporter.log(f"Training for {opts.total_kimg:g} kimg on {self.rank.world} process(es), "
                          f"{batch}, device {self.device}{resumed}")

    def _log_tick(self, tick: int, stats: dict[str, float], clock: _Clock) -> None:
        """The tick's progress line: ``tick N kimg K P% time T sec/kimg S G g D d augment p eta E``, with
        ``lod L res R minibatch M`` after the percentage while growing."""
        if self.reporter is None:
            return
        nimg, total_nimg = self.progress.cur_nimg, self.opts.total_kimg * 1000
        elapsed = stats["Timing/total_sec"]
        eta = (total_nimg - nimg) / max(nimg - clock.run_start_nimg, 1) * elapsed
        digits = 1 if self.opts.total_kimg >= 100 else 3  # enough digits for kimg to move every tick
        growth = "" if self.sched is None else (f"lod {self.sched.lod:<5.2f} res {self.sched.resolution:<4d} "
                                                f"minibatch {self.sched.minibatch:<4d} ")
        self.reporter.log(
            f"tick {tick:<5d} kimg {nimg / 1000:<8.{digits}f} {100 * nimg / total_nimg:5.1f}% {growth}"
            f"time {format_seconds(elapsed):<9s} sec/kimg {stats['Timing/sec_per_kimg']:<7.2f} "
            f"G {stats.get('Loss/G/loss', float('nan')):.3f} D {stats.get('Loss/D/loss', float('nan')):.3f} "
            f"augment {stats['Progress/augment']:.3f} eta {format_seconds(max(eta, 0))}")

    def _snapshot_if_due(self, tick: int, ending: bool, stats: dict[str, float], snapshot_fn: SnapshotFn,
                         image_fn: ImageFn | None) -> bool:
        """At the end and every ``snap`` ticks: the rank check, a fakes grid, the snapshot and its metrics
        (added to ``stats``). Returns whether it was due."""
        if not (ending or (self.opts.snap > 0 and tick % self.opts.snap == 0)):
            return False
        self.check_ranks_agree(final=ending)
        if image_fn is not None and self.rank.is_main:
            image_fn(self, f"fakes{self.progress.cur_nimg // 1000:06d}.png")
        metrics = snapshot_fn(self) or {}
        stats.update({f"Metrics/{name}": float(value) for name, value in metrics.items()})
        return True

    def _log_end(self, finished: bool) -> None:
        if self.reporter is None:
            return
        if finished:
            self.reporter.log("Done.")
            return
        why = self.stop_requested if isinstance(self.stop_requested, str) else "a stop request"
        self.reporter.log(f"Stopped by {why} at kimg {self.progress.cur_nimg / 1000:g}; snapshot written. "
                          "Continue with the same command plus --resume latest.")
