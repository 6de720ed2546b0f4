"""`--cfg stylegan1`: StyleGAN (v1) trained with progressive growing in the one training loop.

A tiny conditional run at 16×16 starts at 4×4, with 16 kimg-thousandths of training and 48 of fade-in per
resolution (groups of 4 minibatches of 4 = 16 images between readings of the schedule):

    group start (images)  0   16  32      48      64  80  96      112     128
    lod                   2   2   1.667   1.333   1   1   0.667   0.333   0
"""

import json

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.networks.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from stylegan.snapshot_names import latest_snapshot
from stylegan.training import progressive
from stylegan.training.config import resolve_options, resume_options
from stylegan.training.run import train
from stylegan.training.snapshot import load_training_snapshot
from tests.training.conftest import run_cli, run_dirs
from tests.training.test_resume import assert_same_state

GROWTH = dict(start_res=4, lod_training_kimg=0.016, lod_transition_kimg=0.048, batch=4, kimg_per_tick=0.016,
              cbase=256, cmax=16, map=2, z_dim=16, w_dim=16, mbstd_group=2, workers=0, snap=0, grid=[2, 2],
              quiet=True, cond=True, seed=5)


def v1_options(data, outdir, **overrides):
    return resolve_options(str(data), str(outdir), 16, cfg="stylegan1", **{**GROWTH, **overrides})


def stats_of(outdir):
    (run,) = run_dirs(outdir)
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def test_the_official_v1_defaults():
    opts = resolve_options("d.zip", "out", 1024, cfg="stylegan1", gpus=8)
    assert (opts.batch, opts.batch_per_res) == (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32})
    assert (opts.start_res, opts.lod_training_kimg, opts.lod_transition_kimg) == (8, 600, 600)
    assert (opts.G_lr, opts.D_lr, opts.G_lr_per_res) == (0.001, 0.001, {128: 0.0015, 256: 0.002, 512: 0.003,
                                                                        1024: 0.003})
    assert opts.tick_per_res[1024] == 20 and opts.kimg_per_tick == 160 and opts.total_kimg == 25000
    assert (opts.r1_gamma, opts.pl_weight, opts.G_reg_interval, opts.D_reg_interval) == (10, 0, 0, 0)
    assert (opts.style_mixing_prob, opts.ema_kimg, opts.ema_rampup) == (0.9, 10, None)
    assert (opts.aug, opts.map_layers, opts.channel_base, opts.channel_max, opts.mbstd_group) == \
        ("noaug", 8, 16384, 512, 4)
    assert opts.reset_opt_for_new_lod is True and opts.batch_gpu == 512 // 8
    # A base value given alone holds at every resolution; with its map, the map wins where it speaks.
    assert resolve_options("d.zip", "out", 32, cfg="stylegan1", batch=16).batch_per_res == {}
    both = resolve_options("d.zip", "out", 32, cfg="stylegan1", batch=16, batch_per_res={4: 64})
    assert (both.batch, both.batch_per_res, both.batch_gpu) == (16, {4: 64}, 64)


