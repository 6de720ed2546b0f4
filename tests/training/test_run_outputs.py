"""What a run leaves in its folder, and the `stylegan train` command line around it."""

import json

import numpy as np
import PIL.Image
import pytest
import torch

import stylegan
from stylegan.training import run as run_module
from tests.training.conftest import TINY_CLI, run_cli, run_dirs


@pytest.fixture(scope="module")
def finished_run(digits16, tmp_path_factory):
    """One tiny conditional ADA run of 3 ticks with a snapshot at ticks 0 and 2 (the end)."""
    outdir = tmp_path_factory.mktemp("runs")
    code, err = run_cli("train", "--data", digits16, "--outdir", outdir, "--cond", "--kimg", "0.012",
                        "--tick", "0.004", "--snap", "2", "--seed", "3", *TINY_CLI)
    assert code == 0, err
    (run,) = run_dirs(outdir)
    return run


def test_run_folder_is_named_after_dataset_and_config(finished_run):
    assert finished_run.name == "00000-digits16-cond-auto-batch4-ada-bgc"


def test_desc_adds_words_to_the_run_folder_name(digits16, tmp_path):
    (tmp_path / "00007-earlier").mkdir()
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--kimg", "0.004", "--aug", "noaug",
                        "--desc", "gamma 2/try", "--dry-run", *TINY_CLI)
    assert code == 0 and not (set(tmp_path.iterdir()) - {tmp_path / "00007-earlier"})  # a dry run makes none
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--kimg", "0.004", "--tick", "0.004",
                        "--aug", "noaug", "--desc", "gamma 2/try", *TINY_CLI)
    assert code == 0, err
    assert [p.name for p in run_dirs(tmp_path)] == ["00007-earlier", "00008-digits16-auto-batch4-noaug-gamma_2_try"]


