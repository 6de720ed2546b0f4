"""Legacy torch.save files (``_use_new_zipfile_serialization=False``, and every file of PyTorch < 1.6) read
as plain data without torch.load; mmengine's HistoryBuffer (mmagic 1.x checkpoints) read as inert data.

The reference is torch.load itself on files torch.save wrote here: every tensor must come back equal (values,
dtype, shape), every plain value equal. ``legacy_bytes`` writes the format by hand (from torch/serialization.py's
``_legacy_save``: magic number, version 1001, system facts, the data pickle with storage persistent ids, the key
list, then per key an int64 count and the bytes) so that the hostile tests can declare what they like.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan
import stylegan.formats.loader
from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats.torch_files import ObjectRecord, read_torch_file, torch_file_kind
from stylegan.metrics.detectors import load_detector
from tests.detector_standins import pt_inception_state
from tests.formats.mmgen_writer import checkpoint, small_generator
from tests.formats.rosinality_writer import small_generator_state
from tests.formats.test_torch_zip import assert_same, checkpoint_like

MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
STORAGE_TYPES = {torch.float32: torch.FloatStorage, torch.float64: torch.DoubleStorage, torch.int64: torch.LongStorage,
                 torch.float16: torch.HalfStorage, torch.uint8: torch.ByteStorage}


class _StorageRef:
    """One tensor's storage while ``legacy_bytes`` pickles: named by a persistent id."""

    def __init__(self, key: str, flat: torch.Tensor):
        self.key, self.flat = key, flat


def legacy_bytes(obj, *, declared: dict[str, int] | None = None, counts: dict[str, int] | None = None,
                 keys: list[str] | None = None, storage_type=None, data: bytes | None = None) -> bytes:
    """A legacy torch.save of ``obj`` (each tensor in a storage of its own), written by hand.

    ``declared`` overrides a storage's element count in its persistent id, ``counts`` the count written before
    its bytes (default: the declared one), ``keys`` the key list, ``storage_type`` the storage class named,
    ``data`` the whole data pickle.
    """
    declared, storages = declared or {}, {}

    class Pickler(pickle.Pickler):
        def reducer_override(self, value):
            if not isinstance(value, torch.Tensor):
                return NotImplemented
            key = str(len(storages))
            storages[key] = value.detach().contiguous().reshape(-1)
            stride = torch.empty(value.shape).stride()
            return torch._utils._rebuild_tensor_v2, (_StorageRef(key, storages[key]), 0, tuple(value.shape), stride,
                                                     False, OrderedDict())

        def persistent_id(self, value):
            if isinstance(value, _StorageRef):
                kind = storage_type or STORAGE_TYPES[value.flat.dtype]
                return ("storage", kind, value.key, "cpu", declared.get(value.key, value.flat.numel()), None)
            return None

    out = io.BytesIO()
    for header in (MAGIC, 1001, SYS_INFO):
        pickle.dump(header, out, protocol=2)
    body = io.BytesIO()
    Pickler(body, protocol=2).dump(obj)
    out.write(body.getvalue() if data is None else data)
    pickle.dump(list(storages) if keys is None else keys, out, protocol=2)
    for key, flat in storages.items():
        count = (counts or {}).get(key, declared.get(key, flat.numel()))
        out.write(count.to_bytes(8, "little", signed=True) + flat.numpy().tobytes())
    return out.getvalue()


def save_legacy(value, path: Path, **kwargs) -> Path:
    torch.save(value, path, _use_new_zipfile_serialization=False, **kwargs)
    return path


# --------------------------------------------------------------------------------------------------
# What torch.save writes comes back as torch.load reads it


@pytest.mark.parametrize("protocol", [2, 4])
def test_everything_torch_load_reads_comes_back_the_same(tmp_path, protocol):
    """State dicts (OrderedDict with _metadata), optimizer states, args, several dtypes, views sharing one
    storage at offsets, empty tensors, nested containers; protocol 2 is torch.save's default."""
    value = checkpoint_like()
    path = save_legacy(value, tmp_path / "ckpt.pt", pickle_protocol=protocol)
    assert torch_file_kind(path) == "legacy"
    ours = read_torch_file(path, "ckpt.pt")
    assert_same(ours, torch.load(path, weights_only=False))
    assert ours["views"][1].stride() == (1, 6)  # a transposed view keeps its layout
    assert ours["empty"].shape == (0, 3)


def test_a_storage_shared_by_several_tensors_is_read_once_and_each_view_is_its_own(tmp_path):
    t = torch.randn(100)
    path = save_legacy({"a": t, "b": t, "c": t[10:20], "d": t.view(10, 10)[2:5, 3:7]}, tmp_path / "s.pt")
    raw = path.read_bytes()
    assert raw.count(t.numpy().tobytes()) == 1  # one storage in the file
    out = read_torch_file(path, "s.pt")
    assert_same(out, {"a": t, "b": t, "c": t[10:20], "d": t.view(10, 10)[2:5, 3:7]})


