"""`stylegan train --metrics`: metrics at each snapshot, the same numbers `stylegan metrics` gives afterwards."""

import json

import pytest

import stylegan
from stylegan.metrics import evaluate
from tests.detector_standins import write_detectors
from tests.training.conftest import TINY_CLI, run_cli, run_dirs


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    return write_detectors(tmp_path_factory.mktemp("detectors"))


def test_metrics_at_each_snapshot_equal_a_later_evaluation(digits16, detectors, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--cond", "--kimg", "0.008",
                        "--tick", "0.004", "--snap", "1", "--metrics", "fid50k_full@32,kid50k_full@32",
                        "--detector-dir", detectors, *TINY_CLI)
    assert code == 0, err
    (run,) = run_dirs(tmp_path)
    lines = [json.loads(line) for line in (run / "metric-fid50k_full@32.jsonl").read_text().splitlines()]
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    snapshot_ticks = [s for s in stats if "Metrics/fid50k_full@32" in s]
    assert len(snapshot_ticks) == len(stats) == 2  # --snap 1: a snapshot, and metrics, at every tick
    assert [line["snapshot_kimg"] for line in lines] == pytest.approx([s["Progress/kimg"] for s in stats])
    assert [s["Metrics/fid50k_full@32"] for s in snapshot_ticks] == pytest.approx([line["value"] for line in lines])
    assert len((run / "metric-kid50k_full@32.jsonl").read_text().splitlines()) == 2

    # The last value equals a fresh evaluation of the last snapshot's G_ema (metrics are seeded).
    G = stylegan.load_network(run / "network-snapshot-000000.safetensors")["G_ema"]  # kimg 0.008 → file 000000
    (again,) = evaluate("fid50k_full@32", G, digits16, detector_dir=detectors, progress=False, cache=False)
    assert lines[-1]["value"] == pytest.approx(again.value, rel=1e-6)
    assert lines[0]["value"] != pytest.approx(lines[-1]["value"])  # G changed between the snapshots


def test_unknown_metric_is_refused_before_training(digits16, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path, "--metrics", "fid99", *TINY_CLI)
    assert code == 2 and err.startswith("error: ") and "fid99" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_missing_detector_is_refused_before_training(digits16, tmp_path):
    code, err = run_cli("train", "--data", digits16, "--outdir", tmp_path / "runs", "--metrics", "fid50k_full",
                        "--detector-dir", tmp_path, *TINY_CLI)
    assert code == 2 and "inception-2015-12-05.pt" in err
    assert not (tmp_path / "runs").exists()
