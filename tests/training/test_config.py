import dataclasses

import pytest

from stylegan.errors import StyleGANError
from stylegan.training.config import BASE_CONFIGS, TrainingOptions, resolve_options, validate

# Values of the official stylegan2-ada-pytorch train.py `--cfg auto` (its spec after the auto heuristics),
# produced by running that computation for each (resolution, GPU count) outside this repository:
# resolution, gpus → batch, batch_gpu, mbstd group, channel_base (fmaps · 32768), lrate, gamma, ema_kimg, ramp, map.
OFFICIAL_AUTO = [
    (16, 1, 32, 32, 4, 16384, 0.0025, 0.0016, 10.0, 0.05, 2),
    (32, 1, 32, 32, 4, 16384, 0.0025, 0.0064, 10.0, 0.05, 2),
    (64, 2, 64, 32, 4, 16384, 0.0025, 0.0128, 20.0, 0.05, 2),
    (128, 2, 64, 32, 4, 16384, 0.0025, 0.0512, 20.0, 0.05, 2),
    (256, 1, 16, 16, 4, 16384, 0.0025, 0.8192, 5.0, 0.05, 2),
    (256, 8, 64, 8, 4, 16384, 0.0025, 0.2048, 20.0, 0.05, 2),
    (256, 64, 64, 1, 1, 16384, 0.0025, 0.2048, 20.0, 0.05, 2),
    (512, 4, 32, 8, 4, 32768, 0.0025, 1.6384, 10.0, 0.05, 2),
    (1024, 1, 4, 4, 4, 32768, 0.002, 52.4288, 1.25, 0.05, 2),
    (1024, 2, 8, 4, 4, 32768, 0.002, 26.2144, 2.5, 0.05, 2),
    (1024, 8, 32, 4, 4, 32768, 0.002, 6.5536, 10.0, 0.05, 2),
    (2048, 1, 2, 2, 2, 32768, 0.002, 419.4304, 0.625, 0.05, 2),
    (2048, 4, 8, 2, 2, 32768, 0.002, 104.8576, 2.5, 0.05, 2),
]


@pytest.mark.parametrize("res,gpus,batch,batch_gpu,mbstd,cbase,lrate,gamma,ema,ramp,map_layers", OFFICIAL_AUTO)
def test_auto_config_matches_the_official_values(res, gpus, batch, batch_gpu, mbstd, cbase, lrate, gamma, ema, ramp,
                                                 map_layers):
    o = resolve_options("d.zip", "out", res, cfg="auto", gpus=gpus)
    assert (o.batch, o.batch_gpu, o.mbstd_group, o.channel_base, o.map_layers) == (batch, batch_gpu, mbstd, cbase,
                                                                                   map_layers)
    assert o.G_lr == o.D_lr == lrate
    # gamma is 0.0002·res²/batch: the official float64 result and ours may differ in the last bit.
    assert o.r1_gamma == pytest.approx(gamma, rel=1e-12)
    assert (o.ema_kimg, o.ema_rampup, o.total_kimg) == (ema, ramp, 25000)


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
    (dict(batch=6, gpus=4), "batch (--batch) 6 is not divisible by the number of processes (4)"),
    (dict(batch=8, batch_gpu=3), "batch_gpu (--batch-gpu) 3 does not divide the per-process batch 8"),
    (dict(batch=8, batch_gpu=4, mbstd_group=3), "mbstd_group (--mbstd-group) 3 does not divide the batch per pass"),
    (dict(cfg="huge"), "cfg (--cfg) 'huge' is unknown"),
    (dict(aug="sometimes"), "aug (--aug) 'sometimes' is unknown"),
    (dict(ada_target=1.5), "ada_target (--target) is 1.5, outside (0, 1)"),
    (dict(kimg=0), "total_kimg (--kimg) is 0, but must be above 0"),
    (dict(gamma=-1), "r1_gamma (--gamma) is -1, but must be at least 0"),
    (dict(augpipe="bgcx"), "augpipe (--augpipe) 'bgcx' is unknown"),
    (dict(G_architecture="unet"), "G_architecture 'unet' is unknown"),
    (dict(D_architecture="skipp"), "D_architecture 'skipp' is unknown"),
    (dict(aug="fixed"), "aug (--aug) 'fixed' needs a probability, but p (--p) is 0"),
])
def test_bad_options_are_one_line_errors_naming_field_and_flag(kwargs, needle):
    cfg = kwargs.pop("cfg", "auto")
    gpus = kwargs.pop("gpus", 1)
    with pytest.raises(StyleGANError) as e:
        resolve_options("d.zip", "out", 32, cfg=cfg, gpus=gpus, **kwargs)
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)


def test_options_built_by_hand_are_checked_too():
    """A Python caller may fill TrainingOptions itself; validate (which train() calls first) catches the same."""
    good = TrainingOptions(data="d.zip", outdir="out", batch=8, batch_gpu=4, mbstd_group=4)
    validate(good)
    for change, needle in [(dict(augpipe="nope"), "augpipe (--augpipe) 'nope'"),
                           (dict(G_architecture="nope"), "G_architecture 'nope'"),
                           (dict(D_architecture="nope"), "D_architecture 'nope'"),
                           (dict(aug="fixed", p=0.0), "aug (--aug) 'fixed' needs a probability")]:
        with pytest.raises(StyleGANError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            validate(dataclasses.replace(good, **change))
    validate(dataclasses.replace(good, aug="fixed", p=0.2, G_architecture="resnet", D_architecture="orig"))


def test_train_refuses_bad_options_before_doing_anything(tmp_path):
    from stylegan.training.run import train
    opts = TrainingOptions(data=str(tmp_path / "missing.zip"), outdir=str(tmp_path / "runs"), augpipe="nope")
    with pytest.raises(StyleGANError, match="augpipe"):
        train(opts)
    assert not (tmp_path / "runs").exists()
