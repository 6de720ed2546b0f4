"""Sharding over ranks: two gloo processes on the CPU give exactly the single-process results."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stylegan.metrics import evaluate
from stylegan.errors import StyleGANError
from stylegan.metrics.distributed import Shard, gather_units, shutdown, start_shard
from tests.conftest import run_torchrun, torchrun_report

METRICS = "fid50k_full@22,kid50k_full@22,pr50k3_full@22,is50k@22,ppl_zfull@7,ppl2_wend@5"


def _worker(rank, world, store_file, dataset, detector_dir, out_dir):
    torch.set_num_threads(1)
    # A file rendezvous: a free port picked in advance could be taken by someone else before it is used.
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=world)
    try:
        from tests.metrics.conftest import tiny_generator

        # gather_units: rank r holds units r, r + world, ... of sizes [3, 1, 2, 2, 1].
        sizes = np.array([3, 1, 2, 2, 1])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        mine = torch.cat([torch.arange(starts[u], starts[u] + sizes[u]) for u in range(rank, len(sizes), world)])
        gathered = gather_units(mine.float()[:, None], sizes, Shard(rank, world))[:, 0].tolist()

        results = evaluate(METRICS, tiny_generator(), dataset, detector_dir=detector_dir, progress=False,
                           warn=lambda m: None)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"gathered": gathered, "results": {r.metric: r.results for r in results}}, f)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(G, dataset, detector_dir, tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(dataset), str(detector_dir), str(tmp_path)), nprocs=2,
             join=True)
    single = {r.metric: r.results for r in evaluate(METRICS, G, dataset, detector_dir=detector_dir, progress=False,
                                                    warn=lambda m: None)}
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["gathered"] == list(range(9))
        assert set(got["results"]) == set(single)
        for metric, values in single.items():
            for key, value in values.items():
                # Sums are added in another order across ranks: equal up to float64 rounding. PPL divides
                # float32 feature differences by ε² = 1e-8, so the workers' other thread count (other
                # convolution summation order) shows up at ~1e-5 relative.
                rel = 1e-3 if metric.startswith("ppl") else 1e-9
                assert got["results"][metric][key] == pytest.approx(value, rel=rel, abs=1e-12), (metric, key)


def test_the_metrics_command_under_torchrun_matches_one_process(run, tmp_path, network_file, dataset, detector_dir):
    """`torchrun … stylegan metrics`: the work is shared out, rank 0 alone prints and writes, the numbers are the
    single process's, and both processes leave the process group cleanly."""
    args = ["metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full,kid50k_full",
            "--num-gen", 30, "--seed", 5, "--detector-dir", detector_dir, "--device", "cpu", "--quiet"]
    one = run(*args, "--out", tmp_path / "one.jsonl")
    assert one.code == 0, one.err
    two = run_torchrun(2, *args, "--out", tmp_path / "two.jsonl")
    assert two.returncode == 0, torchrun_report(two)
    assert two.stdout.count("fid50k_full@30") == 1  # one table, from rank 0

    lines = {name: [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
             for name in ("one.jsonl", "two.jsonl")}
    assert [d["metric"] for d in lines["two.jsonl"]] == [d["metric"] for d in lines["one.jsonl"]]
    for a, b in zip(lines["one.jsonl"], lines["two.jsonl"]):
        assert set(b["results"]) == set(a["results"])
        for key, value in a["results"].items():
            assert b["results"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (a["metric"], key)


def test_a_single_process_joins_no_group_and_gets_the_device_it_asked_for(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    shard, device = start_shard("cpu")
    assert shard == Shard(0, 1) and device == torch.device("cpu") and not dist.is_initialized()
    shutdown(shard)
    with pytest.raises(StyleGANError, match="unknown device 'gpu'"):
        start_shard("gpu")
