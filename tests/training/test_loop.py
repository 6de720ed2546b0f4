"""The training loop's bookkeeping: lazy-reg optimiser settings, EMA, ADA, data order, ticks."""

import json
import re

import numpy as np
import pytest
import torch

from stylegan.training import distributed as du
from stylegan.training.loop import GlobalBatchSampler, Trainer
from tests.training.conftest import open_dataset, tiny_networks, tiny_options


class FakePipe(torch.nn.Module):
    """An identity 'augmentation' with the p buffer the loop adapts."""

    def __init__(self):
        super().__init__()
        self.register_buffer("p", torch.zeros([]))

    def forward(self, x):
        return x


def make_trainer(digits16, tmp_path, pipe=None, **overrides):
    opts = tiny_options(digits16, tmp_path, **overrides)
    ds = open_dataset(opts)
    G, D, G_ema = tiny_networks(opts, ds)
    return Trainer(opts, du.Rank(), ds, G, D, G_ema, pipe, None)


def test_lazy_regularisation_adjusts_lr_and_betas(digits16, tmp_path):
    t = make_trainer(digits16, tmp_path, glr=0.002, dlr=0.003)
    names = [p.name for p in t.phases]
    assert names == ["Gmain", "Greg", "Dmain", "Dreg"]
    g_opt, d_opt = t.phases[0].opt.param_groups[0], t.phases[2].opt.param_groups[0]
    assert g_opt["lr"] == pytest.approx(0.002 * 4 / 5) and g_opt["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    assert d_opt["lr"] == pytest.approx(0.003 * 16 / 17) and d_opt["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert [p.interval for p in t.phases] == [1, 4, 1, 16]


def test_one_step_updates_weights_and_ema_by_the_formula(digits16, tmp_path):
    t = make_trainer(digits16, tmp_path, ema_kimg=0.01)
    t.opts.ema_rampup = None
    G0 = {k: v.clone() for k, v in t.G.state_dict().items()}
    E0 = {k: v.clone() for k, v in t.G_ema.state_dict().items()}
    t.train_step()
    beta = 0.5 ** (4 / 10)  # batch 4, ema_nimg 10
    moved = 0
    for (name, p), (_, p_ema) in zip(t.G.named_parameters(), t.G_ema.named_parameters()):
        torch.testing.assert_close(p_ema, p.detach() + (E0[name] - p.detach()) * beta, rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(p.detach(), G0[name]))
    assert moved > 10
    assert t.progress.cur_nimg == 4 and t.progress.batch_idx == 1


def test_ada_moves_p_by_the_official_step(digits16, tmp_path):
    pipe = FakePipe()
    t = make_trainer(digits16, tmp_path, pipe=pipe, aug="ada", ada_kimg=1, ada_target=0.6)
    step = 4 * 4 / 1000  # batch · interval / (ada_kimg · 1000)
    for signs, expected in [(1.0, step), (1.0, 2 * step), (-1.0, step), (-1.0, 0.0), (-1.0, 0.0)]:
        t.progress.batch_idx = 4
        t.progress.ada_sign_sum, t.progress.ada_sign_count = signs * 16, 16
        t._adapt_augmentation()
        assert float(pipe.p) == pytest.approx(expected)


def test_sampler_shards_one_global_order_and_resumes_mid_stream():
    whole = GlobalBatchSampler(10, 4, rank=0, world=1, seed=3)
    a = GlobalBatchSampler(10, 4, rank=0, world=2, seed=3)
    b = GlobalBatchSampler(10, 4, rank=1, world=2, seed=3)
    take = lambda s, n: [i for _, i in zip(range(n), iter(s))]  # noqa: E731
    g, ra, rb = take(whole, 40), take(a, 20), take(b, 20)
    for k in range(10):
        assert g[4 * k: 4 * k + 4] == ra[2 * k: 2 * k + 2] + rb[2 * k: 2 * k + 2]
    assert sorted(g[:10]) == list(range(10))  # each epoch is a permutation
    assert take(GlobalBatchSampler(10, 4, 0, 1, seed=3, start_batch=3), 8) == g[12:20]


def test_a_short_run_reports_ticks_and_stops(digits16, tmp_path):
    # 16 images in minibatches of 4, ticks of 8 images: the first minibatch is a tick of its own, then
    # ticks end at 12 and (the end of the run) 16 images. --snap 1: a snapshot and fakes grid at every tick.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    opts = tiny_options(digits16, tmp_path, kimg=0.016, kimg_per_tick=0.008, snap=1)
    ds = open_dataset(opts)
    t = Trainer(opts, du.Rank(), ds, *tiny_networks(opts, ds), None, run_dir)
    snapshots, images = [], []
    prog = t.run(lambda tr: snapshots.append(tr.progress.cur_nimg), lambda tr, name: images.append(name))
    assert (prog.cur_nimg, prog.batch_idx, prog.cur_tick) == (16, 4, 3)
    assert snapshots == [4, 12, 16]
    assert images == ["fakes_init.png", "fakes000000.png", "fakes000000.png", "fakes000000.png"]
    lines = (run_dir / "log.txt").read_text().splitlines()
    assert lines[0].startswith("Training for 0.016 kimg on 1 process(es), batch 4") and lines[-1] == "Done."
    tick_line = re.compile(r"tick (\d+) +kimg (\S+) +(\S+)% time (\S+(?: \S+)?) +sec/kimg (\S+) +"
                           r"G (\S+) D (\S+) augment (\S+) eta (\S+(?: \S+)?)$")
    ticks = [tick_line.match(line) for line in lines if line.startswith("tick ")]
    assert all(ticks), lines
    assert [m.group(1, 2, 3) for m in ticks] == [("0", "0.004", "25.0"), ("1", "0.012", "75.0"),
                                                 ("2", "0.016", "100.0")]
    for m in ticks:
        assert float(m.group(5)) > 0 and np.isfinite(float(m.group(6))) and np.isfinite(float(m.group(7)))
        assert m.group(8) == "0.000"  # no augmentation in this run
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["Progress/tick"] for s in stats] == [0, 1, 2]
    assert [s["Progress/kimg"] for s in stats] == pytest.approx([0.004, 0.012, 0.016])
    assert np.isfinite(float(t.loss.pl_mean)) and stats[-1]["Loss/pl_mean"] == float(t.loss.pl_mean)


def test_nan_losses_stop_training_with_a_clear_error(digits16, tmp_path):
    from stylegan.training.loop import TrainingDiverged
    t = make_trainer(digits16, tmp_path)
    with torch.no_grad():
        t.D.b4.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN/Inf") as e:
        t.train_step()
    assert e.value.fix == ("continue from it with resume (--resume) 'latest' and a lower G_lr (--glr)/D_lr (--dlr), "
                           "or a higher r1_gamma (--gamma)")


def test_freezed_keeps_the_first_discriminator_layers_fixed(digits16, tmp_path):
    t = make_trainer(digits16, tmp_path, freezed=2)
    before = {k: v.clone() for k, v in t.D.state_dict().items()}
    trainable = {n for n, _ in t.D.named_parameters()}
    assert not {"b16.fromrgb.weight", "b16.conv0.weight"} & trainable and "b16.conv1.weight" in trainable
    t.train_step()
    after = t.D.state_dict()
    for name in ("b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias"):
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["b16.conv1.weight"], before["b16.conv1.weight"])
    assert not torch.equal(after["b4.out.weight"], before["b4.out.weight"])
