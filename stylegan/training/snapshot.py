"""Training snapshot files: the networks (readable by ``load_network``) plus everything a resumed run needs,
in one atomically written ``.safetensors`` file.

This module knows the file layout only; what goes in comes from ``Trainer.state_for_snapshot()`` and what
comes out goes back through ``Trainer.restore()``. Layout, beside the networks' own tensors:

- ``resume.opt.<G|D>.<parameter name>.<slot>``: each optimiser's per-parameter state (Adam's step and
  moments), for example ``resume.opt.D.b4.out.weight.exp_avg_sq``;
- ``resume.pl_mean``: the running mean path length, shape [1];
- metadata ``training``: ``{"progress": Progress fields, "options": TrainingOptions as a dict}``, and the
  dataset description as the network entry ``training_set_kwargs`` (the official name).

Randomness is derived from (seed, counters), so the counters are the RNG state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import torch

from stylegan.atomic import atomic_output
from stylegan.errors import StyleGANError, setting
from stylegan.limits import load_json, quote
from stylegan.training.progress import Progress

RESUME_PREFIX = "resume."
_MOMENTS_PREFIX = RESUME_PREFIX + "opt."
_PL_MEAN_NAME = RESUME_PREFIX + "pl_mean"


class SnapshotSource(Protocol):
    """What can be snapshotted: the training loop's Trainer."""

    def state_for_snapshot(self) -> dict[str, Any]: ...


def resume_tensors(trainer_state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The trainer's own state ({"optimizers", "pl_mean"}) as the file's flat ``resume.*`` tensors."""
    flat = {}
    for network, per_param in trainer_state["optimizers"].items():
        for param_name, slots in per_param.items():
            for slot, value in slots.items():
                flat[f"{_MOMENTS_PREFIX}{network}.{param_name}.{slot}"] = value
    flat[_PL_MEAN_NAME] = trainer_state["pl_mean"].reshape(1)
    return flat


def trainer_state_from(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The inverse of :func:`resume_tensors`; ``pl_mean`` is None when the file has none."""
    optimizers: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for name, value in tensors.items():
        if name.startswith(_MOMENTS_PREFIX):
            network, rest = name[len(_MOMENTS_PREFIX):].split(".", 1)
            param_name, slot = rest.rsplit(".", 1)  # parameter names have dots, slot names none
            optimizers.setdefault(network, {}).setdefault(param_name, {})[slot] = value
    pl_mean = tensors.get(_PL_MEAN_NAME)
    return {"optimizers": optimizers, "pl_mean": None if pl_mean is None else pl_mean.reshape([])}


def save_training_snapshot(source: SnapshotSource, path: Path) -> None:
    """Write ``source``'s state to ``path``; a failed write (disk full) leaves any older file untouched."""
    from stylegan.formats import save_network

    state = source.state_for_snapshot()
    entries = dict(state["networks"], training_set_kwargs=state["dataset"])
    training = {"progress": state["progress"], "options": state["options"]}
    with atomic_output(path, "snapshot", "earlier snapshots are kept; free some disk space (or fix permissions), "
                                         f"then continue with {setting('resume')} 'latest'") as tmp:
        save_network(entries, tmp, extra_tensors=resume_tensors(state["trainer"]), training=training)


def load_training_snapshot(path: Path) -> dict[str, Any]:
    """A snapshot's contents: ``networks`` (a load_network-style dict), ``progress`` (Progress),
    ``options`` (dict), ``tensors`` (the flat ``resume.*`` tensors as stored) and ``trainer`` (the same,
    in the form ``Trainer.restore`` takes)."""
    from stylegan.formats import load_network_file

    nets, extra, training = load_network_file(path)
    if not training or "progress" not in training:
        raise StyleGANError(f"{path} is a network file, not a training snapshot (no progress counters)",
                            f"use its path as {setting('resume')} for transfer learning instead of 'latest'")
    progress = _progress_from(training["progress"], path)
    return {"networks": nets, "progress": progress, "tensors": extra,
            "options": training.get("options", {}), "trainer": trainer_state_from(extra)}


def _progress_from(stored: Any, path: Path) -> Progress:
    """Progress from a snapshot's counters: known fields only, counters non-negative ints, sums finite."""
    fix = f"remove the damaged file so that {setting('resume')} 'latest' takes the one before it"
    names = {f.name for f in dataclasses.fields(Progress)}
    if not isinstance(stored, dict) or not set(stored) <= names:
        raise StyleGANError(f"{path} has damaged progress counters ({quote(stored)})", fix)
    for name, value in stored.items():
        counter = isinstance(Progress.__dataclass_fields__[name].default, int)  # counters; sums may be negative
        if isinstance(value, bool) or not isinstance(value, int if counter else (int, float)) \
                or not (0 <= value < 2**62 if counter else abs(value) < 2**62):  # NaN compares False
            raise StyleGANError(f"{path} has a damaged progress counter {name}={quote(value)}", fix)
    return Progress(**stored)


def augment_p(record) -> torch.Tensor:
    """The augmentation probability stored with a snapshot's augment pipe (a module or a plain record)."""
    tensors = record.tensors if hasattr(record, "tensors") else record.state_dict()
    return tensors["p"].reshape([])


def read_snapshot_options(path: Path) -> dict:
    """The TrainingOptions (as a dict) a snapshot was written with, read from its header only."""
    from safetensors import safe_open

    from stylegan.formats.safetensors_io import METADATA_KEY
    fix = f"remove the damaged file so that {setting('resume')} 'latest' takes the one before it"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            text = (f.metadata() or {})[METADATA_KEY]
        header = load_json(text, f"the stylegan metadata of {path}", fix)
        options = header["training"]["options"]
    except StyleGANError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure means this is no usable training snapshot
        raise StyleGANError(f"{path} is not a readable training snapshot ({type(e).__name__}: {quote(str(e))})",
                            f"remove the damaged file so that {setting('resume')} 'latest' takes the one before it"
                            ) from None
    if not isinstance(options, dict):
        raise StyleGANError(f"{path} has no training options", "resume from a snapshot written by `stylegan train`")
    return options
