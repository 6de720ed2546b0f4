"""Training snapshots: the networks (readable by load_network) plus everything a resumed run needs —
optimizer moments, counters, ADA state, the running path length — in one atomically written
`.safetensors` file. Randomness is derived from (seed, counters), so the counters are the RNG state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from stylegan.errors import StyleGANError

RESUME_PREFIX = "resume."


def _optimizer_tensors(trainer) -> dict[str, torch.Tensor]:
    """Adam moments per module ('G' / 'D') and parameter name."""
    out: dict[str, torch.Tensor] = {}
    seen = set()
    for phase in trainer.phases:
        if id(phase.opt) in seen:
            continue
        seen.add(id(phase.opt))
        module_name = phase.name[0]  # 'G' or 'D'
        names = {id(p): n for n, p in phase.module.named_parameters()}
        for p, state in phase.opt.state.items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    out[f"{RESUME_PREFIX}opt.{module_name}.{names[id(p)]}.{key}"] = value.detach().cpu().reshape(value.shape)
    out[f"{RESUME_PREFIX}pl_mean"] = trainer.loss.pl_mean.detach().cpu().reshape(1)
    return out


def save_training_snapshot(trainer, path: Path) -> None:
    from stylegan.formats import save_network

    nets = {"G": trainer.G, "D": trainer.D, "G_ema": trainer.G_ema}
    if trainer.augment_pipe is not None:
        nets["augment_pipe"] = trainer.augment_pipe
    nets["training_set_kwargs"] = {"path": trainer.opts.data, "xflip": trainer.opts.mirror,
                                   "use_labels": trainer.opts.cond, "max_size": trainer.opts.max_size,
                                   "resolution": trainer.dataset.resolution}
    training = {"progress": dataclasses.asdict(trainer.progress), "options": trainer.opts.to_dict()}
    try:
        save_network(nets, path, extra_tensors=_optimizer_tensors(trainer), training=training)
    except OSError as e:  # e.g. disk full: the temporary file is gone and any older snapshot is untouched
        raise StyleGANError(f"cannot write snapshot {path}: {e.strerror or e}; earlier snapshots are kept",
                            "free some disk space (or fix permissions), then continue with --resume latest") from None


def augment_p(record) -> torch.Tensor:
    """The augmentation probability stored with a snapshot's augment pipe (a module or a plain record)."""
    tensors = record.tensors if hasattr(record, "tensors") else record.state_dict()
    return tensors["p"].reshape([])


def load_training_snapshot(path: Path) -> dict:
    """{'networks': load_network-style dict, 'progress': Progress, 'tensors': resume tensors, 'options': dict}."""
    from stylegan.formats import load_network_file
    from stylegan.training.loop import Progress

    nets, extra, training = load_network_file(path)
    if not training or "progress" not in training:
        raise StyleGANError(f"{path} is a network file, not a training snapshot (no progress counters)",
                            "use it with --resume PATH for transfer learning instead of --resume latest")
    progress = Progress(**training["progress"])
    return {"networks": nets, "progress": progress, "tensors": extra, "options": training.get("options", {})}


def read_snapshot_options(path: Path) -> dict:
    """The TrainingOptions (as a dict) a snapshot was written with, read from its header only."""
    import json

    from safetensors import safe_open

    from stylegan.formats.safetensors_io import METADATA_KEY
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = json.loads((f.metadata() or {})[METADATA_KEY])
        options = header["training"]["options"]
    except Exception as e:  # noqa: BLE001 - any failure means this is no usable training snapshot
        raise StyleGANError(f"{path} is not a readable training snapshot ({type(e).__name__}: {e})",
                            "remove the damaged file so that --resume latest takes the one before it") from None
    if not isinstance(options, dict):
        raise StyleGANError(f"{path} has no training options", "resume from a snapshot written by `stylegan train`")
    return options


def restore_optimizers(trainer, tensors: dict[str, torch.Tensor]) -> None:
    """Put saved Adam moments back into the trainer's optimizers (params must match by name)."""
    if f"{RESUME_PREFIX}pl_mean" in tensors:
        trainer.loss.pl_mean.copy_(tensors[f"{RESUME_PREFIX}pl_mean"].reshape([]))
    seen = set()
    for phase in trainer.phases:
        if id(phase.opt) in seen:
            continue
        seen.add(id(phase.opt))
        module_name = phase.name[0]
        for name, p in phase.module.named_parameters():
            prefix = f"{RESUME_PREFIX}opt.{module_name}.{name}."
            state = {k[len(prefix):]: _like_param(v, p) for k, v in tensors.items() if k.startswith(prefix)}
            if state:
                if "step" in state:
                    state["step"] = state["step"].float()
                phase.opt.state[p] = state


def _like_param(saved: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A saved moment on the parameter's device and, when it has its shape, in its memory layout.

    The fused Adam step walks a parameter and its moments as flat memory, so an NHWC weight (D on the CPU)
    with NCHW moments, as safetensors stores them, would pair the wrong elements.
    """
    if saved.shape != p.shape:
        return saved.to(p.device)
    return torch.empty_like(p, dtype=saved.dtype).copy_(saved)
