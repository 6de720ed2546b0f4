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
from stylegan.data.archives import NpzArchive
from stylegan.errors import StyleGANError
from stylegan.limits import MAX_LATENT_DIM, MAX_LAYERS, quote

# ws in one projected-W file: each renders an image or a row of a figure (the projector writes 1; a
# file of 100,000 ws already takes hours to render on a CPU)
MAX_WS_ROWS = 100_000


def save_ws(ws: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write ws ``[N, num_ws, w_dim]`` as an ``.npz`` with key ``w`` (float32), atomically."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, w=np.asarray(torch.as_tensor(ws).detach().cpu(), dtype=np.float32))
    with atomic_output(path, "projected W", "check free space and permissions") as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def read_projected_w(path: str | os.PathLike) -> np.ndarray:
    """The array under key ``w`` of a projector ``.npz`` (official layout ``[1, num_ws, w_dim]``).

    Floats only, ``[num_ws, w_dim]`` or ``[N, num_ws, w_dim]`` with at most ``MAX_WS_ROWS`` ws, checked
    from the array's header before its data is read; every problem is one StyleGANError line.
    """
    fix = "give the projected_w.npz written by `stylegan project`"

    def fail(reason: str) -> StyleGANError:
        return StyleGANError(f"cannot read projected W from {path}: {reason}", fix)

    with NpzArchive(path, fail) as data:
        if "w" not in data:
            listed = ", ".join(quote(k, 40) for k in data.keys[:10]) + (", ..." if len(data.keys) > 10 else "")
            raise StyleGANError(f"{path} has no array named 'w' (it has: {listed or 'none'})",
                                "give the projected_w.npz written by the projector")
        return data.array("w", "f", _ws_shape_problem)


def _ws_shape_problem(shape: tuple) -> str | None:
    """Why ws of ``shape`` cannot be projected ws (None when they can)."""
    if len(shape) not in (2, 3) or 0 in shape:
        return f"has shape {list(shape)}, expected [N, num_ws, w_dim]"
    if len(shape) == 3 and shape[0] > MAX_WS_ROWS:
        return f"holds {shape[0]} ws, over the limit of {MAX_WS_ROWS} in one file (split it)"
    num_ws, w_dim = shape[-2:]
    if num_ws > MAX_LAYERS or w_dim > MAX_LATENT_DIM:
        return (f"has shape {list(shape)}: over the limits of {MAX_LAYERS} ws of {MAX_LATENT_DIM} values "
                "(real networks: 18 ws of 512)")
    return None


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
