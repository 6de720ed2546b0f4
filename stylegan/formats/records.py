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
from stylegan.limits import MAX_JSON_DEPTH, quote

MAX_MODULES = 100_000  # modules in one network record, nested ones included (real: about 300)
MAX_PLAIN_VALUES = 100_000  # values in one network's settings (real: under 100)
_DAMAGED = "the file is damaged; download or copy it again"


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
                                f"{type(value).__name__}", _DAMAGED)
        return value

    @property
    def init_args(self) -> tuple:
        return tuple(self._field("_init_args", (tuple, list), ()))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self._field("_init_kwargs", dict, {}))

    def submodules(self) -> dict[str, Any]:
        modules = {k: v for k, v in self._field("_modules", dict, {}).items() if v is not None}
        for name in modules:
            if type(name) is not str:
                raise StyleGANError(f"a {self.class_name} in the file is malformed: a submodule is named by a "
                                    f"{type(name).__name__}", _DAMAGED)
        return modules

    def walk(self) -> list[tuple[str, "PersistentRecord"]]:
        """This record and every record below it as (dotted prefix, record), parents first; without
        recursion, at most MAX_JSON_DEPTH deep and MAX_MODULES in all (so a module tree that contains
        itself, or shares submodules into an exponential tree, is one clear error)."""
        found: list[tuple[str, PersistentRecord]] = []
        stack: list[tuple[str, PersistentRecord, int]] = [("", self, 0)]
        while stack:
            prefix, record, depth = stack.pop()
            if depth > MAX_JSON_DEPTH:
                raise StyleGANError(f"a {self.class_name} in the file nests its submodules deeper than "
                                    f"{MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), or contains itself", _DAMAGED)
            found.append((prefix, record))
            if len(found) > MAX_MODULES:
                raise StyleGANError(f"a {self.class_name} in the file has more than {MAX_MODULES} submodules "
                                    "(MAX_MODULES)", _DAMAGED)
            children = [(f"{prefix}{name}.", sub, depth + 1) for name, sub in record.submodules().items()
                        if isinstance(sub, PersistentRecord)]
            stack.extend(reversed(children))
        return found

    def _own_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        non_persistent = {n for n in self._field("_non_persistent_buffers_set", (set, frozenset, list, tuple), ())
                          if type(n) is str}
        buffers = [(k, v) for k, v in self._field("_buffers", dict, {}).items() if k not in non_persistent]
        for name, value in [*self._field("_parameters", dict, {}).items(), *buffers]:
            if type(name) is not str:
                raise StyleGANError(f"a {self.class_name} in the file is malformed: a tensor is named by a "
                                    f"{type(name).__name__}", _DAMAGED)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise StyleGANError(f"a {self.class_name} in the file is malformed: {quote(prefix + name)} is a "
                                    f"{type(value).__name__}, not a tensor", "the file is damaged")
            out[prefix + name] = value
        return out

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this object and its submodules, by dotted name,
        i.e. the keys ``state_dict()`` of the original module had."""
        out: dict[str, torch.Tensor] = {}
        for sub_prefix, record in self.walk():
            out.update(record._own_tensors(prefix + sub_prefix))
        return out

    def class_names(self) -> set[str]:
        """This record's class name and those of all its submodules."""
        return {record.class_name for _, record in self.walk()}


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


def plain_data(value: Any, what: str = "the settings") -> Any:
    """Deep-copy into JSON-able Python values: dicts (EasyDict included), lists, numbers, strings.

    Data from a file may nest deeply, contain itself, or share one list many times over (a tree far
    larger than the file): past MAX_JSON_DEPTH levels or MAX_PLAIN_VALUES values it is one StyleGANError
    naming ``what`` and the limit.
    """
    count = 0

    def copy(item: Any, depth: int) -> Any:
        nonlocal count
        count += item.size if isinstance(item, np.ndarray) else 1
        if count > MAX_PLAIN_VALUES:
            raise StyleGANError(f"{what} hold more than {MAX_PLAIN_VALUES} values (MAX_PLAIN_VALUES)", _DAMAGED)
        if depth > MAX_JSON_DEPTH:
            raise StyleGANError(f"{what} nest deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), or contain "
                                "themselves", _DAMAGED)
        if isinstance(item, dict):
            return {str(k): copy(v, depth + 1) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [copy(v, depth + 1) for v in item]
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, np.ndarray):
            return item.tolist()
        return item

    return copy(value, 1)
