"""The bounds check before a network is built: exact shapes without memory, one line for every refusal."""

from __future__ import annotations

import subprocess
import sys

import pytest

import stylegan.networks as networks
from stylegan.errors import StyleGANError
from stylegan.networks import NETWORK_CLASSES, build_network, network_shapes
from stylegan.networks.bounds import state_values

CONFIGS = [
    ("Generator", dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3,
                       synthesis_kwargs=dict(channel_base=64, architecture="resnet"))),
    ("Generator", dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, num_fp16_res=2,
                       fp16_channels_last=True, channel_base=64, resample_filter=[1, 2, 3, 4, 5, 6, 7, 8, 9])),
    ("Discriminator", dict(c_dim=3, img_resolution=16, img_channels=3, channel_base=64, architecture="skip",
                           num_fp16_res=2, block_kwargs=dict(fp16_channels_last=True, freeze_layers=3))),
    ("Discriminator", dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=64,
                           block_kwargs=dict(resample_filter=[1, 2, 3, 4, 5, 6, 7, 8, 9]))),
    ("LabelConcatGenerator", dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3)),
    ("LabelScoreDiscriminator", dict(c_dim=3, img_resolution=16, img_channels=3, channel_base=64)),
    ("StyleGAN1Generator", dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=256, img_channels=3)),
    ("StyleGAN1Discriminator", dict(c_dim=3, img_resolution=256, img_channels=3)),
]


@pytest.mark.parametrize("class_name,kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_the_shape_only_layout_equals_the_real_network(class_name, kwargs):
    shapes, total = network_shapes(class_name, kwargs)
    real = NETWORK_CLASSES[class_name](**kwargs)
    assert {k: tuple(v) for k, v in shapes.items()} == {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert list(shapes) == list(real.state_dict())
    assert total == state_values(real)


def test_laying_out_a_network_imports_nothing_slow():
    # torch's Python meta kernels import torch._dynamo and sympy (about a second): the layout avoids them.
    code = ("import sys; from stylegan.networks import network_shapes; "
            "network_shapes('Generator', dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3)); "
            "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("class_name,kwargs,expect", [
    (7, {}, "network class name is a int"),
    ("Generator", [1, 2], "its settings are a list"),
    ("Generator", {1: 2}, "non-string name 1"),
    ("Generator", dict(CONFIGS[0][1], z_dim=10**5), "z_dim=100000 is over the limit of 4096 (MAX_LATENT_DIM)"),
    ("Generator", dict(CONFIGS[0][1], z_dim=8.0), "z_dim is 8.0, expected an integer"),
    ("Generator", dict(CONFIGS[0][1], mapping_kwargs=dict(activation="nope")), "activation 'nope'"),
    ("StyleGAN1Generator", dict(CONFIGS[6][1], mapping_kwargs=dict(activation="tanh")), "activation 'tanh'"),
    ("Generator", dict(CONFIGS[0][1], mapping_kwargs=dict(w_avg_beta=float("nan"))), "w_avg_beta is nan"),
    ("Discriminator", dict(CONFIGS[2][1], epilogue_kwargs=dict(mbstd_num_channels=-1)), "below 0"),
    ("Discriminator", dict(CONFIGS[2][1], img_resolution=4), "cannot build Discriminator from the stored settings"),
    ("StyleGAN1Generator", dict(CONFIGS[6][1], synthesis_kwargs=dict(fmap_decay=float("inf"))), "fmap_decay is inf"),
])
def test_bad_settings_are_one_styleganerror(class_name, kwargs, expect):
    with pytest.raises(StyleGANError) as e:
        build_network(class_name, kwargs)
    assert expect in str(e.value)


def test_running_out_of_memory_while_building_is_one_line(monkeypatch):
    class Hungry:
        def __init__(self, **kwargs):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setitem(NETWORK_CLASSES, "Generator", Hungry)
    monkeypatch.setattr(networks, "planned_state", lambda cls, short, kwargs, what: ({}, 1_500_000_000))
    with pytest.raises(StyleGANError, match=r"not enough memory for its 1500000000 values \(5\.6 GiB\)"):
        build_network("Generator", {})
