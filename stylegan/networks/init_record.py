"""Remembering the keyword arguments a network was built with.

Saving a network stores its class name and these arguments next to its tensors, and loading calls the
class with them again; so the record must hold plain, JSON-ready data that the caller cannot change
afterwards. ``records_init_kwargs`` writes that record for an ``__init__``:

    class Generator(nn.Module):
        @records_init_kwargs
        def __init__(self, z_dim, c_dim, w_dim, ..., **synthesis_kwargs): ...

    Generator(8, 0, 8, ...).init_kwargs   # {'z_dim': 8, 'c_dim': 0, 'w_dim': 8, ...}

Every parameter is named in the record, defaults included; arguments caught by a ``**kwargs``
parameter appear at the top level next to the named ones. When a decorated subclass ``__init__``
calls a decorated ``super().__init__``, the subclass's record is the one kept: it is written last.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable, TypeVar

Init = TypeVar("Init", bound=Callable[..., None])
Normalizer = Callable[[dict[str, Any]], dict[str, Any]]


def plain_copy(value: Any) -> Any:
    """A deep copy made of plain containers: mappings become dicts (str keys), tuples and lists become lists.

    Official files hold ``EasyDict`` settings and callers pass tuples; after a JSON round trip both read
    back as dicts and lists, and a record made of those compares equal to its reloaded self.
    """
    if isinstance(value, dict):
        return {str(key): plain_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_copy(item) for item in value]
    return copy.deepcopy(value)


def bound_arguments(signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, ``self`` dropped, defaults filled in, ``**kwargs`` spread flat.

    Raises TypeError as the call itself would when the arguments do not fit the signature.
    """
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    named: dict[str, Any] = {}
    params = list(signature.parameters.values())[1:]  # the first one is self
    for param in params:
        value = bound.arguments.get(param.name)
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value or {})
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError(f"cannot record {len(value)} extra positional arguments by name")
        else:
            named[param.name] = value
    return named


def records_init_kwargs(init: Init | None = None, *, normalize: Normalizer | None = None) -> Any:
    """Decorate an ``__init__`` so that the instance gets ``init_kwargs``: a plain dict of its arguments.

    ``normalize`` (optional) turns the bound arguments into the form to store, e.g. folding loose
    options into the nested dict they belong to; it gets a private copy and returns the record.
    Usable bare (``@records_init_kwargs``) or with options (``@records_init_kwargs(normalize=f)``).
    """

    def decorate(function: Init) -> Init:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def recording_init(self, *args, **kwargs):
            # Copy before the body runs: it may change the dicts it was given.
            record = plain_copy(bound_arguments(signature, (self, *args), kwargs))
            if normalize is not None:
                record = normalize(record)
            function(self, *args, **kwargs)
            # Written after the body, so an enclosing subclass __init__ (finishing later) overwrites
            # what its super().__init__ stored here.
            self.init_kwargs = record

        return recording_init  # type: ignore[return-value]

    return decorate if init is None else decorate(init)


__all__ = ["records_init_kwargs", "plain_copy", "bound_arguments"]
