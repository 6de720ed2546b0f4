"""Test-only writer of official-FORMAT network pickles, made from our own modules without NVIDIA code.

The files use the official global names (``torch_utils.persistence._reconstruct_persistent_obj``,
``dnnlib.util.EasyDict``) and the official layout: every module is ``_reconstruct_persistent_obj(meta)``
with ``meta = {type, version, module_src, class_name, state}``, ``state`` being the module's
``__dict__`` (``_init_args``, ``_init_kwargs``, ``_parameters``, ``_buffers``, ``_modules`` holding
nested persistent objects, ``training``, plain attributes, ...). Tensors are left to plain pickling,
exactly as ``pickle.dump`` of an official snapshot writes them.

To let pickle name our stand-ins by the official names, fake modules are put in ``sys.modules`` only
while a file is being written.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

PERSISTENCE_VERSION = 6
DEFAULT_MODULE_SRC = "# the defining module's source would be here; loaders must never run it\n"

# Module fields that PyTorch added over the years; files from old versions lack them.
_NEWER_FIELDS = ("_backward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                 "_forward_pre_hooks_with_kwargs", "_state_dict_pre_hooks", "_load_state_dict_post_hooks")
_OLD_HOOK_FIELDS = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
                    "_load_state_dict_pre_hooks")


class AugmentPipe(nn.Module):
    """A stand-in for the official augmentation pipeline: init kwargs and a probability buffer ``p``."""

    def __init__(self, xflip: float = 0, rotate90: float = 0, xint: float = 0):
        super().__init__()
        self.init_kwargs = dict(xflip=xflip, rotate90=rotate90, xint=xint)
        self.xflip, self.rotate90, self.xint = float(xflip), float(rotate90), float(xint)
        self.register_buffer("p", torch.zeros([]))
        self.register_buffer("Hz_geom", torch.randn(12))


@contextlib.contextmanager
def official_names() -> Iterator[tuple[Any, type]]:
    """Temporarily register fake ``torch_utils.persistence`` and ``dnnlib.util`` modules.

    Yields (the persistence function, the EasyDict class) as pickle will name them.
    """
    def _reconstruct_persistent_obj(meta):  # never called: only its name goes into files
        raise AssertionError("the test writer's stand-in must never be called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    fakes = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    fakes["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    fakes["dnnlib.util"].EasyDict = easydict
    with installed_modules(fakes):
        yield _reconstruct_persistent_obj, easydict


@contextlib.contextmanager
def installed_modules(fakes: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put ``fakes`` into ``sys.modules`` for the block, then restore whatever was there before."""
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _as_easydict(value: Any, easydict: type) -> Any:
    if isinstance(value, dict):
        return easydict({k: _as_easydict(v, easydict) for k, v in value.items()})
    return value


class OfficialPickler(pickle.Pickler):
    """Persists every ``nn.Module`` the way ``torch_utils.persistence`` does; everything else as usual."""

    def __init__(self, file, reconstruct, easydict, protocol: int = 4, module_src: str = DEFAULT_MODULE_SRC,
                 old_style: bool = False, positional: int = 0):
        super().__init__(file, protocol=protocol)
        self.reconstruct, self.easydict = reconstruct, easydict
        self.module_src, self.old_style, self.positional = module_src, old_style, positional

    def module_state(self, module: nn.Module) -> dict[str, Any]:
        state: dict[str, Any] = {
            "training": module.training,
            "_parameters": OrderedDict(module._parameters),
            "_buffers": OrderedDict(module._buffers),
            "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
            "_modules": OrderedDict(module._modules),
        }
        state.update({name: OrderedDict() for name in _OLD_HOOK_FIELDS})
        if not self.old_style:
            state.update({name: OrderedDict() for name in _NEWER_FIELDS})
            state["_is_full_backward_hook"] = None
        for name, value in vars(module).items():  # plain attributes; floats as numpy like the official gains
            if not name.startswith("_") and isinstance(value, (bool, int, str, type(None))):
                state[name] = value
            elif not name.startswith("_") and isinstance(value, float):
                state[name] = np.float64(value)
        init_kwargs = dict(getattr(module, "init_kwargs", {}) or {})
        init_args: tuple = ()
        if self.positional and init_kwargs:  # move the first N kwargs into _init_args, as a positional call would
            names = list(init_kwargs)[: self.positional]
            init_args = tuple(init_kwargs.pop(name) for name in names)
        state["_init_args"] = init_args
        state["_init_kwargs"] = _as_easydict(init_kwargs, self.easydict)
        return state

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, nn.Module) and not isinstance(obj, nn.Parameter):
            meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=self.module_src,
                        class_name=type(obj).__name__, state=self.module_state(obj))
            return self.reconstruct, (meta,)
        return NotImplemented


def official_pickle_bytes(snapshot: Any, **options: Any) -> bytes:
    """``snapshot`` (usually a dict of modules and plain data) as an official-format pickle.

    Options: ``protocol`` (4), ``module_src``, ``old_style`` (omit module fields newer PyTorch adds),
    ``positional`` (store the first N constructor arguments in ``_init_args``).
    """
    buffer = io.BytesIO()
    with official_names() as (reconstruct, easydict):
        OfficialPickler(buffer, reconstruct, easydict, **options).dump(snapshot)
    return buffer.getvalue()


def write_official_pickle(path: Path, snapshot: Any, **options: Any) -> Path:
    path.write_bytes(official_pickle_bytes(snapshot, **options))
    return path
