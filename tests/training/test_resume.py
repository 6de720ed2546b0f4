"""Resuming and transfer learning: a resumed run continues exactly; networks from files seed a new run."""

import json

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.formats import save_network
from stylegan.snapshot_names import latest_snapshot
from stylegan.training.run import train
from stylegan.training.snapshot import load_training_snapshot, read_snapshot_options
from tests.formats.conftest import perturbed
from tests.formats.official_writer import write_official_pickle
from tests.training.conftest import TINY_CLI, open_dataset, run_cli, run_dirs, tiny_networks, tiny_options

# 18 minibatches of 4: G's path-length step runs at batches 0, 4, 8, ...; D's R1 step at 0 and 16.
ADA = dict(aug="ada", augpipe="bgc", p=0.2, ada_kimg=1, ada_target=0.1, cond=True, mirror=True, kimg_per_tick=0.008,
           snap=0)


def assert_same_state(a: dict, b: dict) -> None:
    for key in ("G", "D", "G_ema"):
        sa, sb = a["networks"][key].state_dict(), b["networks"][key].state_dict()
        assert list(sa) == list(sb)
        for name in sa:
            assert torch.equal(sa[name], sb[name]), f"{key}.{name}"
    assert set(a["tensors"]) == set(b["tensors"])
    for name in a["tensors"]:  # Adam moments and step counts, the running path length
        assert torch.equal(a["tensors"][name], b["tensors"][name]), name


