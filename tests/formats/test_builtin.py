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


def within_class_spread(images: np.ndarray) -> float:
    """RMS distance of ``images`` [N, 64] to their mean (as benchmarks/builtin_diversity.py measures it)."""
    return float(np.sqrt(((images - images.mean(axis=0)) ** 2).sum(axis=1).mean()))


def generated_8x8(G, k: int, n: int, seed: int) -> np.ndarray:
    z = torch.from_numpy(np.random.RandomState(seed + k).randn(n, G.z_dim)).float()
    c = torch.nn.functional.one_hot(torch.full([n], k), G.c_dim).float()
    with torch.no_grad():
        img = G(z, c, noise_mode="const")
    return ((img[:, 0] + 1) / 2).clamp(0, 1).reshape(n, 8, 4, 8, 4).mean(dim=(2, 4)).reshape(n, 64).numpy()


def test_samples_of_one_class_vary_like_real_digits_and_stay_readable(digit_classifier):
    """Issue 13's bar: within-class spread at least 0.6 of the real digits', at least 95 % read as the class.

    Measured on 200 samples per class from seeds the network was not picked by (it was picked with
    benchmarks/builtin_diversity.py's 50 per class from seed 0): 0.608 and 95.4 % there, so a few samples
    read differently on another CPU's rounding cannot cross either bar (1 sample = 0.05 %).
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    real = digits.data / 16.0
    G = stylegan.load_network("default")["G_ema"]
    ratios, reads = [], []
    for k in range(10):
        fake = generated_8x8(G, k, 200, seed=2000)
        ratios.append(within_class_spread(fake) / within_class_spread(real[digits.target == k]))
        reads.append(float((digit_classifier.predict(fake) == k).mean()))
    assert np.mean(ratios) >= 0.6 and np.mean(reads) >= 0.95, (np.mean(ratios), np.mean(reads))