def test_a_growing_run_fades_in_snapshots_and_resumes_mid_transition_exactly(digits16, tmp_path):
    train(v1_options(digits16, tmp_path / "whole", kimg=0.128))
    # The same run stopped at 48 images (lod 1.667 trained last, 1.333 next), then continued.
    train(v1_options(digits16, tmp_path / "split", kimg=0.048))
    stopped = load_training_snapshot(latest_snapshot(tmp_path / "split"))
    G = stopped["networks"]["G"]
    assert isinstance(G, StyleGAN1Generator) and isinstance(stopped["networks"]["D"], StyleGAN1Discriminator)
    assert G.lod == pytest.approx(2 - 16 / 48) and float(stopped["networks"]["D"].lod) == pytest.approx(G.lod)
    assert stopped["networks"]["G_ema"].lod == pytest.approx(G.lod)
    code, err = run_cli("train", "--outdir", tmp_path / "split", "--resume", "latest", "--kimg", "0.128")
    assert code == 0, err

    whole = load_training_snapshot(latest_snapshot(tmp_path / "whole"))
    split = load_training_snapshot(latest_snapshot(tmp_path / "split"))
    assert whole["progress"].cur_nimg == split["progress"].cur_nimg == 128
    assert_same_state(whole, split)
    assert whole["networks"]["G_ema"].lod == pytest.approx(1 / 3)  # the lod its last minibatches trained at
    # Each tick records the schedule of its last group; the resumed run went on at lod 1.333.
    lods = [s["Progress/lod"] for s in stats_of(tmp_path / "whole")]
    assert lods == pytest.approx([2, 2, 5 / 3, 4 / 3, 1, 1, 2 / 3, 1 / 3])
    resumed = stats_of(tmp_path / "split")
    assert [s["Progress/lod"] for s in resumed] == pytest.approx(lods)
    assert [s["Progress/resolution"] for s in resumed] == [4, 4, 8, 8, 8, 8, 16, 16]
    last = resumed[-1]
    assert (last["Progress/minibatch"], last["Progress/G_lrate"], last["Progress/D_lrate"]) == (4, 0.001, 0.001)
    assert "Loss/r1_penalty" in last and "Loss/pl_penalty" not in last  # R1 every D step, no path length
    (run,) = run_dirs(tmp_path / "whole")
    log = (run / "log.txt").read_text()
    assert "lod 1.67  res 8" in log and "lod 0.33  res 16" in log
    assert (run / "fakes000000.png").exists() and (run / "reals.png").exists()


def test_the_loop_sets_lod_minibatch_lr_and_resets_adam_at_level_changes(digits16, tmp_path, monkeypatch):
    from stylegan.training import loop as loop_module
    seen = []
    real_step = loop_module.Trainer._run_phase

    def spy(self, index, phase, reals):
        if phase.network == "D":
            adam_steps = [float(s["step"]) for s in phase.opt.state.values()][:1]
            seen.append((self.progress.cur_nimg, float(self.G.synthesis.lod), float(self.D.lod), reals[0][0].shape[0],
                         phase.opt.param_groups[0]["lr"], self.loss.active_ws, adam_steps))
        real_step(self, index, phase, reals)

    monkeypatch.setattr(loop_module.Trainer, "_run_phase", spy)
    train(v1_options(digits16, tmp_path / "a", kimg=0.1, batch_per_res={8: 8}, dlr=0.002,
                     D_lr_per_res={8: 0.003}, batch_gpu=4))
    by_nimg = {nimg: rest for nimg, *rest in seen}
    # (lod of G, lod of D, images per pass, D's lr, ws style mixing picks from, Adam's step count). Groups:
    # 0, 16 at 4×4 (lod 2, minibatch 4, lr 0.002 by default, 2 ws); 32 fading 8×8 in (lod 5/3, minibatch 8
    # in passes of 4, lr 0.003, 4 ws); 64 at 8×8 (lod 1); 96 fading 16×16 in (lod 2/3, 6 ws, defaults again).
    assert by_nimg[0] == [2.0, 2.0, 4, 0.002, 2, []]
    assert by_nimg[16] == [2.0, 2.0, 4, 0.002, 2, [4.0]]  # no level change: Adam goes on
    assert by_nimg[32] == [pytest.approx(5 / 3), pytest.approx(5 / 3), 4, 0.003, 4, []]  # a fade-in starts
    assert by_nimg[56] == [pytest.approx(5 / 3), pytest.approx(5 / 3), 4, 0.003, 4, [3.0]]  # held for 4 minibatches
    assert by_nimg[64] == [1.0, 1.0, 4, 0.003, 4, []]  # the fade-in ends
    assert by_nimg[96] == [pytest.approx(2 / 3), pytest.approx(2 / 3), 4, 0.002, 6, []]
    assert sorted(by_nimg) == [0, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 72, 80, 88, 96, 100, 104, 108]

    seen.clear()
    train(v1_options(digits16, tmp_path / "b", kimg=0.048, reset_opt_for_new_lod=False))
    assert {nimg: rest[5] for nimg, *rest in seen}[32] == [8.0]  # kept across the level change


