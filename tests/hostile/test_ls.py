"""`stylegan metrics --metrics ls` refusals through the command line: each is one `error:` line (exit 2) in a
process under 4 GiB of address space, found before any image is generated, and nothing is written."""

from __future__ import annotations

import pytest

import stylegan
from stylegan.formats.tf_classifier import classifier_file_name
from tests.formats.tf_writer import attribute_classifier, write_tf_pickle
from tests.hostile.harness import run_refused
from tests.metrics.conftest import tiny_generator


@pytest.fixture
def network(tmp_path):
    path = tmp_path / "net.safetensors"
    stylegan.save_network({"G_ema": tiny_generator(resolution=16)}, path)
    return path


def classifier_folder(root, resolution: int = 8, skip: int | None = None, odd: dict | None = None):
    folder = root / "classifiers"
    folder.mkdir()
    for i in range(40):
        if i != skip:
            kwargs = dict(resolution=resolution, fmap_base=16, fmap_max=4, **(odd or {}) if i == 3 else {})
            write_tf_pickle(folder / classifier_file_name(i), attribute_classifier(i, **kwargs))
    return folder


def refuse(tmp_path, network, folder, expect: str) -> str:
    out = tmp_path / "m.jsonl"
    args = ["metrics", "--network", str(network), "--metrics", "ls@8", "--out", str(out), "--device", "cpu", "--quiet"]
    line = run_refused(args + (["--detector-dir", str(folder)] if folder else []), cwd=tmp_path, expect=expect)
    assert not out.exists()
    return line


def test_a_missing_classifier_is_named_with_how_to_get_it(tmp_path, network):
    folder = classifier_folder(tmp_path, skip=7)
    line = refuse(tmp_path, network, folder, "attribute classifier celebahq-classifier-07-bags-under-eyes.pkl "
                                             "is not in")
    assert "nvlabs-fi-cdn.nvidia.com" in line and "--detector-dir" in line


def test_a_classifier_of_another_layout_names_what_was_found(tmp_path, network):
    folder = classifier_folder(tmp_path, odd={"mbstd_group_size": 4})
    line = refuse(tmp_path, network, folder, "minibatch-stddev layer (mbstd_group_size=4)")
    assert "celebahq-classifier-03-wavy-hair.pkl" in line


def test_a_network_smaller_than_the_classifiers_input_is_refused(tmp_path, network):
    folder = classifier_folder(tmp_path, resolution=32)
    refuse(tmp_path, network, folder, "ls needs images of at least 32x32 (the attribute classifiers' input), but "
                                      "the network draws 16x16; images are not upsampled")


def test_a_network_under_256_is_refused_before_anything_is_downloaded(tmp_path, network):
    refuse(tmp_path, network, None, "ls needs images of at least 256x256")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.rglob("*.pkl"))
