"""`stylegan train` options that change how a run executes: --device, --threads, --nhwc."""

import json

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.snapshot_names import latest_snapshot
from stylegan.training import run as run_module
from stylegan.training.snapshot import load_training_snapshot
from tests.training.conftest import TINY_CLI, run_cli, run_dirs, tiny_options

SHORT = ["--kimg", "0.004", "--tick", "0.004", *TINY_CLI]


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_an_unknown_device_is_one_error_line_and_touches_nothing(digits16, tmp_path, device):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", "--device", device, *SHORT)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: unknown device {device!r}") and "cpu" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_error_line(digits16, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", "--device", "cuda", *SHORT)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: device cuda: CUDA is not available")
    assert not (tmp_path / "runs").exists()


def test_the_library_refuses_an_unknown_device_too(digits16, tmp_path):
    with pytest.raises(StyleGANError, match="unknown device 'gpu'"):
        run_module.train(tiny_options(digits16, tmp_path / "runs", device="gpu"))
    assert not (tmp_path / "runs").exists()


def test_threads_hold_during_training_and_are_restored_after(digits16, tmp_path, monkeypatch):
    seen = []
    real_train = run_module._train

    def spy(opts, rank, metrics_fn):
        seen.append(torch.get_num_threads())
        return real_train(opts, rank, metrics_fn)

    monkeypatch.setattr(run_module, "_train", spy)
    before = torch.get_num_threads()
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--threads", "2", *SHORT)
    assert code == 0, err
    assert seen == [2] and torch.get_num_threads() == before
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--threads", "0", *SHORT)
    assert code == 2 and "--threads" in err and err.count("\n") == 1


def test_nhwc_on_the_command_line_is_recorded_and_builds_channels_last_fp16_layers(digits16, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--nhwc", *SHORT)
    assert code == 0, err
    (run,) = run_dirs(tmp_path)
    options = json.loads((run / "training_options.json").read_text())
    assert options["nhwc"] is True and options["num_fp16_res"] == 4
    nets = load_training_snapshot(latest_snapshot(tmp_path))["networks"]
    for key in ("G", "G_ema", "D"):
        blocks = list(nets[key].synthesis.children() if key != "D" else nets[key].children())
        fp16 = [b for b in blocks if getattr(b, "use_fp16", False)]
        assert fp16 and all(b.channels_last for b in fp16), key