def test_a_bare_tensor_and_an_empty_dict(tmp_path):
    t = torch.randn(4, 5, dtype=torch.float64)
    assert_same(read_torch_file(save_legacy(t, tmp_path / "t.pt"), "t.pt"), t)
    assert read_torch_file(save_legacy({}, tmp_path / "e.pt"), "e.pt") == {}


def test_pytorch_before_0_4_tensors_rebuilt_by_the_first_rebuild_function(tmp_path):
    """PyTorch < 0.4 pickled tensors as torch._utils._rebuild_tensor(storage, offset, size, stride)."""

    class OldPickler(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                return torch._utils._rebuild_tensor, (value.storage(), value.storage_offset(), tuple(value.size()),
                                                      value.stride())
            return NotImplemented

    old_pickle = types.ModuleType("old_pickle")
    old_pickle.Pickler, old_pickle.dump = OldPickler, pickle.dump
    base = torch.randn(6, 4)
    value = OrderedDict([("features.0.weight", base), ("features.0.bias", base[1]), ("t", base.t())])
    path = tmp_path / "old.pth"
    with warnings.catch_warnings():  # value.storage() (a TypedStorage, as such files name storages) is deprecated
        warnings.simplefilter("ignore")
        torch.save(value, path, pickle_module=old_pickle, _use_new_zipfile_serialization=False)
    assert b"_rebuild_tensor\n" in path.read_bytes() and b"_rebuild_tensor_v2" not in path.read_bytes()
    assert_same(read_torch_file(path, "old.pth"), torch.load(path, weights_only=False))


def test_the_hand_written_format_is_what_torch_load_reads(tmp_path):
    """The writer the hostile tests use makes real files: torch.load reads its output, and so do we."""
    value = {"w": torch.randn(3, 4), "n": torch.arange(5), "h": torch.ones(2, dtype=torch.float16)}
    path = tmp_path / "hand.pt"
    path.write_bytes(legacy_bytes(value))
    assert_same(torch.load(path, weights_only=True), value)
    assert_same(read_torch_file(path, "hand.pt"), value)


# --------------------------------------------------------------------------------------------------
# Checkpoints and detectors in the legacy format


def test_a_legacy_rosinality_checkpoint_loads_like_its_zip_twin(tmp_path):
    value = {"g_ema": small_generator_state(), "latent_avg": torch.randn(24)}
    zipped = tmp_path / "zip.pt"
    torch.save(value, zipped)
    legacy = save_legacy(value, tmp_path / "legacy.pt")
    G_zip, G_legacy = stylegan.load_network(zipped)["G_ema"], stylegan.load_network(legacy)["G_ema"]
    assert G_zip.state_dict().keys() == G_legacy.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(G_zip.state_dict().values(), G_legacy.state_dict().values()))
    assert "legacy torch.save" in stylegan.formats.loader.describe_source(legacy)


def test_a_legacy_mmgeneration_checkpoint_loads(tmp_path):
    g = small_generator(3, size=16)
    net = stylegan.load_network(save_legacy(checkpoint(g_ema=g, meta={"iter": 10}), tmp_path / "mm.pth"))
    assert net["format"].startswith("MMGeneration/mmagic checkpoint") and net["mmgen_meta"] == {"iter": 10}
    z = torch.randn(2, 24)
    ours = net["G_ema"](z, None, noise_mode="const")
    assert ours.shape == (2, 3, 16, 16) and torch.isfinite(ours).all()


def test_a_legacy_file_of_no_known_layout_says_so(tmp_path):
    path = save_legacy({"w": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(StyleGANError, match=r"torch.save checkpoint \(legacy format\) in no layout we know"):
        stylegan.load_network(path)


def test_the_pytorch_inception_detector_loads_from_a_legacy_file(tmp_path):
    """pytorch-fid's pt_inception-2015-12-05-6726825d.pth is a legacy torch.save file: a stand-in in that format
    (random weights of its layout) loads as the detector, its weights exactly the file's."""
    state = pt_inception_state(seed=7)
    save_legacy(state, tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    detector = load_detector("inception_pt", detector_dir=tmp_path)
    loaded = detector.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k].to(state[k].dtype), state[k]) for k in state)


# --------------------------------------------------------------------------------------------------
# mmengine's HistoryBuffer: mmagic 1.x checkpoints keep the training log in ``message_hub`` as HistoryBuffer
# objects. This stand-in has mmengine's module, class name and pickled state (its __getstate__ adds its class's
# statistics functions, which protocol 2 pickles as getattr(HistoryBuffer, 'min')); mmengine is not installed.

HB_MODULE = "mmengine.logging.history_buffer"


