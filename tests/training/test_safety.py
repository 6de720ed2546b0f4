"""Nothing is lost: stop signals write a snapshot, divergence and a full disk keep the last good one."""

import errno
import os
import signal
import subprocess
import sys
import time

import torch

import stylegan.formats.safetensors_io as safetensors_io
from stylegan.training.loop import Trainer
from stylegan.snapshot_names import latest_snapshot
from stylegan.training.snapshot import load_training_snapshot
from tests.training.conftest import TINY_CLI, run_cli, run_dirs


STOPS = {  # name: (signal, sent to the whole process group, data-loader workers)
    "SIGINT": (signal.SIGINT, False, 0),
    "SIGTERM": (signal.SIGTERM, False, 0),
    # A terminal's Ctrl-C and schedulers (SLURM, systemd, timeout) signal every process of the job,
    # the data-loader workers too; only the main process may react.
    "SIGINT-group-workers": (signal.SIGINT, True, 2),
    "SIGTERM-group-workers": (signal.SIGTERM, True, 2),
    # A closed terminal: SIGHUP to the group, and the terminal (here: the stdout pipe) gone with it.
    "SIGHUP-group-workers": (signal.SIGHUP, True, 2),
}


def test_stop_signals_write_a_final_snapshot_and_exit_cleanly(digits16, tmp_path):
    """Ctrl-C (SIGINT) and a scheduler's SIGTERM, each sent to a real training process (run side by side)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    procs = {}
    for name, (sig, group, workers) in STOPS.items():
        outdir = tmp_path / name
        cmd = [sys.executable, "-m", "stylegan", "train", "--data", str(digits16), "--outdir", str(outdir),
               "--kimg", "1000", "--tick", "0.004", "--snap", "1000", *TINY_CLI, "--workers", str(workers)]
        procs[name] = (outdir, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                text=True, start_new_session=group))
    try:
        waiting, deadline = dict(procs), time.time() + 240
        while waiting and time.time() < deadline:
            for name, (outdir, proc) in list(waiting.items()):
                logs = list(outdir.glob("*/log.txt"))
                if logs and "tick 1 " in logs[0].read_text():  # training is under way
                    sig, group, _ = STOPS[name]
                    os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
                    if sig == signal.SIGHUP:
                        proc.stdout.close()
                        proc.stdout = None  # communicate() below then reads stderr alone
                    del waiting[name]
                assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        assert not waiting, f"no second tick within 240 s: {list(waiting)}"
        results = {name: proc.communicate(timeout=120) for name, (_, proc) in procs.items()}
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for name, (outdir, proc) in procs.items():
        stderr = results[name][1]
        assert proc.returncode == 0 and "Traceback" not in stderr, (name, stderr)
        (log,) = outdir.glob("*/log.txt")
        text = log.read_text()
        assert f"Stopped by {STOPS[name][0].name} at kimg" in text and "--resume latest" in text
        state = load_training_snapshot(latest_snapshot(outdir))
        assert state["progress"].cur_nimg >= 8  # at least the two ticks seen before the signal
        assert all(torch.isfinite(p).all() for p in state["networks"]["G"].parameters())


def test_a_stop_signal_the_process_was_started_ignoring_stays_ignored(monkeypatch):
    """``nohup`` starts a run with SIGHUP ignored: logging out must not stop it."""
    from types import SimpleNamespace
    before = signal.getsignal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        previous = Trainer._install_signal_handlers(SimpleNamespace(reporter=None, stop_requested=False))
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN and signal.SIGHUP not in previous
        assert signal.SIGTERM in previous  # the others are still taken over
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGHUP, before)


def poison_discriminator_after(monkeypatch, steps):
    """Make D's output bias NaN once ``steps`` minibatches have been trained."""
    original = Trainer.train_step

    def train_step(self):
        if self.progress.batch_idx == steps:
            with torch.no_grad():
                self.D.b4.out.bias.fill_(float("nan"))
        original(self)

    monkeypatch.setattr(Trainer, "train_step", train_step)


def test_divergence_stops_with_one_line_and_keeps_the_last_good_snapshot(digits16, tmp_path, monkeypatch):
    poison_discriminator_after(monkeypatch, steps=3)
    outdir = tmp_path / "runs"
    code, err = run_cli("train", "--data", digits16, "--outdir", outdir, "--kimg", "0.04", "--tick", "0.004",
                        "--snap", "1", *TINY_CLI)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: training diverged: Loss/") and "NaN/Inf at kimg 0.016" in err
    assert "(continue from it with resume (--resume) 'latest' and a lower G_lr (--glr)/D_lr (--dlr), or a higher " \
        "r1_gamma (--gamma))" in err
    state = load_training_snapshot(latest_snapshot(outdir))
    assert state["progress"].cur_nimg == 12  # the snapshot of the last tick before the NaN
    for key in ("G", "D", "G_ema"):
        assert all(torch.isfinite(t).all() for t in state["networks"][key].state_dict().values())
    (run,) = run_dirs(outdir)
    assert not list(run.glob(".*.tmp"))


def test_disk_full_while_writing_a_snapshot_keeps_the_previous_one(digits16, tmp_path, monkeypatch):
    real_save = safetensors_io.save_file
    calls = []

    def save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # the second snapshot: half a file, then the disk is full
            with open(filename, "wb") as f:
                f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors_io, "save_file", save_file)
    outdir = tmp_path / "runs"
    code, err = run_cli("train", "--data", digits16, "--outdir", outdir, "--kimg", "0.04", "--tick", "0.004",
                        "--snap", "1", *TINY_CLI)
    assert code == 2 and err.count("\n") == 1
    assert "cannot write snapshot" in err and "No space left on device" in err
    assert "then continue with resume (--resume) 'latest')" in err
    # Both snapshots have the same name (kimg 0): the failed write must not have touched the first.
    state = load_training_snapshot(latest_snapshot(outdir))
    assert state["progress"].cur_nimg == 4
    (run,) = run_dirs(outdir)
    assert not list(run.glob(".*.tmp"))