def test_run_folder_holds_every_output(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {"training_options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png", "fakes000000.png",
            "network-snapshot-000000.safetensors", "training_curves.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]  # atomic writes leave no temporary files
    options = json.loads((finished_run / "training_options.json").read_text())
    assert options["cond"] is True and options["batch"] == 4 and options["seed"] == 3 and options["metrics"] == []


def test_progress_lines_and_stats_follow_the_ticks(finished_run):
    ticks = [line for line in (finished_run / "log.txt").read_text().splitlines() if line.startswith("tick ")]
    assert len(ticks) == 3
    assert ticks[-1].split()[1:4] == ["2", "kimg", "0.012"] and "100.0%" in ticks[-1] and "sec/kimg" in ticks[-1]
    stats = [json.loads(line) for line in (finished_run / "stats.jsonl").read_text().splitlines()]
    assert [s["Progress/tick"] for s in stats] == [0, 1, 2]
    assert [s["Progress/kimg"] for s in stats] == pytest.approx([0.004, 0.008, 0.012])
    for s in stats:
        assert np.isfinite(s["Loss/G/loss"]) and np.isfinite(s["Loss/D/loss"]) and s["Timing/sec_per_kimg"] > 0
    assert "Loss/r1_penalty" in stats[0] and "Loss/pl_penalty" in stats[0]  # lazy regularisers ran at batch 0


class _ThreeClasses:
    """11 images of classes 2 0 1 1 0 2 2 1 0 1 2, one-hot labels (as ImageDataset gives them)."""

    classes = [2, 0, 1, 1, 0, 2, 2, 1, 0, 1, 2]
    has_labels = True

    def __len__(self):
        return len(self.classes)

    def get_label(self, i):
        return np.eye(3, dtype=np.float32)[self.classes[i]]


class _Unlabeled(_ThreeClasses):
    has_labels = False


# Cell indices measured from the official stylegan2-ada-pytorch setup_snapshot_image_grid (its dataset
# giving the same 11 integer class labels), at resolution 1024 (a 7x4 grid), for random seeds 0 and 5.
OFFICIAL_GRIDS = {
    ("labeled", 0): [8, 4, 1, 8, 4, 1, 8, 7, 9, 2, 3, 7, 9, 2, 0, 6, 5, 10, 0, 6, 5, 4, 1, 8, 4, 1, 8, 4],
    ("labeled", 5): [1, 4, 8, 1, 4, 8, 1, 9, 2, 7, 3, 9, 2, 7, 6, 10, 5, 0, 6, 10, 5, 4, 8, 1, 4, 8, 1, 4],
    ("unlabeled", 0): [4, 9, 2, 10, 6, 1, 7, 8, 3, 0, 5, 4, 9, 2, 10, 6, 1, 7, 8, 3, 0, 5, 4, 9, 2, 10, 6, 1],
    ("unlabeled", 5): [5, 8, 2, 10, 4, 7, 1, 0, 9, 6, 3, 5, 8, 2, 10, 4, 7, 1, 0, 9, 6, 3, 5, 8, 2, 10, 4, 7],
}


@pytest.mark.parametrize("kind,seed", list(OFFICIAL_GRIDS))
def test_snapshot_grids_show_the_official_cells(kind, seed):
    from stylegan.training.grid import grid_layout
    dataset = _ThreeClasses() if kind == "labeled" else _Unlabeled()
    assert grid_layout(dataset, 1024, seed) == ((7, 4), OFFICIAL_GRIDS[kind, seed])


def test_grid_size_and_rows_of_one_label_each():
    from stylegan.training.grid import grid_layout

    class Labeled:  # 3 classes: each grid row shows one class
        has_labels = True

        def __len__(self):
            return 30

        def get_label(self, i):
            return [float(i % 3 == k) for k in range(3)]

    (gw, gh), indices = grid_layout(Labeled(), 256)
    assert (gw, gh) == (30, 16)  # clip(7680 / 256, 7, 32) x clip(4320 / 256, 4, 32)
    assert grid_layout(Labeled(), 16)[0] == (32, 32) and grid_layout(Labeled(), 1024)[0] == (7, 4)
    assert grid_layout(Labeled(), 16, size=(4, 2))[0] == (4, 2)
    rows = [[i % 3 for i in indices[y * gw:(y + 1) * gw]] for y in range(gh)]
    assert [row[0] for row in rows] == [y % 3 for y in range(gh)]  # classes take turns in class order
    assert all(len(set(row)) == 1 for row in rows)
    # A class's rows continue its (shuffled) images where its previous row stopped: 10 images, 30 columns,
    # so each class row shows each of its images three times, in the same cyclic order every time.
    class0 = [i for y in range(0, gh, 3) for i in indices[y * gw:(y + 1) * gw]]
    assert sorted(class0[:10]) == list(range(0, 30, 3)) and class0 == class0[:10] * (len(class0) // 10)


def test_image_grids(finished_run):
    reals = np.asarray(PIL.Image.open(finished_run / "reals.png"))
    fakes = np.asarray(PIL.Image.open(finished_run / "fakes000000.png"))
    assert reals.shape == fakes.shape == (2 * 16, 4 * 16)  # --grid 4x2
    assert not np.array_equal(fakes, np.asarray(PIL.Image.open(finished_run / "fakes_init.png")))
    plot = PIL.Image.open(finished_run / "training_curves.png")
    assert plot.format == "PNG" and plot.size[0] > 300


def test_snapshot_loads_as_a_network_with_everything(finished_run):
    net = stylegan.load_network(str(finished_run / "network-snapshot-000000.safetensors"))
    assert {"G", "D", "G_ema", "augment_pipe"} <= set(net)
    G = net["G_ema"]
    assert (G.img_resolution, G.img_channels, G.c_dim, G.z_dim) == (16, 1, 10, 16)
    img = G(torch.randn(2, 16), torch.eye(10)[:2])
    assert img.shape == (2, 1, 16, 16)


def test_tensorboard_events_when_installed(finished_run):
    pytest.importorskip("tensorboard", reason="tensorboard is optional")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    (events,) = finished_run.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert [e.step for e in acc.Scalars("Progress/kimg")] == [4, 8, 12]


def test_dry_run_prints_the_resolved_options_and_writes_nothing(digits16, tmp_path):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", "--cfg", "paper256",
                            "--gamma", "3", "--batch", "16", "--glr", "0.001", "--dlr", "0.004", "--cbase", "8192",
                            "--cmax", "128", "--map", "3", "--mbstd-group", "2", "--fp32", "--mirror", "--seed", "7",
                            "--aug", "fixed", "--p", "0.3", "--augpipe", "bgcfnc", "--freezed", "2", "--subset", "50",
                            "--kimg", "12", "--tick", "2", "--snap", "5", "--workers", "1", "--dry-run")
    assert code == 0, err
    o = json.loads(out.getvalue())
    assert (o["cfg"], o["r1_gamma"], o["batch"], o["batch_gpu"], o["G_lr"], o["D_lr"]) == ("paper256", 3, 16, 16, 0.001, 0.004)
    assert (o["channel_base"], o["channel_max"], o["map_layers"], o["mbstd_group"]) == (8192, 128, 3, 2)
    assert (o["num_fp16_res"], o["conv_clamp"], o["mirror"], o["seed"]) == (0, None, True, 7)
    assert (o["aug"], o["p"], o["augpipe"], o["freezed"], o["max_size"]) == ("fixed", 0.3, "bgcfnc", 2, 50)
    assert (o["total_kimg"], o["kimg_per_tick"], o["snap"], o["workers"]) == (12, 2, 5, 1)
    assert (o["ema_kimg"], o["pl_weight"], o["style_mixing_prob"]) == (20, 2, 0.9)  # paper256 + loss defaults
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,needle", [
    (["--cond"], "cond (--cond) needs labels"),
    (["--metrics", "fid50k_fulll"], "fid50k_fulll"),
    (["--aug", "fixed"], "aug (--aug) 'fixed' needs a probability"),
    (["--batch", "6", "--mbstd-group", "4"], "mbstd_group (--mbstd-group) 4 does not divide"),
    (["--target", "2"], "ada_target (--target) is 2, outside"),
])
def test_bad_options_are_one_line_errors(unlabeled16, tmp_path, args, needle):
    code, err = run_cli("train", "--data", unlabeled16, "--outdir", tmp_path / "runs", "--kimg", "0.004",
                        *TINY_CLI, *args)
    assert code == 2 and err.startswith("error: ") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_dataset_and_unwritable_outdir(digits16, tmp_path):
    code, err = run_cli("train", "--data", tmp_path / "nope.zip", "--outdir", tmp_path / "runs", *TINY_CLI)
    assert code == 2 and "does not exist" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run_cli("train", "--data", digits16, "--outdir", blocker / "runs", "--kimg", "0.004", *TINY_CLI)
    assert code == 2 and "cannot write to output directory" in err and err.count("\n") == 1


