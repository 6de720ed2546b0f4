"""Plain records that stand in for objects found in network files.

Nothing here runs code from a file: the restricted unpickler turns every persisted object into one of
these, and the loader decides what to build from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stylegan.errors import StyleGANError


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access) — here just a dict."""


@dataclass(frozen=True, slots=True)
class PersistentRecord:
    """One ``torch_utils.persistence`` object: its class name and ``__dict__``; its source is dropped."""

    class_name: str  # short name, e.g. 'Generator' (the official files store no module path)
    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        # A pickle could call this through its BUILD opcode to rewrite a record it was handed.
        raise ValueError("the pickle tries to change a network record")

    def _field(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.state.get(name)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise StyleGANError(f"a {self.class_name} in the file is malformed: its {name} is a "
                                f"{type(value).__name__}", "the file is damaged; download or copy it again")
        return value

    @property
    def init_args(self) -> tuple:
        return tuple(self._field("_init_args", (tuple, list), ()))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self._field("_init_kwargs", dict, {}))

    def submodules(self) -> dict[str, Any]:
        return {k: v for k, v in self._field("_modules", dict, {}).items() if v is not None}

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this object and its submodules, by dotted name,
        i.e. the keys ``state_dict()`` of the original module had."""
        out: dict[str, torch.Tensor] = {}
        non_persistent = set(self._field("_non_persistent_buffers_set", (set, frozenset, list, tuple), ()))
        buffers = {k: v for k, v in self._field("_buffers", dict, {}).items() if k not in non_persistent}
        for name, value in [*self._field("_parameters", dict, {}).items(), *buffers.items()]:
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise StyleGANError(f"a {self.class_name} in the file is malformed: {prefix}{name} is a "
                                    f"{type(value).__name__}, not a tensor", "the file is damaged")
            out[prefix + name] = value
        for name, sub in self.submodules().items():
            if isinstance(sub, PersistentRecord):
                out.update(sub.tensors(f"{prefix}{name}."))
        return out

    def class_names(self) -> set[str]:
        """This record's class name and those of all its submodules."""
        names = {self.class_name}
        for sub in self.submodules().values():
            if isinstance(sub, PersistentRecord):
                names |= sub.class_names()
        return names


@dataclass
class AugmentPipeRecord:
    """An augmentation pipeline from a network file, kept as data until training rebuilds it.

    ``state_dict()`` gives its tensors (e.g. ``p``, the augmentation probability), so a training
    ``AugmentPipe`` can take them with ``load_state_dict``.
    """

    class_name: str = "AugmentPipe"
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.tensors)

    @property
    def p(self) -> torch.Tensor | None:
        return self.tensors.get("p")


def plain_data(value: Any) -> Any:
    """Deep-copy into JSON-able Python values: dicts (EasyDict included), lists, numbers, strings."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
