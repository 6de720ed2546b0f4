"""records_init_kwargs: what a network remembers of its constructor call, for saving and rebuilding."""

from __future__ import annotations

import inspect
import json

import pytest
from torch import nn

from stylegan.networks.init_record import plain_copy, records_init_kwargs


class Settings(dict):
    """A dict subclass, standing in for the EasyDict that official files hold."""


class Net(nn.Module):
    @records_init_kwargs
    def __init__(self, width: int, depth: int = 2, options: dict | None = None, **extra):
        super().__init__()
        self.width, self.depth = width, depth
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        if options is not None:
            options["seen"] = True  # a body that changes what it was given must not change the record


class WiderNet(Net):
    @records_init_kwargs
    def __init__(self, width: int, scale: int = 2):
        super().__init__(width * scale, depth=1, note="from WiderNet")


class PlainSubclass(Net):
    def __init__(self, width: int):
        super().__init__(width, depth=3)


def test_positional_and_keyword_arguments_are_recorded_by_name_with_defaults():
    assert Net(4).init_kwargs == {"width": 4, "depth": 2, "options": None}
    assert Net(4, 3).init_kwargs == {"width": 4, "depth": 3, "options": None}
    assert Net(depth=1, width=5).init_kwargs == {"width": 5, "depth": 1, "options": None}


def test_var_keyword_arguments_are_merged_flat():
    assert Net(4, color="red", size=[1, 2]).init_kwargs == {"width": 4, "depth": 2, "options": None,
                                                            "color": "red", "size": [1, 2]}


def test_the_record_is_a_copy_the_caller_and_the_body_cannot_change():
    options = {"inner": [1, 2]}
    net = Net(4, options=options)
    assert net.init_kwargs == {"width": 4, "depth": 2, "options": {"inner": [1, 2]}}
    assert options["seen"] is True  # the body did change the caller's dict ...
    options["inner"].append(3)
    assert net.init_kwargs["options"] == {"inner": [1, 2]}  # ... but neither that nor this reached the record


def test_the_record_is_plain_json_data_that_survives_a_round_trip():
    net = Net(4, options=Settings(filter=(1, 3, 3, 1), nested=Settings(a=1)), pair=(1, 2))
    record = net.init_kwargs
    assert type(record) is dict and type(record["options"]) is dict and type(record["options"]["nested"]) is dict
    assert record["options"]["filter"] == [1, 3, 3, 1] and record["pair"] == [1, 2]
    assert json.loads(json.dumps(record)) == record
    again = Net(**json.loads(json.dumps(record)))
    assert again.init_kwargs == record


def test_a_decorated_subclass_keeps_its_own_record_not_its_super_calls():
    net = WiderNet(3)
    assert net.init_kwargs == {"width": 3, "scale": 2}
    assert net.width == 6 and len(net.layers) == 1  # the super().__init__ call did run with its own arguments
    assert WiderNet(**net.init_kwargs).width == 6


def test_an_undecorated_subclass_gets_the_record_of_the_decorated_call_it_makes():
    assert PlainSubclass(2).init_kwargs == {"width": 2, "depth": 3, "options": None}


def test_arguments_that_do_not_fit_raise_type_error_like_the_undecorated_call():
    with pytest.raises(TypeError):
        Net()
    with pytest.raises(TypeError):
        Net(4, width=5)
    with pytest.raises(TypeError):
        WiderNet(3, bogus=1)


def test_normalize_shapes_the_stored_record():
    def fold_extras(record: dict) -> dict:
        extras = {k: record.pop(k) for k in list(record) if k not in ("width", "depth", "options")}
        record["options"] = {**(record["options"] or {}), **extras}
        return record

    class Folded(nn.Module):
        @records_init_kwargs(normalize=fold_extras)
        def __init__(self, width: int, depth: int = 2, options: dict | None = None, **extra):
            super().__init__()

    assert Folded(4, color="red").init_kwargs == {"width": 4, "depth": 2, "options": {"color": "red"}}
    assert Folded(4, options={"a": 1}).init_kwargs == {"width": 4, "depth": 2, "options": {"a": 1}}


def test_decorated_init_keeps_its_name_and_signature_for_introspection():
    assert Net.__init__.__name__ == "__init__"
    assert list(inspect.signature(Net.__init__).parameters) == ["self", "width", "depth", "options", "extra"]


def test_plain_copy_converts_containers_and_copies_leaves():
    leaf = {"x": [1]}
    copied = plain_copy({1: (leaf,)})
    assert copied == {"1": [{"x": [1]}]}
    leaf["x"].append(2)
    assert copied == {"1": [{"x": [1]}]}
