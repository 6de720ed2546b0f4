"""Hostile pickles are refused before anything in them runs, with an error that names what they asked for."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan
from stylegan.errors import StyleGANError, UnsafePickleError
from tests.formats.conftest import tiny_generator
from tests.formats.official_writer import official_names, official_pickle_bytes


class Payload:
    """Pickles as ``func(*args)``: what an attacker's file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch_payloads(marker: Path) -> dict[str, tuple[str, object]]:
    """Ways a pickle could create ``marker`` if loaded with plain pickle: id → (global it names, payload)."""
    calls = [
        (os.system, f"touch '{marker}'"),
        (builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        (builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        (subprocess.Popen, ["touch", str(marker)]),
        (builtins.open, str(marker), "w"),
        (torch.load, str(marker)),
        (np.load, str(marker)),
    ]
    # pickle names a function by where it is defined: os.system is posix.system, open is io.open, ...
    return {f"{f.__module__}.{f.__qualname__}": (f"{f.__module__}.{f.__qualname__}", Payload(f, *args))
            for f, *args in calls}


def raw_os_system(marker: Path) -> bytes:
    """A hand-written protocol-2 pickle calling os.system by its own name (GLOBAL 'os system')."""
    command = f"touch '{marker}'".encode()
    return b"\x80\x02cos\nsystem\nq\x00X" + len(command).to_bytes(4, "little") + command + b"\x85q\x01Rq\x02."


def refused(path: Path, global_name: str) -> UnsafePickleError:
    with pytest.raises(UnsafePickleError) as info:
        stylegan.load_network(path)
    message = str(info.value)
    assert f"'{global_name}'" in message and "not on the allow-list" in message and str(path) in message
    assert "\n" not in message
    return info.value


def test_plain_pickle_would_really_run_these_payloads(tmp_path):
    # The control: proves the payloads below are live, so their refusal means something.
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()")))
    assert marker.exists()


@pytest.mark.parametrize("name", list(touch_payloads(Path("x"))))
def test_a_pickle_asking_for_a_dangerous_global_is_refused(tmp_path, name):
    marker = tmp_path / "pwned"
    global_name, payload = touch_payloads(marker)[name]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=4))
    refused(path, global_name)
    assert not marker.exists()


def test_os_system_by_its_own_name_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(raw_os_system(marker))
    refused(path, "os.system")
    assert not marker.exists()


def test_a_payload_hidden_in_an_otherwise_valid_snapshot_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    snapshot = {"G_ema": tiny_generator(1), "training_set_kwargs": {"path": Payload(os.system, f"touch '{marker}'")}}
    path = tmp_path / "snap.pkl"
    path.write_bytes(official_pickle_bytes(snapshot))
    refused(path, f"{os.system.__module__}.system")
    assert not marker.exists()


def test_a_payload_inside_a_network_state_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    G = tiny_generator(1)
    G.mapping._buffers["evil"] = Payload(subprocess.Popen, ["touch", str(marker)])  # deep in the module tree
    path = tmp_path / "snap.pkl"
    path.write_bytes(official_pickle_bytes({"G_ema": G}))
    refused(path, "subprocess.Popen")
    assert not marker.exists()


def legacy_storage_blob(t: torch.Tensor) -> bytes:
    """The nested blob PyTorch itself writes for ``t``'s storage (a legacy torch.save of it)."""
    return t._typed_storage().__reduce__()[1][0]


def legacy_blob(*records: bytes) -> bytes:
    """A nested blob with a valid legacy torch.save header followed by ``records``."""
    header = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
              pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)]
    return b"".join(header) + b"".join(records)


def tensor_from_blob(blob: bytes) -> Payload:
    """What a pickled tensor looks like, with ``blob`` as its storage."""
    storage = Payload(torch.storage._load_from_bytes, blob)
    return Payload(torch._utils._rebuild_tensor_v2, storage, 0, (1,), (1,), False, OrderedDict())


def test_nested_storage_blobs_of_real_tensors_load():
    t = torch.randn(3, 2)
    blob = pickle.dumps(t, protocol=4)  # contains torch.storage._load_from_bytes(<legacy torch.save blob>)
    from stylegan.formats.unpickler import restricted_load

    assert torch.equal(restricted_load(io.BytesIO(blob), "t.pkl"), t)


def test_a_malicious_nested_blob_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    inner = raw_os_system(marker)  # where the storage object's pickle should be
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": tensor_from_blob(legacy_blob(inner))}, protocol=4))
    refused(path, "os.system")
    assert not marker.exists()


def test_a_nested_blob_that_is_only_a_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"), protocol=2)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": tensor_from_blob(blob)}, protocol=4))
    refused(path, "__builtin__.exec")  # protocol 2 writes Python 2 module names
    assert not marker.exists()


def test_persistent_ids_are_refused(tmp_path):
    class WithPersistentIds(pickle.Pickler):
        def persistent_id(self, obj):
            return "external-object" if obj == "secret" else None

    buffer = io.BytesIO()
    WithPersistentIds(buffer, protocol=4).dump({"G_ema": "secret"})
    path = tmp_path / "pid.pkl"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnsafePickleError, match="persistent object"):
        stylegan.load_network(path)


def test_a_tensor_type_off_the_list_is_refused(tmp_path):
    # _rebuild_from_type_v2 is allowed, but only rebuilds Tensor/Parameter; other types are not resolved.
    payload = Payload(torch._tensor._rebuild_from_type_v2, torch._utils._rebuild_tensor_v2, subprocess.Popen, (), {})
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=4))
    refused(path, "subprocess.Popen")


def test_a_tensor_view_outside_its_storage_is_reported_as_corrupt(tmp_path):
    blob = legacy_storage_blob(torch.randn(4))
    too_big = Payload(torch._utils._rebuild_tensor_v2, Payload(torch.storage._load_from_bytes, blob), 0, (100,), (1,),
                      False, OrderedDict())
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"G_ema": too_big}, protocol=4))
    with pytest.raises(StyleGANError, match="truncated or corrupt"):
        stylegan.load_network(path)


@pytest.mark.parametrize("state", [b"}X\x08\x00\x00\x00__call__K\x01s", b"N}X\x02\x00\x00\x00fnK\x01s\x86"],
                         ids=["dict_state", "slot_state"])
def test_a_pickle_cannot_rewrite_the_functions_it_is_handed(tmp_path, state):
    # GLOBAL collections.OrderedDict, then BUILD on it: would replace our wrapper's function if it could.
    path = tmp_path / "build.pkl"
    path.write_bytes(b"\x80\x02ccollections\nOrderedDict\nq\x00" + state + b"b.")
    with pytest.raises(StyleGANError, match="truncated or corrupt"):
        stylegan.load_network(path)


def test_a_pickle_cannot_rewrite_a_network_record(tmp_path):
    class Rewritten:  # a persistent object followed by BUILD with new attributes for the record
        def __reduce__(self):
            meta = dict(type="class", version=6, module_src="", class_name="Generator", state={})
            return reconstruct, (meta,), {"class_name": "Discriminator"}

    with official_names() as (reconstruct, _):
        data = pickle.dumps({"G_ema": Rewritten()}, protocol=4)
    (tmp_path / "build.pkl").write_bytes(data)
    with pytest.raises(StyleGANError, match="truncated or corrupt"):
        stylegan.load_network(tmp_path / "build.pkl")


def test_nothing_from_the_official_code_is_imported(snapshot_pkl):
    stylegan.load_network(snapshot_pkl)
    assert not any(name.split(".")[0] in ("dnnlib", "torch_utils", "training", "legacy") for name in sys.modules)