def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one(digits16, tmp_path):
    train(tiny_options(digits16, tmp_path / "whole", kimg=0.072, **ADA))
    # The same run stopped after 8 minibatches, then continued from the command line with only --kimg changed.
    train(tiny_options(digits16, tmp_path / "split", kimg=0.032, **ADA))
    code, err = run_cli("train", "--outdir", tmp_path / "split", "--resume", "latest", "--kimg", "0.072")
    assert code == 0, err

    whole = load_training_snapshot(latest_snapshot(tmp_path / "whole"))
    split = load_training_snapshot(latest_snapshot(tmp_path / "split"))
    assert whole["progress"].cur_nimg == split["progress"].cur_nimg == 72
    assert whole["progress"].batch_idx == split["progress"].batch_idx == 18
    assert_same_state(whole, split)
    p_whole = whole["networks"]["augment_pipe"].tensors["p"]
    assert torch.equal(p_whole, split["networks"]["augment_pipe"].tensors["p"])
    (whole_run,) = run_dirs(tmp_path / "whole")
    p_seen = {json.loads(line)["Progress/augment"] for line in (whole_run / "stats.jsonl").read_text().splitlines()}
    assert len(p_seen) > 1  # ADA really moved p during the run, so keeping it across the resume mattered
    assert float(whole["tensors"]["resume.pl_mean"]) > 0
    # One run folder, its stats continued (kimg only grows) and its options kept.
    (run,) = run_dirs(tmp_path / "split")
    kimg = [json.loads(line)["Progress/kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert kimg == sorted(kimg) and kimg[-1] == pytest.approx(0.072)
    options = json.loads((run / "training_options.json").read_text())
    assert options["total_kimg"] == 0.072 and options["augpipe"] == "bgc" and options["cond"] is True


def test_resume_latest_needs_a_snapshot_and_more_kimg(digits16, tmp_path):
    with pytest.raises(StyleGANError, match="found no network-snapshot"):
        train(tiny_options(digits16, tmp_path, resume="latest"))
    train(tiny_options(digits16, tmp_path, kimg=0.004))
    with pytest.raises(StyleGANError, match="already trained for 0.004 kimg"):
        train(tiny_options(digits16, tmp_path, kimg=0.004, resume="latest"))


def test_unusable_snapshots_name_the_resume_setting(digits16, tmp_path):
    opts = tiny_options(digits16, tmp_path)
    G, D, _ = tiny_networks(opts, open_dataset(opts))
    network = tmp_path / "network-snapshot-000000.safetensors"
    save_network({"G_ema": G, "D": D}, network)  # networks only, no progress counters
    with pytest.raises(StyleGANError, match="is a network file, not a training snapshot") as e:
        load_training_snapshot(network)
    assert e.value.fix == "use its path as resume (--resume) for transfer learning instead of 'latest'"
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\0" * 100)
    with pytest.raises(StyleGANError, match="is not a readable training snapshot") as e:
        read_snapshot_options(damaged)
    assert e.value.fix == "remove the damaged file so that resume (--resume) 'latest' takes the one before it"


@pytest.mark.parametrize("kind", ["safetensors", "official-pickle"])
def test_transfer_learning_starts_from_the_given_networks(digits16, tmp_path, kind):
    opts = tiny_options(digits16, tmp_path, cond=True)
    G, D, _ = tiny_networks(opts, open_dataset(opts), seed=5)
    G, D = perturbed(G, 1), perturbed(D, 2)
    if kind == "safetensors":
        source = tmp_path / "pretrained.safetensors"
        save_network({"G_ema": G, "D": D}, source)  # no 'G': it starts from G_ema
    else:
        source = write_official_pickle(tmp_path / "pretrained.pkl",
                                       {"G": G, "D": D, "G_ema": G, "augment_pipe": None, "training_set_kwargs": None})
    # Learning rates so small that one step leaves the weights where they started.
    run = train(tiny_options(digits16, tmp_path / "runs", cond=True, kimg=0.004, glr=1e-12, dlr=1e-12,
                             resume=str(source)))
    state = load_training_snapshot(latest_snapshot(tmp_path / "runs"))
    for mine, theirs in [(state["networks"]["G"], G), (state["networks"]["D"], D)]:
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            if not name.endswith("w_avg"):  # the running mean of W moves in every step whatever the lr
                torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    options = json.loads((run / "training_options.json").read_text())
    assert options["ada_kimg"] == 100 and options["ema_rampup"] is None  # the official transfer settings


def test_resume_network_must_fit_the_dataset(digits16, tmp_path):
    cond = tiny_options(digits16, tmp_path, cond=True)
    G, D, _ = tiny_networks(cond, open_dataset(cond))
    save_network({"G_ema": G, "D": D}, tmp_path / "cond.safetensors")
    with pytest.raises(StyleGANError, match="c_dim 10, but the dataset has 16x16, 1 channel.* c_dim 0"):
        train(tiny_options(digits16, tmp_path / "runs", resume=str(tmp_path / "cond.safetensors")))
    wide = tiny_options(digits16, tmp_path, cond=True, cbase=512, cmax=32)
    G2, D2, _ = tiny_networks(wide, open_dataset(wide))
    save_network({"G_ema": G2, "D": D2}, tmp_path / "wide.safetensors")
    with pytest.raises(StyleGANError, match="has shape .* but this run needs"):
        train(tiny_options(digits16, tmp_path / "runs", cond=True, resume=str(tmp_path / "wide.safetensors")))
    deep = tiny_options(digits16, tmp_path, cond=True, map=4)  # two mapping layers more than the run builds
    G3, D3, _ = tiny_networks(deep, open_dataset(deep))
    save_network({"G_ema": G3, "D": D3}, tmp_path / "deep.safetensors")
    with pytest.raises(StyleGANError, match=r"G_ema has tensors this run has no place for \(mapping.fc2.weight"):
        train(tiny_options(digits16, tmp_path / "runs", cond=True, resume=str(tmp_path / "deep.safetensors")))
    assert not any((tmp_path / "runs").glob("*/network-snapshot-*"))


def test_resume_mismatch_is_a_one_line_cli_error(digits16, tmp_path):
    opts = tiny_options(digits16, tmp_path, cond=True)
    G, D, _ = tiny_networks(opts, open_dataset(opts))
    save_network({"G_ema": G, "D": D}, tmp_path / "cond.safetensors")
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", "--kimg", "0.004",
                        "--resume", tmp_path / "cond.safetensors", *TINY_CLI)
    assert code == 2 and err.startswith("error: resume (--resume) ") and err.count("\n") == 1


def test_snapshot_layout_names_each_moment_by_network_parameter_and_slot():
    from stylegan.training.snapshot import resume_tensors, trainer_state_from
    moment = torch.arange(6.0).reshape(2, 3)
    state = {"optimizers": {"D": {"b4.out.weight": {"exp_avg": moment, "step": torch.tensor(3.0)}},
                            "G": {"mapping.fc0.bias": {"exp_avg_sq": moment[0]}}},
             "pl_mean": torch.tensor(0.25)}
    flat = resume_tensors(state)
    assert set(flat) == {"resume.opt.D.b4.out.weight.exp_avg", "resume.opt.D.b4.out.weight.step",
                         "resume.opt.G.mapping.fc0.bias.exp_avg_sq", "resume.pl_mean"}
    assert flat["resume.pl_mean"].shape == (1,)
    back = trainer_state_from(flat)
    assert torch.equal(back["optimizers"]["D"]["b4.out.weight"]["exp_avg"], moment)
    assert set(back["optimizers"]["G"]) == {"mapping.fc0.bias"} and float(back["pl_mean"]) == 0.25


def test_a_restored_trainer_holds_the_saved_optimizer_state(digits16, tmp_path):
    from stylegan.training import distributed as du
    from stylegan.training.loop import Trainer
    opts = tiny_options(digits16, tmp_path)
    ds = open_dataset(opts)
    first = Trainer(opts, du.Rank(), ds, *tiny_networks(opts, ds), None, None)
    first.train_step()
    saved = first.state_for_snapshot()
    assert saved["progress"]["batch_idx"] == 1 and saved["dataset"]["resolution"] == 16
    second = Trainer(opts, du.Rank(), ds, *tiny_networks(opts, ds), None, None,
                     resume_state={"trainer": saved["trainer"]})
    again = second.state_for_snapshot()["trainer"]
    assert float(again["pl_mean"]) == float(saved["trainer"]["pl_mean"]) != 0
    count = 0
    for network in ("G", "D"):
        assert set(again["optimizers"][network]) == set(saved["trainer"]["optimizers"][network])
        for name, slots in saved["trainer"]["optimizers"][network].items():
            for slot, value in slots.items():
                assert torch.equal(again["optimizers"][network][name][slot], value), (network, name, slot)
                count += 1
    assert count > 30
