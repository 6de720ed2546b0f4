"""The library entry point: conditional networks, the legacy/_full real-image rules, the training hook."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from stylegan.data import ImageDataset
from stylegan.errors import StyleGANError
from stylegan.metrics import evaluate, format_table, report_to_run_dir
from stylegan.metrics.sampling import GROUP, unit_seed
from stylegan.metrics.specs import OFFICIAL
from tests.metrics.conftest import tiny_generator
from tests.metrics.test_cli_metrics import detector, real_images
from tests.metrics.test_formulas import reference_fid


def stats(f):
    f = f.astype(np.float64)
    return f.mean(0), np.cov(f, rowvar=False, bias=True)


def direct_fid(G, real, num, seed, detector_dir, labels=None):
    """FID by the documented protocol: per group z, then (conditional) label rows drawn uniformly, G's noise."""
    inception = detector(detector_dir, "inception-2015-12-05.pt")
    gen = []
    for g in range(-(-num // GROUP)):
        s = unit_seed(seed, "images", g)
        rng = torch.Generator().manual_seed(s)
        z = torch.randn([GROUP, G.z_dim], generator=rng)
        c = labels[torch.randint(len(labels), [GROUP], generator=rng)] if labels is not None else torch.zeros([GROUP, 0])
        torch.manual_seed(s)
        with torch.no_grad():
            gen.append((G(z, c) * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    gen = torch.cat(gen)[:num]
    gen = gen.repeat(1, 3, 1, 1) if gen.shape[1] == 1 else gen  # gray repeated to RGB
    with torch.no_grad():
        fr, fg = (inception(x, return_features=True).numpy() for x in (real, gen))
    return reference_fid(*stats(fg), *stats(fr))


def test_conditional_network_draws_labels_from_the_dataset(labeled_dataset, detector_dir):
    G = tiny_generator(c_dim=3)
    (r,) = evaluate("fid50k_full@12", G, labeled_dataset, detector_dir=detector_dir, progress=False, warn=lambda m: None)
    ds = ImageDataset(labeled_dataset)
    labels = torch.from_numpy(np.stack([ds.get_label(i) for i in range(len(ds))]))
    assert r.value == pytest.approx(direct_fid(G, real_images(labeled_dataset), 12, 0, detector_dir, labels), rel=1e-6)


def test_legacy_metrics_use_the_mirrored_dataset_and_need_enough_images(G, dataset, detector_dir):
    legacy = dataclasses.replace(OFFICIAL["fid50k"], max_real=50, num_gen=16)  # fid50k with 50 instead of 50000
    (r,) = evaluate([legacy], G, dataset, mirror=True, detector_dir=detector_dir, progress=False)
    real = real_images(dataset)
    first50 = torch.cat([real, real.flip(3)])[:50]  # the dataset, then its mirrored copies
    assert r.num_real == 50
    assert r.value == pytest.approx(direct_fid(G, first50, 16, 0, detector_dir), rel=1e-6)
    with pytest.raises(StyleGANError, match="compares with 50 real images, but dataset data has only 40") as e:
        evaluate([legacy], G, dataset, mirror=False, detector_dir=detector_dir, progress=False)
    assert e.value.fix == ("use fid50k_full, which takes all real images, or set mirror (--mirror) if it was trained "
                           "with x-flips")
    too_many = dataclasses.replace(legacy, max_real=90)
    with pytest.raises(StyleGANError) as e:
        evaluate([too_many], G, dataset, mirror=True, detector_dir=detector_dir, progress=False)
    assert e.value.what == ("fid50k@16 compares with 90 real images, but dataset data has only 80 "
                            "(with mirror (--mirror))")


def test_a_missing_dataset_names_the_data_argument(G, detector_dir):
    with pytest.raises(StyleGANError) as e:
        evaluate("fid50k_full@8", G, detector_dir=detector_dir, progress=False)
    assert str(e.value) == ("fid50k_full@8 need(s) real images, but no dataset was given "
                            "(pass the training dataset as data (--data))")
    with pytest.raises(StyleGANError) as e:
        evaluate("is50k@10", G, detector_dir=detector_dir, progress=False, export_stats="ref.npz")
    assert e.value.what == "export_stats (--export-stats) need(s) real images, but no dataset was given"
    with pytest.raises(StyleGANError) as e:
        evaluate("is50k@10", tiny_generator(c_dim=3), detector_dir=detector_dir, progress=False)
    assert e.value.fix == "pass the training dataset as data (--data)"


def test_detector_errors_name_the_detector_dir_argument(tmp_path, monkeypatch):
    from stylegan.metrics.detectors import detector_file

    with pytest.raises(StyleGANError) as e:
        detector_file("vgg16", tmp_path)
    assert e.value.fix == ("put the file there (from https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
                           "metrics/vgg16.pt), or leave detector_dir (--detector-dir) and $STYLEGAN_DETECTOR_DIR "
                           "unset to download it")

    def offline(url, progress=True, validate=None):
        raise StyleGANError(f"cannot download {url}: no network", "check the connection")

    monkeypatch.setattr("stylegan.metrics.detectors.download", offline)
    with pytest.raises(StyleGANError) as e:
        detector_file("vgg16")
    assert e.value.fix.endswith("on a machine with internet and pass its folder as detector_dir (--detector-dir) or "
                                "$STYLEGAN_DETECTOR_DIR")


def test_full_metrics_ignore_mirror_and_warn_when_real_images_are_fewer(G, dataset, detector_dir):
    seen = []
    a = evaluate("fid50k_full@16", G, dataset, mirror=False, detector_dir=detector_dir, progress=False, warn=seen.append)
    b = evaluate("fid50k_full@16", G, dataset, mirror=True, detector_dir=detector_dir, progress=False, warn=seen.append)
    assert a[0].value == b[0].value and a[0].num_real == 40
    assert not seen  # 40 real ≥ 16 generated
    evaluate("kid50k_full@64", G, dataset, detector_dir=detector_dir, progress=False, warn=seen.append)
    assert len(seen) == 1 and "40 real images, fewer than the 64 generated" in seen[0] and "KID subsets of 40" in seen[0]


def test_shared_generation_gives_each_metric_the_numbers_it_gets_alone(G, dataset, detector_dir):
    together = evaluate("fid50k_full@12,kid50k_full@12,is50k@20,pr50k3_full@12", G, dataset,
                        detector_dir=detector_dir, progress=False, warn=lambda m: None)
    for r in together:
        (alone,) = evaluate(r.metric, G, dataset, detector_dir=detector_dir, progress=False, warn=lambda m: None)
        assert alone.results == r.results


def test_evaluate_leaves_the_network_and_the_callers_rng_alone(G, dataset, detector_dir):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    state = torch.get_rng_state()
    evaluate("fid50k_full@8,ppl_zfull@4", G, dataset, detector_dir=detector_dir, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())
    assert not G.training


def test_training_hook_writes_official_jsonl_files(G, dataset, detector_dir, tmp_path):
    results = evaluate("fid50k_full@8,pr50k3_full@8", G, dataset, detector_dir=detector_dir, progress=False,
                       network="network-snapshot-000040.safetensors", snapshot_kimg=40.0)
    for _ in range(2):
        for r in results:
            report_to_run_dir(tmp_path, r)
    lines = [json.loads(x) for x in (tmp_path / "metric-pr50k3_full@8.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and set(lines[0]["results"]) == {"pr50k3_full_precision", "pr50k3_full_recall"}
    assert lines[0]["snapshot_kimg"] == 40.0 and lines[0]["network"] == "network-snapshot-000040.safetensors"
    assert (tmp_path / "metric-fid50k_full@8.jsonl").is_file()
    table = format_table(results)
    assert "pr50k3_full_precision@8" in table and "fid50k_full@8" in table


def test_gray_networks_and_datasets_are_repeated_to_rgb(tmp_path, detector_dir):
    from tests.metrics.conftest import make_dataset

    gray = make_dataset(tmp_path, 12, channels=1)
    G = tiny_generator(channels=1)
    (r,) = evaluate("fid50k_full@8", G, gray, detector_dir=detector_dir, progress=False)
    real = real_images(gray)  # Pillow's RGB conversion repeats the gray value
    assert r.value == pytest.approx(direct_fid(G, real, 8, 0, detector_dir), rel=1e-6)


def test_detectors_are_found_through_the_environment_without_downloading(G, dataset, detector_dir, monkeypatch):
    def no_download(url, progress=True):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr("stylegan.metrics.detectors.download", no_download)
    monkeypatch.setenv("STYLEGAN_DETECTOR_DIR", str(detector_dir))
    with_env = evaluate("fid50k_full@8", G, dataset, progress=False)
    monkeypatch.delenv("STYLEGAN_DETECTOR_DIR")
    with_arg = evaluate("fid50k_full@8", G, dataset, detector_dir=detector_dir, progress=False)
    assert with_env[0].value == with_arg[0].value


def test_training_hook_records_each_snapshot(G, dataset, detector_dir, tmp_path):
    from stylegan.metrics import training_hook

    with pytest.raises(StyleGANError, match="unknown metric"):
        training_hook(["fid"], detector_dir=detector_dir)
    with pytest.raises(StyleGANError, match="is not in") as e:
        training_hook(["fid50k_full"], detector_dir=tmp_path)  # checked before training starts
    assert e.value.what.startswith("names (--metrics) fid50k_full: feature detector inception-2015-12-05.pt is not in")
    hook = training_hook(["fid50k_full@8", "pr50k3_full@8"], detector_dir=detector_dir, progress=False)
    training_set = ImageDataset(dataset, xflip=True, max_size=10)  # as training reads it: reopened in full
    context = dict(G_ema=G, dataset=training_set, device=torch.device("cpu"), rank=0, world=1)
    values = hook(tmp_path / "network-snapshot-000004.safetensors", context)
    assert set(values) == {"fid50k_full@8", "pr50k3_full_precision@8", "pr50k3_full_recall@8"}
    (direct,) = evaluate("fid50k_full@8", G, dataset, detector_dir=detector_dir, progress=False)
    assert values["fid50k_full@8"] == direct.value
    line = json.loads((tmp_path / "metric-fid50k_full@8.jsonl").read_text())
    assert line["snapshot_kimg"] == 4.0 and line["num_real"] == 40
    assert hook(None, dict(context, rank=0)) == values  # no snapshot path: nothing written, same numbers


def test_detectors_and_generator_run_in_true_float32_whatever_the_caller_set(G, dataset, detector_dir, monkeypatch):
    # PyTorch's default lets cuDNN use TF32 on Ampere-and-newer GPUs; the official metrics turn it off.
    from stylegan.metrics import evaluation
    seen = []
    for stage in ("fill_real_statistics", "fill_generated_statistics"):
        real_stage = getattr(evaluation, stage)

        def spy(*args, _real=real_stage, **kwargs):
            seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
            return _real(*args, **kwargs)
        monkeypatch.setattr(evaluation, stage, spy)
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # (properties: no monkeypatch)
    try:
        evaluate("fid50k_full@8", G, dataset, detector_dir=detector_dir, progress=False)
        evaluation.reference_stats(dataset, detector_dir=detector_dir, progress=False, cache=False)
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # the caller's, restored
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert seen == [(False, False)] * 3


def test_the_device_comes_from_the_weights_not_from_w_avg(G, dataset, detector_dir):
    # A generator whose mapping keeps no w_avg (some foreign layouts) runs where its weights are.
    import copy

    bare = copy.deepcopy(G)
    del bare.mapping.w_avg
    assert not hasattr(bare.mapping, "w_avg")
    (r,) = evaluate("fid50k_full@8", bare, dataset, detector_dir=detector_dir, progress=False)
    (ref,) = evaluate("fid50k_full@8", G, dataset, detector_dir=detector_dir, progress=False)
    assert r.value == ref.value