def test_resuming_across_families_is_refused(digits16, tmp_path):
    stored_v1 = v1_options(digits16, tmp_path).to_dict()
    with pytest.raises(StyleGANError, match="'auto' trains stylegan2 networks, but the run to continue trains "
                                            "stylegan1 networks"):
        resume_options(stored_v1, cfg="auto")
    assert resume_options(stored_v1, cfg="stylegan1").cfg == "stylegan1"
    stored_v2 = resolve_options(str(digits16), str(tmp_path), 16, cfg="auto").to_dict()
    with pytest.raises(StyleGANError, match="'stylegan1' trains stylegan1 networks"):
        resume_options(stored_v2, cfg="stylegan1")


def test_progressive_options_are_checked():
    for bad, match in [(dict(start_res=6), "start_res"), (dict(batch_per_res={8: 0}), "batch_per_res"),
                       (dict(batch_per_res={6: 8}), "batch_per_res"), (dict(G_lr_per_res={8: -1.0}), "G_lr_per_res"),
                       (dict(lod_training_kimg=-1), "lod_training_kimg")]:
        with pytest.raises(StyleGANError, match=match):
            resolve_options("d.zip", "out", 32, cfg="stylegan1", **bad)
    with pytest.raises(StyleGANError, match="per process"):
        resolve_options("d.zip", "out", 32, cfg="stylegan1", gpus=4, batch=2)


def test_set_lod_refuses_networks_without_one():
    with pytest.raises(StyleGANError, match="no level of detail"):
        progressive.set_lod([torch.nn.Linear(2, 2)], 1.0)


def test_two_processes_grow_as_one_does(digits16, tmp_path):
    from tests.conftest import run_torchrun, torchrun_report
    common = ["--cfg", "stylegan1", "--start-res", "4", "--lod-kimg", "0.016,0.032", "--batch", "4", "--kimg",
              "0.048", "--tick", "0.016", "--snap", "1000", "--cond", "--cbase", "256", "--cmax", "16", "--map", "2",
              "--zdim", "16", "--wdim", "16", "--mbstd-group", "2", "--workers", "0", "--quiet", "--grid", "2x2"]
    # One process in two passes of 2 images, as each of the two ranks does one pass of 2.
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "one", *common, "--batch-gpu", "2")
    assert code == 0, err
    two = run_torchrun(2, "train", "--data", digits16, "--outdir", tmp_path / "two", *common)
    assert two.returncode == 0, torchrun_report(two)
    a = load_training_snapshot(latest_snapshot(tmp_path / "one"))
    b = load_training_snapshot(latest_snapshot(tmp_path / "two"))
    assert a["progress"].cur_nimg == b["progress"].cur_nimg == 48
    assert a["networks"]["G"].lod == b["networks"]["G"].lod == 1.5  # the last group faded 8×8 in
    # Compared by what the networks compute: Adam's first steps after a reset are about ±lr whatever the size
    # of the gradient, so weights whose gradient is zero up to rounding (the 4×4 bias that instance norm
    # removes, say) move by rounding noise, differently for each summation order; by the same token the
    # outputs do not depend on them.
    from tests.training.test_distributed import initial_networks
    start = initial_networks(b["options"])
    progressive.set_lod([start.G, start.D], 1.5)
    z = torch.randn([8, 16], generator=torch.Generator().manual_seed(0))
    c = torch.nn.functional.one_hot(torch.arange(8), 10).float()
    with torch.no_grad():
        images = [nets["G"](z, c, noise_mode="const") for nets in (a["networks"], b["networks"], start.__dict__)]
        logits = [nets["D"](images[0], c) for nets in (a["networks"], b["networks"], start.__dict__)]
    # Measured: images differ by 5e-4 at most (pixels in [-1, 1]), logits by 2e-6; training moved them by 4.5
    # and 0.11 from where both runs started.
    torch.testing.assert_close(images[1], images[0], rtol=0, atol=3e-3)
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-4)
    assert (images[2] - images[0]).abs().max() > 1 and (logits[2] - logits[0]).abs().max() > 0.05


def test_ada_is_available_while_growing(digits16, tmp_path):
    train(v1_options(digits16, tmp_path, kimg=0.048, aug="ada", augpipe="bgc", p=0.2, ada_kimg=1, ada_target=0.1))
    values = [s["Progress/augment"] for s in stats_of(tmp_path)]
    assert values[0] != 0.2 or values[-1] != 0.2  # p moved: the pipe saw D's signs
