"""Data-parallel training under torchrun (gloo on CPU) gives the one-process result."""

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.process_group import Launch, launch_from_env
from stylegan.snapshot_names import latest_snapshot
from stylegan.training.config import TrainingOptions
from stylegan.training.run import build_networks, dataset_shape, open_dataset
from stylegan.training.snapshot import load_training_snapshot
from tests.conftest import run_torchrun, torchrun_report
from tests.training.conftest import TINY_CLI, run_cli

# 6 minibatches of 4 images: D's R1 and G's path-length steps run at batch 0 and 4; ADA adjusts p at 4.
# A named config: "auto" depends on the process count (as in the official code), so it would differ.
COMMON = ["--cfg", "stylegan2", "--gamma", "1", "--kimg", "0.024", "--tick", "0.012", "--snap", "1000", "--cond",
          "--mirror", "--aug", "ada", "--p", "0.2", "--target", "0.1"]


def initial_networks(stored_options: dict):
    """The networks a run with these options starts from (before its first step)."""
    opts = TrainingOptions(**stored_options)
    return build_networks(opts, dataset_shape(open_dataset(opts), opts))


def test_two_processes_equal_one_with_the_same_global_batch(digits16, tmp_path):
    # One process accumulating two passes of 2, as each of the two ranks below does one pass of 2.
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "one", *TINY_CLI, *COMMON,
                        "--batch-gpu", "2")
    assert code == 0, err
    two = run_torchrun(2, "train", "--data", digits16, "--outdir", tmp_path / "two", *TINY_CLI, *COMMON)
    assert two.returncode == 0, torchrun_report(two)
    (log,) = (tmp_path / "two").glob("*/log.txt")
    text = log.read_text()
    assert "on 2 process(es)" in text and "All 2 processes hold identical networks." in text
    assert len(list((tmp_path / "two").iterdir())) == 1  # only rank 0 made a run folder

    a = load_training_snapshot(latest_snapshot(tmp_path / "one"))
    b = load_training_snapshot(latest_snapshot(tmp_path / "two"))
    assert a["progress"].cur_nimg == b["progress"].cur_nimg == 24
    for key in ("G", "D", "G_ema"):
        sa, sb = a["networks"][key].state_dict(), b["networks"][key].state_dict()
        for name in sa:  # same math, gradients summed in a different order: float32 rounding only
            torch.testing.assert_close(sb[name], sa[name], rtol=1e-4, atol=1e-5, msg=f"{key}.{name}")
    # The agreement above means something only if training moved the weights away from where both started.
    start = initial_networks(b["options"])
    # The noise constants are drawn at initialisation and never trained: equal ones show the rebuilt start is the run's.
    noise = [n for n in start.G.state_dict() if n.endswith("noise_const")]
    assert noise and all(torch.equal(b["networks"]["G"].state_dict()[n], start.G.state_dict()[n]) for n in noise)
    for key in ("G", "D", "G_ema"):
        trained, initial = b["networks"][key].state_dict(), getattr(start, key).state_dict()
        assert any(not torch.equal(trained[name], initial[name]) for name in initial), key
    pa = a["networks"]["augment_pipe"].tensors["p"]
    assert torch.equal(pa, b["networks"]["augment_pipe"].tensors["p"]) and float(pa) != 0.2
    torch.testing.assert_close(b["tensors"]["resume.pl_mean"], a["tensors"]["resume.pl_mean"], rtol=1e-4, atol=1e-6)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(digits16, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun --nproc_per_node=2 sets; checked before joining
    monkeypatch.setenv("RANK", "0")
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", *TINY_CLI,
                        "--batch", "3", "--mbstd-group", "1")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: batch (--batch) 3 is not divisible by the number of processes (2)")
    assert not (tmp_path / "runs").exists()


def test_a_one_process_run_resumed_on_two_processes_continues_as_if_uninterrupted(digits16, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "whole", *TINY_CLI, *COMMON,
                        "--batch-gpu", "2")
    assert code == 0, err
    first = [a if a != "0.024" else "0.012" for a in COMMON]  # the first half, stopped by its kimg limit
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "split", *TINY_CLI, *first,
                        "--batch-gpu", "2")
    assert code == 0, err
    resumed = run_torchrun(2, "train", "--outdir", tmp_path / "split", "--resume", "latest", "--kimg", "0.024")
    assert resumed.returncode == 0, torchrun_report(resumed)
    assert "on 2 process(es), batch 4" in next((tmp_path / "split").glob("*/log.txt")).read_text()

    a = load_training_snapshot(latest_snapshot(tmp_path / "whole"))
    b = load_training_snapshot(latest_snapshot(tmp_path / "split"))
    assert a["progress"].cur_nimg == b["progress"].cur_nimg == 24
    for key in ("G", "D", "G_ema"):
        sa, sb = a["networks"][key].state_dict(), b["networks"][key].state_dict()
        for name in sa:
            torch.testing.assert_close(sb[name], sa[name], rtol=1e-4, atol=1e-5, msg=f"{key}.{name}")
    assert torch.equal(a["networks"]["augment_pipe"].tensors["p"], b["networks"]["augment_pipe"].tensors["p"])


def test_the_launch_is_read_from_the_torchrun_environment():
    assert launch_from_env({}) == Launch(0, 1, 0)
    assert launch_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Launch(3, 4, 1)
    assert launch_from_env({"WORLD_SIZE": "1", "LOCAL_RANK": "0"}).is_main


@pytest.mark.parametrize("env,needle", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
    ({"WORLD_SIZE": "2"}, "RANK is not set"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 does not fit WORLD_SIZE=2"),
])
def test_a_broken_launch_environment_is_one_error_line(env, needle):
    with pytest.raises(StyleGANError, match=needle) as e:
        launch_from_env(env)
    assert "\n" not in str(e.value)
