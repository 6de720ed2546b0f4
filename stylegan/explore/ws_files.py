"""Projected-W files: ``.npz`` archives holding ws under the key ``w``, as the official projector writes them.

The official layout is float32 ``[1, num_ws, w_dim]``; ``[N, num_ws, w_dim]`` holds N ws. Reading never
unpickles anything.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan.atomic import atomic_output
from stylegan.errors import StyleGANError


def save_ws(ws: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write ws ``[N, num_ws, w_dim]`` as an ``.npz`` with key ``w`` (float32), atomically."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, w=np.asarray(torch.as_tensor(ws).detach().cpu(), dtype=np.float32))
    with atomic_output(path, "projected W", "check free space and permissions") as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def read_projected_w(path: str | os.PathLike) -> np.ndarray:
    """The array under key ``w`` of a projector ``.npz`` (official layout ``[1, num_ws, w_dim]``)."""
    try:
        data = np.load(path, allow_pickle=False)  # never unpickle user files
    except (OSError, ValueError) as e:
        # numpy calls any non-npy/npz content "pickled data" and suggests allow_pickle: never our advice.
        reason = "not an .npz archive" if "allow_pickle" in str(e) else " ".join(str(e).split())
        raise StyleGANError(f"cannot read projected W from {path}: {reason}",
                            "give the projected_w.npz written by `stylegan project`") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise StyleGANError(f"{path} is a single array, not an .npz archive", "save it with np.savez(path, w=ws)")
    with data:
        if "w" not in data.files:
            raise StyleGANError(f"{path} has no array named 'w' (it has: {', '.join(data.files) or 'none'})",
                                "give the projected_w.npz written by the projector")
        try:
            return data["w"]
        except ValueError as e:
            raise StyleGANError(f"cannot read 'w' from {path}: {e}", "store w as a plain float array") from None


def check_ws_shape(ws: np.ndarray | torch.Tensor, G: nn.Module) -> torch.Tensor:
    """Accept ws ``[N, num_ws, w_dim]`` or ``[num_ws, w_dim]`` for G; return float32 ``[N, num_ws, w_dim]``."""
    ws = torch.as_tensor(np.asarray(ws) if isinstance(ws, np.ndarray) else ws)
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim) or ws.shape[0] == 0:
        raise StyleGANError(f"projected W has shape {list(ws.shape)}, expected [N, {G.num_ws}, {G.w_dim}]",
                            "project with the same network you generate with")
    if not ws.is_floating_point():
        raise StyleGANError(f"projected W has dtype {ws.dtype}", "ws must be floating point")
    return ws.to(torch.float32)
