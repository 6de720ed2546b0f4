"""The built-in network: shipped trained weights that draw readable digits of the requested class.

Readability is judged by an independent classifier: logistic regression fitted on scikit-learn's own 8×8
digits, applied to the generated 32×32 images averaged down to 8×8.
"""

import numpy as np
import pytest
import torch

import stylegan
from stylegan.formats.builtin import builtin_file
from stylegan.networks import build_network


@pytest.fixture(scope="module")
def digit_classifier():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    digits = load_digits()
    return LogisticRegression(max_iter=5000).fit(digits.data / 16.0, digits.target)


def class_accuracy(G, classifier, k: int, n: int = 50, seed: int = 0, psi: float = 1.0) -> float:
    z = torch.from_numpy(np.random.RandomState(seed + k).randn(n, G.z_dim)).float()
    c = torch.nn.functional.one_hot(torch.full([n], k), G.c_dim).float()
    with torch.no_grad():
        img = G(z, c, truncation_psi=psi, noise_mode="const")
    small = ((img[:, 0] + 1) / 2).clamp(0, 1).reshape(n, 8, 4, 8, 4).mean(dim=(2, 4)).reshape(n, 64)
    return float((classifier.predict(small.numpy()) == k).mean())


def test_the_weights_ship_inside_the_package_as_safetensors():
    path = builtin_file()
    assert path.is_file() and path.suffix == ".safetensors"
    assert path.stat().st_size < 20 * 2**20


def test_each_class_is_drawn_as_that_digit(digit_classifier):
    G = stylegan.load_network("default")["G_ema"]
    accuracies = [class_accuracy(G, digit_classifier, k) for k in range(10)]
    assert np.mean(accuracies) >= 0.85, accuracies
    assert min(accuracies) >= 0.5, accuracies


def test_the_classifier_is_not_fooled_by_an_untrained_network(digit_classifier):
    G = stylegan.load_network("default")["G_ema"]
    untrained = build_network("Generator", G.init_kwargs)
    torch.manual_seed(0)
    accuracies = [class_accuracy(untrained, digit_classifier, k) for k in range(10)]
    assert np.mean(accuracies) < 0.4, accuracies
