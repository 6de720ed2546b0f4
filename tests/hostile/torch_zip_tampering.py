"""Tampering with torch zip checkpoints (the format of ``torch.save``), for the hostile-input tests of every
loader that reads them (rosinality, MMGeneration)."""

from __future__ import annotations

import struct
import zipfile


def hostile_data_pkl(module: str, name: str, argument: str) -> bytes:
    """``{'g_ema': module.name(argument)}`` as opcodes (GLOBAL, REDUCE)."""
    text = argument.encode()
    return (b"\x80\x02}X\x05\x00\x00\x00g_ema" + f"c{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(text))
            + text + b"\x85Rs.")


def with_members(path, replace: dict, compress: set = frozenset(), drop: set = frozenset()) -> str:
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in items:
            if any(name.endswith(d) for d in drop):
                continue
            data = next((v for k, v in replace.items() if name.endswith(k)), data)
            method = zipfile.ZIP_DEFLATED if any(name.endswith(c) for c in compress) else zipfile.ZIP_STORED
            z.writestr(name, data, method)
    return str(path)
