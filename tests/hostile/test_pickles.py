"""Hostile pickles through the command line: each is refused with one `error:` line, in a fresh process under
4 GiB of address space, and nothing half-written is left behind.

The files are built here from a few lines each: a real tiny network whose pickled state is then given a
hostile value (objects whose ``__reduce__`` makes the pickler write the exact opcodes an attacker would:
REDUCE of an allowed function, then BUILD on what it returned), or a handful of hand-assembled opcodes.
They cover the red team's findings (issue 13): a live numpy dtype driven by BUILD into reading file bytes
as object pointers (a SIGSEGV before) or heap words; BUILD growing a tensor past its storage; sizes a file
declares but does not hold; data that nests deeply or contains itself (RecursionError, or a C-stack
overflow when hashed); and error lines quoting megabytes of file content.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from stylegan.networks import Generator
from tests.formats.official_writer import official_names, official_pickle_bytes
from tests.formats.tf_writer import stylegan2_snapshot, tf_pickle_bytes
from tests.hostile.harness import run_refused

TINY_G = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=8))


class Call:
    """Pickles as ``func(*args)``, then BUILD with ``state`` when given: what a hostile file does."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def text(value: str) -> bytes:
    """BINUNICODE: a str on the stack."""
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def global_(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


PLAIN_STATE = b"(K\x03" + text("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"  # a dtype's real state
F8 = global_("numpy", "dtype") + text("f8") + b"\x89\x88\x87R"  # REDUCE(numpy.dtype, ('f8', False, True))


def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(**TINY_G).eval()


def pickle_with(tmp_path, kwargs_value=None, weight=None, name="hostile.pkl"):
    """An official-layout snapshot of a tiny G_ema whose z_dim is ``kwargs_value`` and/or whose first mapping
    weight is ``weight`` (each left real when None)."""
    G = tiny_generator()
    if kwargs_value is not None:
        G.init_kwargs = {**TINY_G, "z_dim": kwargs_value}
    if weight is not None:
        G.mapping.fc0._parameters["weight"] = weight
    path = tmp_path / name
    path.write_bytes(official_pickle_bytes({"G_ema": G}))
    return path


def refused_everywhere(tmp_path, path, expect: str, commands=("info", "convert", "generate")) -> None:
    """Each command a user would run on ``path`` refuses it in one line, leaving no output behind."""
    for command in commands:
        args = {"info": ["info", "--network", str(path)],
                "convert": ["convert", "--source", str(path), "--dest", "out.safetensors"],
                "generate": ["generate", "--network", str(path), "--seeds", "0", "--outdir", "images"]}[command]
        run_refused(args, cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out.safetensors").exists()
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("out.safetensors", ".out"))]


# --------------------------------------------------------------------------------------------------
# 1. numpy dtypes, scalars and arrays are built by us; BUILD cannot reach them

NUMPY_CORE = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed numpy.core
SCALAR = NUMPY_CORE.multiarray.scalar
OBJECT_FIELDS = (3, "|", None, ("f0", "f1"), {"f0": (np.dtype("O"), 0), "f1": (np.dtype("O"), 8)}, 16, 1, 0)


def test_the_red_teams_object_pointer_scalar_is_refused(tmp_path):
    """The issue's construction: an 'O,O' dtype, BUILD moving its fields, a scalar of 16 file bytes read as two
    object pointers (SIGSEGV before), as a generator's z_dim."""
    dtype = Call(np.dtype, "O,O", False, True, state=OBJECT_FIELDS)
    path = pickle_with(tmp_path, kwargs_value=Call(SCALAR, dtype, b"\x41" * 16))
    refused_everywhere(tmp_path, path, "not a plain number or boolean")


def test_build_cannot_turn_a_plain_dtype_into_fields(tmp_path):
    # 'f8' is allowed, but its BUILD may only confirm a byte order: fields placed outside the item (heap words
    # in the output before) are refused.
    dtype = Call(np.dtype, "f8", False, True, state=(3, "<", None, ("a",), {"a": (np.dtype("f8"), 4096)}, 8, 8, 0))
    path = pickle_with(tmp_path, kwargs_value=Call(SCALAR, dtype, b"\x00" * 8))
    refused_everywhere(tmp_path, path, "structured numpy dtype")


def test_a_dtype_takes_one_state(tmp_path):
    twice = F8 + PLAIN_STATE + b"b" + PLAIN_STATE + b"b"  # BUILD, then BUILD again after it was checked
    scalar = global_("numpy.core.multiarray", "scalar") + twice + b"C\x08" + bytes(8) + b"\x86R"
    path = tmp_path / "twice.pkl"
    path.write_bytes(official_around(scalar))
    refused_everywhere(tmp_path, path, "tries to change a numpy dtype", commands=("info", "convert"))


def test_build_on_a_numpy_scalar_is_refused(tmp_path):
    scalar = Call(SCALAR, Call(np.dtype, "f8", False, True), b"\x00" * 8, state={"real": 1})
    refused_everywhere(tmp_path, pickle_with(tmp_path, kwargs_value=scalar), "tries to change a numpy scalar",
                       commands=("info", "convert"))


def test_an_object_array_in_a_tf_pickle_is_refused(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    Gs.components["mapping"].variables["Dense0/bias"] = np.array([None, None], dtype=object)
    path = tmp_path / "tf.pkl"
    path.write_bytes(tf_pickle_bytes((G, D, Gs), protocol=2))
    refused_everywhere(tmp_path, path, "not a plain number or boolean")


def cifar_tarball(path, batch_pickle: bytes) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for b in range(1, 6):
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{b}")
            info.size = len(batch_pickle)
            tar.addfile(info, io.BytesIO(batch_pickle))


def cifar_batch(data_ops: bytes) -> bytes:
    """A CIFAR-10 batch pickle {'data': <data_ops>, 'labels': [0, 1]}, hand-assembled."""
    return b"\x80\x02}(" + text("data") + data_ops + text("labels") + b"](K\x00K\x01eu."


U1 = global_("numpy", "dtype") + text("u1") + b"\x89\x88\x87R(K\x03" + text("|") + \
    b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
ARRAY_STATE = b"(K\x01K\x02M\x00\x0c\x86" + U1 + b"\x89B" + (2 * 3072).to_bytes(4, "little") + bytes(2 * 3072) + b"t"
NEW_ARRAY = global_("numpy.core.multiarray", "_reconstruct") + global_("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R"


def test_a_real_layout_cifar_batch_reads(tmp_path):
    """The control for the CIFAR cases below: the same hand-assembled batch with one state loads."""
    from stylegan.data.sources import _load_cifar_batch

    images, labels = _load_cifar_batch(cifar_batch(NEW_ARRAY + ARRAY_STATE + b"b"), "batch")
    assert images.shape == (2, 3, 32, 32) and labels == [0, 1]


@pytest.mark.parametrize("case", ["object_scalar", "object_array", "build_on_array"])
def test_hostile_cifar_batches_are_refused(tmp_path, case):
    if case == "object_scalar":  # the same pointer trick through the CIFAR reader
        data = Call(SCALAR, Call(np.dtype, "O,O", False, True, state=OBJECT_FIELDS), b"\x41" * 16)
        raw, expect = pickle.dumps({"data": data, "labels": [0]}, protocol=2), "not a plain number or boolean"
    elif case == "object_array":
        raw = pickle.dumps({"data": np.array([None], dtype=object), "labels": [0]}, protocol=2)
        expect = "not a plain number or boolean"
    else:  # an array given a second state after it was built
        raw = cifar_batch(NEW_ARRAY + ARRAY_STATE + b"b" + ARRAY_STATE + b"b")
        expect = "tries to change a numpy array"
    cifar_tarball(tmp_path / "cifar-10-python.tar.gz", raw)
    run_refused(["dataset", "--source", "cifar-10-python.tar.gz", "--dest", "out.zip"], cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out.zip").exists()


# --------------------------------------------------------------------------------------------------
# 2. Tensors are built by us, inside their storage

REBUILD = torch._utils._rebuild_tensor_v2
LOAD_BYTES = torch.storage._load_from_bytes


def storage_blob(values: torch.Tensor, declared: int | None = None) -> bytes:
    """A legacy torch.save of one float storage holding ``values``, declaring ``declared`` elements."""
    numel = values.numel() if declared is None else declared

    class WithStorage(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel, None) if obj == "STORAGE" else None

    def dumps(obj, persistent=False) -> bytes:
        buffer = io.BytesIO()
        (WithStorage if persistent else pickle.Pickler)(buffer, protocol=2).dump(obj)
        return buffer.getvalue()

    return (dumps(0x1950A86A20F9469CFC6C) + dumps(1001)
            + dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}})
            + dumps("STORAGE", persistent=True) + dumps(["0"]) + numel.to_bytes(8, "little", signed=True)
            + values.float().numpy().tobytes())


def tensor(blob: bytes, offset=0, size=(8, 8), stride=(8, 1), state=None) -> Call:
    return Call(REBUILD, Call(LOAD_BYTES, blob), offset, size, stride, False, OrderedDict(), state=state)


def test_build_cannot_grow_a_tensor_past_its_storage(tmp_path):
    # BUILD (src, offset, size, stride) on a real tensor called Tensor.set_, and a one-float storage became a
    # weight full of uninitialised memory that convert wrote out.
    one = storage_blob(torch.ones(1))
    source = tensor(one, size=(1,), stride=(1,))
    weight = tensor(one, size=(1,), stride=(1,), state=(source, 0, (8, 8), (8, 1)))
    refused_everywhere(tmp_path, pickle_with(tmp_path, weight=weight), "tries to change a tensor")


@pytest.mark.parametrize("case, expect", [
    ("stride0", "over a storage of 1"),  # 2^30 elements from one float: 4.3 GB before
    ("outside", "reaching element 65 of a storage of 64"),
    ("negative", "bad tensor stride"),
    ("declared", "a storage of 1073741824 elements where the file holds 1"),
    ("repeated", "twice the file's size plus 64 MiB"),
])
def test_tensors_must_lie_inside_bytes_the_file_holds(tmp_path, case, expect):
    if case == "stride0":
        weight = tensor(storage_blob(torch.ones(1)), size=(2**15, 2**15), stride=(0, 0))
    elif case == "outside":
        weight = tensor(storage_blob(torch.ones(64)), offset=1)
    elif case == "negative":
        weight = tensor(storage_blob(torch.ones(64)), offset=63, stride=(-8, -1))
    elif case == "declared":
        weight = tensor(storage_blob(torch.ones(1), declared=2**30))
    else:  # one 1 MiB storage, cut into 300 views of 1 MiB less one float: each a copy
        big = Call(LOAD_BYTES, storage_blob(torch.ones(2**18)))
        weight = [Call(REBUILD, big, 1, (2**18 - 1,), (1,), False, OrderedDict()) for _ in range(300)]
    refused_everywhere(tmp_path, pickle_with(tmp_path, weight=weight), expect, commands=("info", "convert"))


# --------------------------------------------------------------------------------------------------
# 3. Declared sizes against the bytes present


def test_a_bytes_length_past_the_end_is_refused_before_allocating(tmp_path):
    # BINBYTES8 declaring 3 GiB, BYTEARRAY8 declaring 1 TiB: refused before anything of that size exists.
    for i, op in enumerate((b"\x8e", b"\x96")):
        path = tmp_path / f"long{i}.pkl"
        path.write_bytes(b"\x80\x05" + op + (3 * 2**30 if i == 0 else 2**40).to_bytes(8, "little") + b"xyz.")
        run_refused(["info", "--network", str(path)], cwd=tmp_path, expect="only 4 remain in the file")


def test_a_tf_variable_larger_than_its_bytes_is_refused(tmp_path):
    G, D, Gs = stylegan2_snapshot(0)
    reconstruct = NUMPY_CORE.multiarray._reconstruct
    # An array of shape (8, 2^20), 32 MiB, whose state holds 32 bytes.
    Gs.components["mapping"].variables["Dense0/bias"] = Call(
        reconstruct, np.ndarray, (0,), b"b", state=(1, (8, 2**20), np.dtype("f4"), False, bytes(32)))
    path = tmp_path / "tf.pkl"
    path.write_bytes(tf_pickle_bytes((G, D, Gs), protocol=2))
    refused_everywhere(tmp_path, path, "with 32 bytes", commands=("info", "convert"))


# --------------------------------------------------------------------------------------------------
# 4. Data that nests deeply, contains itself or explodes when walked: one line, not a RecursionError


def deep_list(depth: int) -> bytes:
    return b"(" * depth + b"l" * depth  # MARK ... LIST: [[[...]]]


def official_around(inner: bytes) -> bytes:
    """A persistent Generator record whose z_dim's value is the hand-assembled ``inner`` opcodes."""
    with official_names() as (reconstruct, _):
        head = pickle.dumps({"G_ema": Call(reconstruct, {"type": "class", "version": 6, "module_src": "",
                                                          "class_name": "Generator",
                                                          "state": {"_init_kwargs": {"z_dim": "HOLE"}}})},
                            protocol=2)
    hole = b"X\x04\x00\x00\x00HOLE"
    assert head.count(hole) == 1
    return head.replace(hole, inner)


@pytest.mark.parametrize("case, expect", [
    ("deep_list", "deeper than 64 levels"),
    ("self_list", "deeper than 64 levels"),
    ("deep_tuple_key", "tuples nested deeper than 64 levels"),  # hashing it overflowed the C stack before
    ("exploding", "more than 100000 values"),
])
def test_nesting_and_cycles_in_settings_are_one_line(tmp_path, case, expect):
    inner = {
        "deep_list": deep_list(100_000),
        "self_list": b"]q\x07h\x07a",  # EMPTY_LIST, BINPUT 7, BINGET 7, APPEND: a list that holds itself
        "deep_tuple_key": b"}" + b"(" * 100_000 + b"t" * 100_000 + b"K\x01s",  # {((((...)))): 1}
        # (x, x) with x = (y, y) ... 30 levels: 2^30 values when copied as a tree, 270 bytes in the file
        "exploding": b"]q\x00" + b"0h\x00h\x00\x86q\x00" * 30,
    }[case]
    path = tmp_path / "deep.pkl"
    path.write_bytes(official_around(inner))
    refused_everywhere(tmp_path, path, expect, commands=("info", "convert"))


def test_a_module_tree_that_contains_itself_is_one_line(tmp_path):
    # The record's _modules dict (memo 90) gets the record itself (memo 91) once the record exists.
    meta = (b"}(" + text("type") + text("class") + text("class_name") + text("Generator") + text("state")
            + b"}(" + text("_modules") + b"}qZuu")
    record = global_("torch_utils.persistence", "_reconstruct_persistent_obj") + meta + b"\x85Rq["
    tie = b"hZ" + text("self") + b"h[s0"  # M['self'] = record; POP M
    path = tmp_path / "cycle.pkl"
    path.write_bytes(b"\x80\x02}" + text("G_ema") + record + tie + b"s.")
    refused_everywhere(tmp_path, path, "or containing itself", commands=("info", "convert"))


@pytest.mark.parametrize("case, expect", [
    ("class_name", "without a class name (a string)"),
    ("state", "without a class name (a string) and a state (a dict)"),
    ("init_kwargs", "its _init_kwargs is a list"),
    ("modules", "its _modules is a str"),
    ("tensor_name", "a tensor is named by a int"),
])
def test_records_of_the_wrong_type_are_one_line(tmp_path, case, expect):
    meta = {"type": "class", "version": 6, "module_src": "", "class_name": "Generator", "state": {}}
    if case == "class_name":
        meta["class_name"] = 5
    elif case == "state":
        meta["state"] = ["not", "a", "dict"]
    elif case == "init_kwargs":
        meta["state"] = {"_init_kwargs": [1, 2]}
    elif case == "modules":
        meta["state"] = {"_modules": "mapping"}
    else:
        meta["state"] = {"_init_kwargs": dict(TINY_G), "_parameters": {7: None}}
    with official_names() as (reconstruct, _):
        raw = pickle.dumps({"G_ema": Call(reconstruct, meta)}, protocol=4)
    path = tmp_path / "typed.pkl"
    path.write_bytes(raw)
    refused_everywhere(tmp_path, path, expect, commands=("info", "convert"))


def test_tf_components_shared_many_times_over_are_refused(tmp_path):
    # Five networks, each with 20 components that are all the next one: a tree of 20^4 networks within the
    # depth limit of 4, from a file of 2 KB.
    network = global_("dnnlib.tflib.network", "Network") + b")\x81"
    raw = b"\x80\x02"
    for level in range(4, -1, -1):
        components = b"".join(text(chr(65 + i)) + b"h" + bytes([level + 1]) for i in range(20)) if level < 4 else b""
        raw += (network + b"q" + bytes([level]) + b"}(" + text("components") + b"}(" + components + b"u"
                + text("variables") + b"]" + text("name") + text("x") + text("version") + b"K\x04"
                + text("build_func_name") + text("G_main") + b"ub" + (b"0" if level else b""))
    path = tmp_path / "shared.pkl"
    path.write_bytes(raw + b".")
    refused_everywhere(tmp_path, path, "more than 64 networks", commands=("info", "convert"))


# --------------------------------------------------------------------------------------------------
# 6. Error lines quote file content briefly


@pytest.mark.parametrize("case", ["global", "class_name", "tf_kwarg", "tf_variable"])
def test_huge_names_in_a_file_give_short_error_lines(tmp_path, case):
    long = "x" * 5_000_000
    path = tmp_path / "long.pkl"
    if case == "global":
        path.write_bytes(b"\x80\x02c" + long.encode() + b"\nsystem\n.")
        expect = "not on the allow-list"
    elif case == "class_name":
        meta = {"type": "class", "version": 6, "module_src": "", "class_name": long, "state": {}}
        with official_names() as (reconstruct, _):
            path.write_bytes(pickle.dumps({"G_ema": Call(reconstruct, meta)}, protocol=4))
        expect = "class name is"
    elif case == "tf_kwarg":
        G, D, Gs = stylegan2_snapshot(0)
        Gs.static_kwargs[long] = long
        path.write_bytes(tf_pickle_bytes((G, D, Gs)))
        expect = "unknown TensorFlow kwargs"
    else:
        G, D, Gs = stylegan2_snapshot(0)
        Gs.components["mapping"].variables[long] = np.zeros(1, np.float32)
        path.write_bytes(tf_pickle_bytes((G, D, Gs)))
        expect = "does not use"
    line = run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)
    assert len(line) < 1000


def test_the_object_pointer_scalar_is_live(tmp_path):
    """The control: plain pickle (the C unpickler, nothing restricted) dies of the object-pointer scalar in a
    child process, so its refusal above means something."""
    dtype = Call(np.dtype, "O,O", False, True, state=OBJECT_FIELDS)
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(Call(SCALAR, dtype, b"\x41" * 16), protocol=4))
    code = "import pickle, sys; print(repr(pickle.loads(open(sys.argv[1], 'rb').read())))"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.pkl")], capture_output=True, timeout=60,
                            check=False)
    assert result.returncode < 0  # killed by a signal (SIGSEGV)