def test_metrics_hook_runs_after_each_snapshot_and_is_recorded(digits16, tmp_path):
    from stylegan.training.run import train
    from tests.training.conftest import tiny_options
    calls = []

    def metrics_fn(path, context):
        assert path.is_file() and context["names"] == ["toy"] and context["G_ema"].img_resolution == 16
        calls.append(path.name)
        return {"toy": 0.5 * len(calls)}

    run = train(tiny_options(digits16, tmp_path, kimg=0.008, kimg_per_tick=0.004, snap=1, metrics=["toy"]),
                metrics_fn=metrics_fn)
    assert calls == ["network-snapshot-000000.safetensors"] * 2  # tick 0 (after 4 images) and the end (8)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s.get("Metrics/toy") for s in stats] == [0.5, 1.0]


def test_a_run_refused_before_training_leaves_no_outdir(unlabeled16, digits16, tmp_path):
    # Checks that need the dataset or the --resume network run after --outdir is proven writable;
    # the folder made for that must go again when they fail.
    code, err = run_cli("train", "--data", unlabeled16, "--outdir", tmp_path / "a" / "runs", "--cond",
                        "--kimg", "0.004", *TINY_CLI)
    assert code == 2 and "error: cond (--cond) needs labels" in err
    assert not (tmp_path / "a").exists()
    code, err = run_cli("train", "--data", unlabeled16, "--outdir", tmp_path / "b", "--resume", "default",
                        "--kimg", "0.004", *TINY_CLI)
    assert code == 2 and err.startswith("error: resume (--resume) default makes 32x32") and err.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_ctrl_c_before_the_loop_starts_leaves_no_run_folder(digits16, tmp_path, monkeypatch):
    # SIGINT only becomes a graceful "snapshot and stop" once Trainer.run has installed its handler; a
    # Ctrl-C earlier arrives as KeyboardInterrupt, and the new run folder (no snapshot in it) must go.
    from tests.training.conftest import tiny_options

    def interrupted(self, *args, **kwargs):
        (self.run_dir / "log.txt").write_text("started\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module.Trainer, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_module.train(tiny_options(digits16, tmp_path / "runs", kimg=0.004))
    assert (tmp_path / "runs").is_dir() and not any((tmp_path / "runs").iterdir())
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "cli", "--kimg", "0.004", *TINY_CLI)
    assert code == 130 and not (tmp_path / "cli").exists()


def test_colour_augmentation_on_rgba_is_refused_before_training(tmp_path):
    from stylegan.data import convert_dataset
    src = tmp_path / "rgba"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        PIL.Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA").save(src / f"{i}.png")
    data = tmp_path / "rgba.zip"
    convert_dataset(str(src), data, channels=4, progress=False)
    code, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--kimg", "0.004", *TINY_CLI)
    assert code == 2 and err.startswith("error: augpipe (--augpipe) 'bgc' includes colour augmentation") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    code, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--kimg", "0.004", "--augpipe", "bg",
                        "--tick", "0.004", *TINY_CLI)
    assert code == 0, err


def test_runs_that_pick_the_same_number_at_once_get_different_folders(tmp_path, monkeypatch):
    real_mkdir, raced = type(tmp_path).mkdir, []

    def mkdir_after_a_rival(self, *args, **kwargs):
        if not raced:  # another run creates the folder between our listing and our mkdir
            raced.append(real_mkdir(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "mkdir", mkdir_after_a_rival)
    got = run_module.new_run_dir(tmp_path, "digits")
    assert got.name == "00001-digits" and (tmp_path / "00000-digits").is_dir()


def test_a_file_with_a_run_number_is_skipped_not_fought_over(tmp_path):
    (tmp_path / "00003-digits").write_text("not a run")
    assert run_module.new_run_dir(tmp_path, "digits").name == "00004-digits"
