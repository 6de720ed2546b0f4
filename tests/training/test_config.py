import pytest

from stylegan.errors import StyleGANError
from stylegan.training.config import BASE_CONFIGS, resolve_options


@pytest.mark.parametrize("res,gpus", [(32, 1), (256, 1), (256, 8), (1024, 2)])
def test_auto_config_follows_the_official_heuristics(res, gpus):
    o = resolve_options("d.zip", "out", res, cfg="auto", gpus=gpus)
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    assert o.batch == batch
    assert o.batch_gpu == batch // gpus
    assert o.mbstd_group == min(batch // gpus, 4)
    assert o.channel_base == (32768 if res >= 512 else 16384)
    assert o.G_lr == o.D_lr == (0.002 if res >= 1024 else 0.0025)
    assert o.r1_gamma == pytest.approx(0.0002 * res * res / batch)
    assert o.ema_kimg == pytest.approx(batch * 10 / 32)
    assert o.ema_rampup == 0.05 and o.map_layers == 2


def test_named_configs_and_overrides():
    o = resolve_options("d.zip", "out", 256, cfg="paper256")
    assert (o.batch, o.mbstd_group, o.channel_base, o.r1_gamma, o.ema_kimg, o.map_layers) == (64, 8, 16384, 1, 20, 8)
    assert o.batch_gpu == 8  # batch / ref_gpus
    o = resolve_options("d.zip", "out", 32, cfg="cifar")
    assert o.pl_weight == 0 and o.style_mixing_prob == 0 and o.D_architecture == "orig"
    o = resolve_options("d.zip", "out", 64, cfg="stylegan2", gamma=3, batch=16, glr=0.001, cbase=8192,
                        cmax=256, map=4, fp32=True)
    assert (o.r1_gamma, o.batch, o.batch_gpu, o.G_lr, o.D_lr) == (3, 16, 16, 0.001, 0.002)
    assert (o.channel_base, o.channel_max, o.map_layers, o.num_fp16_res, o.conv_clamp) == (8192, 256, 4, 0, None)
    assert set(BASE_CONFIGS) == {"stylegan2", "paper256", "paper512", "paper1024", "cifar"}


def test_transfer_learning_uses_fast_ada_and_no_ema_rampup():
    o = resolve_options("d.zip", "out", 64, resume="ffhq.pkl")
    assert o.ada_kimg == 100 and o.ema_rampup is None
    o = resolve_options("d.zip", "out", 64, resume="latest")
    assert o.ada_kimg == 500  # continuing a run keeps its settings


@pytest.mark.parametrize("kwargs,needle", [
    (dict(batch=6, gpus=4), "not divisible by the number of processes"),
    (dict(batch=8, batch_gpu=3), "does not divide the per-process batch"),
    (dict(cfg="huge"), "unknown --cfg"),
    (dict(aug="sometimes"), "unknown --aug"),
    (dict(ada_target=1.5), "--target"),
    (dict(kimg=0), "--kimg must be positive"),
])
def test_bad_options_are_one_line_errors(kwargs, needle):
    cfg = kwargs.pop("cfg", "auto")
    gpus = kwargs.pop("gpus", 1)
    with pytest.raises(StyleGANError, match=needle) as e:
        resolve_options("d.zip", "out", 32, cfg=cfg, gpus=gpus, **kwargs)
    assert "\n" not in str(e.value)
