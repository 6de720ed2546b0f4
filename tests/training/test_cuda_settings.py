"""The official train.py's GPU switches (--nhwc, --nobench, --allow-tf32, and their defaults), and a short
run on the GPU schedule (fp16 blocks; on the CPU unless --device cuda)."""

import json
import math

import torch

import stylegan
from stylegan.ops.backends import cuda_arithmetic
from stylegan.training import run as run_module
from stylegan.training.config import resolve_options
from tests.training.conftest import TINY_CLI, open_dataset, run_cli, run_dirs, tiny_networks, tiny_options

FLAGS = [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"),
         (torch.backends.cuda.matmul, "allow_tf32")]


def current_flags():
    return [getattr(owner, name) for owner, name in FLAGS]


def test_defaults_are_the_official_training_loops():
    o = resolve_options("d.zip", "out", 256, cfg="paper256")
    assert (o.nhwc, o.cudnn_benchmark, o.allow_tf32) == (False, True, False)


def test_settings_hold_inside_and_are_restored_after():
    before = current_flags()
    for bench, tf32 in [(True, False), (False, True)]:
        with cuda_arithmetic(benchmark=bench, allow_tf32=tf32):
            assert current_flags() == [bench, tf32, tf32]
        assert current_flags() == before
    try:
        with cuda_arithmetic(benchmark=not before[0], allow_tf32=not before[1]):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert current_flags() == before


def test_training_runs_under_the_settings_it_was_given(digits16, tmp_path, monkeypatch):
    seen = []
    real_train = run_module._train

    def spy(opts, rank, metrics_fn):
        seen.append(current_flags())
        return real_train(opts, rank, metrics_fn)

    monkeypatch.setattr(run_module, "_train", spy)
    before = current_flags()
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--kimg", "0.004", "--tick", "0.004",
                        "--nobench", "--allow-tf32", *TINY_CLI)
    assert code == 0, err
    assert seen == [[False, True, True]]
    assert current_flags() == before
    (run,) = run_dirs(tmp_path)
    saved = json.loads((run / "training_options.json").read_text())
    assert (saved["cudnn_benchmark"], saved["allow_tf32"], saved["nhwc"]) == (False, True, False)


def test_nhwc_puts_fp16_blocks_in_channels_last(digits16, tmp_path):
    opts = tiny_options(digits16, tmp_path, nhwc=True)
    G, D, _ = tiny_networks(opts, open_dataset(opts))
    fp16_blocks = [b for b in [*G.synthesis.children(), *D.children()] if getattr(b, "use_fp16", False)]
    assert fp16_blocks and all(b.channels_last for b in fp16_blocks)
    plain = tiny_options(digits16, tmp_path)
    G, D, _ = tiny_networks(plain, open_dataset(plain))
    assert not any(getattr(b, "channels_last", False) for b in [*G.synthesis.children(), *D.children()])
    assert "fp16_channels_last" not in G.init_kwargs["synthesis_kwargs"]  # as the official code stores it


def test_a_run_on_the_gpu_schedule_trains_fp16_blocks_with_finite_losses(digits16, tmp_path, gpu_device):
    # The auto config marks the top 4 resolutions fp16 with conv_clamp 256, as the official one does.
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--cond", "--kimg", "0.008",
                        "--tick", "0.004", "--device", gpu_device, "--aug", "ada", *TINY_CLI)
    assert code == 0, err
    (run,) = run_dirs(tmp_path)
    assert json.loads((run / "training_options.json").read_text())["num_fp16_res"] == 4
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    losses = [s[k] for s in stats for k in ("Loss/G/loss", "Loss/D/loss")]
    assert len(losses) == 4 and all(math.isfinite(v) and v > 0 for v in losses)
    G = stylegan.load_network(sorted(run.glob("network-snapshot-*.safetensors"))[-1])["G_ema"].to(gpu_device)
    dtypes = []
    G.synthesis.b16.register_forward_hook(lambda m, args, out: dtypes.append(out[0].dtype))
    img = G(torch.randn(4, G.z_dim, device=gpu_device), torch.eye(G.c_dim, device=gpu_device)[:4])
    assert dtypes == [torch.float16]  # the schedule really ran fp16
    assert img.dtype == torch.float32 and img.isfinite().all()