class HistoryBuffer:
    __module__ = HB_MODULE
    _statistics_methods: dict = {}

    def __init__(self, log=(), count=(), max_length=1000000):
        self.max_length = max_length
        for name in ("min", "max", "current", "mean"):
            self._statistics_methods.setdefault(name, getattr(HistoryBuffer, name))
        self._log_history, self._count_history = np.array(log), np.array(count)

    def min(self): ...

    def max(self): ...

    def current(self): ...

    def mean(self): ...

    def __getstate__(self):
        self.__dict__.update(statistics_methods=self._statistics_methods)
        return self.__dict__


for _name in ("min", "max", "current", "mean"):
    getattr(HistoryBuffer, _name).__module__ = HB_MODULE


@pytest.fixture
def mmengine_stand_in(monkeypatch):
    """Make ``mmengine.logging.history_buffer.HistoryBuffer`` importable for pickling (the writer only)."""
    HistoryBuffer._statistics_methods = {}
    for name in ("mmengine", "mmengine.logging", HB_MODULE):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(sys.modules[HB_MODULE], "HistoryBuffer", HistoryBuffer, raising=False)
    return HistoryBuffer


def message_hub() -> dict:
    """What mmengine's MessageHub.state_dict() holds: log scalars as HistoryBuffers, runtime info, resumed keys."""
    return {"log_scalars": OrderedDict([("train/loss", HistoryBuffer([0.5, 0.25], [1, 1])),
                                        ("train/lr", HistoryBuffer([0.002], [1]))]),
            "runtime_info": OrderedDict([("iter", 800), ("epoch", 0)]),
            "resumed_keys": OrderedDict([("train/loss", True), ("train/lr", True), ("iter", True), ("epoch", True)])}


@pytest.mark.parametrize("fmt, protocol", [("zip", 2), ("zip", 4), ("legacy", 2)])
def test_an_mmagic_checkpoint_with_a_message_hub_loads(tmp_path, mmengine_stand_in, fmt, protocol):
    ckpt = checkpoint(g_ema=small_generator(3, size=16), mmagic=True, extra={"message_hub": message_hub()})
    path = tmp_path / "mmagic.pth"
    torch.save(ckpt, path, _use_new_zipfile_serialization=fmt == "zip", pickle_protocol=protocol)
    raw = path.read_bytes() if fmt == "legacy" else b""
    assert fmt == "zip" or b"getattr" in raw  # protocol 2 names the statistics functions through getattr
    net = stylegan.load_network(path)
    assert net["G_ema"].img_resolution == 16
    hub = read_torch_file(path, "mmagic.pth")["message_hub"]
    loss = hub["log_scalars"]["train/loss"]
    assert isinstance(loss, ObjectRecord) and loss.class_name == f"{HB_MODULE}.HistoryBuffer"
    assert np.array_equal(loss.state["_log_history"], [0.5, 0.25]) and loss.state["max_length"] == 1000000
    assert loss.state["statistics_methods"] == {n: f"{HB_MODULE}.HistoryBuffer.{n}"
                                                for n in ("min", "max", "current", "mean")}
    assert hub["runtime_info"] == {"iter": 800, "epoch": 0}


def test_a_custom_statistics_function_stays_refused(tmp_path, mmengine_stand_in):
    def median(self): ...
    median.__qualname__, median.__module__ = "HistoryBuffer.median", HB_MODULE
    HistoryBuffer.median = median
    try:
        buffer = HistoryBuffer([1.0], [1])
        buffer._statistics_methods["median"] = HistoryBuffer.median
        torch.save({"message_hub": {"log_scalars": {"x": buffer}}}, tmp_path / "a.pth")
    finally:
        del HistoryBuffer.median
    with pytest.raises(UnsafePickleError, match="attribute 'median' of mmengine.logging.history_buffer.HistoryBuffer"):
        read_torch_file(tmp_path / "a.pth", "a.pth")


def test_other_classes_of_mmengine_stay_refused(tmp_path, monkeypatch):
    module = "mmengine.logging.message_hub"
    for name in ("mmengine", "mmengine.logging", module):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    hub = type("MessageHub", (), {"__module__": module})
    monkeypatch.setattr(sys.modules[module], "MessageHub", hub, raising=False)
    obj = hub()
    obj.log_scalars = {}
    torch.save({"message_hub": obj}, tmp_path / "a.pth")
    with pytest.raises(UnsafePickleError, match="'mmengine.logging.message_hub.MessageHub'"):
        read_torch_file(tmp_path / "a.pth", "a.pth")


def test_an_inert_object_given_a_second_state_is_refused(tmp_path):
    data = pickle.dumps(argparse.Namespace(a=1), protocol=2)  # NEWOBJ, then BUILD {a: 1}
    assert data.endswith(b"b.")
    path = tmp_path / "a.pt"
    path.write_bytes(legacy_bytes(None, data=data[:-1] + b"}b."))  # a second BUILD (with an empty dict) before STOP
    with pytest.raises(StyleGANError, match="change an argparse.Namespace"):
        read_torch_file(path, "a.pt")
