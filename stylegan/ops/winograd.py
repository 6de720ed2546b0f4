"""3×3 convolution by Winograd's minimal filtering F(4×4, 3×3) for CPU training and inference.

A direct 3×3 convolution spends 9 multiply-adds per output pixel and channel pair. Winograd's method
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) cuts 6×6 input tiles that
overlap by 2, maps each tile and each kernel into a 36-point transform domain with fixed matrices, multiplies
there (36 matrix products, one per point, over the channels), and maps back 4×4 output tiles: 36 / 16 = 2.25
multiply-adds per output, 4× fewer than direct. On CPUs, where PyTorch's convolutions already run at the
matrix-multiply peak, fewer multiplications is what is left to make the big layers of a StyleGAN cheaper.

Exactness: the transforms are exact in real arithmetic; in float32 the result differs from a direct
convolution by ~2e-6 relative (direct: 2e-7 to 1e-6), the same for the gradients.

Tensors are handled as NHWC (channels last, the layout our CPU networks use), so every transform step reads and
writes whole channel vectors. Backward is written by hand so the transform-domain gradient is shared by the
input and weight gradients; with ``create_graph`` (R1 and path-length regularisation) it falls back to
differentiable calls of this same convolution, so second derivatives are exact too.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from stylegan.ops.weight_cache import is_differentiated, weight_derivative

# The F(4×4, 3×3) matrices of Lavin & Gray with interpolation points 0, ±1, ±2 and ∞.
_BT = ((4, 0, -5, 0, 1, 0),
       (0, -4, -4, 1, 1, 0),
       (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0),
       (0, 2, -1, -2, 1, 0),
       (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0),
       (0, 1, -1, 2, -2, 0),
       (0, 1, 1, 4, 4, 0),
       (0, 1, -1, 8, -8, 1))
_BT_T = tuple(zip(*_BT))  # rows of Bᵀ's transpose, for the backward pass

# Kept in float64 and cast to the data's dtype where used.
_G2 = torch.kron(torch.tensor(_G, dtype=torch.float64), torch.tensor(_G, dtype=torch.float64))  # [36, 9]
_AT2 = torch.kron(torch.tensor(_AT, dtype=torch.float64), torch.tensor(_AT, dtype=torch.float64))  # [16, 36]

# Below these sizes the transforms cost more than they save (see benchmarks/conv_speed.py).
MIN_SIDE = 16
MIN_CHANNELS = 96

_enabled = os.environ.get("STYLEGAN_WINOGRAD", "1") != "0"


def set_enabled(enabled: bool) -> bool:
    """Turn the Winograd path on or off process-wide (``STYLEGAN_WINOGRAD=0`` starts it off); returns the old value."""
    global _enabled
    old, _enabled = _enabled, bool(enabled)
    return old


def is_enabled() -> bool:
    return _enabled


def applies(x: torch.Tensor, w: torch.Tensor, padding, groups: int = 1) -> bool:
    """Whether the stride-1 ``conv2d(x, w, padding=padding, groups=groups)`` should run as
    :func:`winograd_conv2d` here."""
    return (_enabled and x.device.type == "cpu" and x.dtype == torch.float32 and w.dtype == torch.float32
            and x.ndim == 4 and tuple(w.shape[2:]) == (3, 3) and groups == 1
            and list(padding) == [1, 1] and min(x.shape[2], x.shape[3]) >= MIN_SIDE
            and min(w.shape[0], w.shape[1]) >= MIN_CHANNELS)


def winograd_conv2d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, w, padding=1)`` for ``x`` ``[N, C, H, W]`` and ``w`` ``[O, C, 3, 3]``, by F(4×4, 3×3)."""
    if x.shape[1] != w.shape[1] or tuple(w.shape[2:]) != (3, 3):
        raise ValueError(f"winograd_conv2d: x {tuple(x.shape)} and w {tuple(w.shape)} do not fit a 3×3 convolution")
    # Inference keeps each kernel's transform (it costs as much as the products at 256², batch 1); under
    # autograd the weight changes every step, so the transform is made inside the function.
    u = None if is_differentiated(w) else weight_derivative(w, "winograd", _weight_transform)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _WinogradConv.apply(x, w, u)
    y = _streamed_forward(x, _weight_transform(w) if u is None else u)
    return y if x.is_contiguous(memory_format=torch.channels_last) else y.contiguous()


def _combine(matrix, inputs, outputs) -> None:
    """``outputs[k] = Σ_i matrix[k][i] · inputs[i]``, in place, one fused pass per non-zero coefficient."""
    for row, out in zip(matrix, outputs):
        # A unit-coefficient term first lets the first two terms share one pass (out = t0 + c·t1).
        terms = sorted(((c, t) for c, t in zip(row, inputs) if c != 0), key=lambda term: term[0] != 1)
        (c0, t0), rest = terms[0], terms[1:]
        if c0 == 1 and rest:
            (c1, t1), rest = rest[0], rest[1:]
            torch.add(t0, t1, alpha=c1, out=out)
        elif c0 == 1:
            out.copy_(t0)
        else:
            torch.mul(t0, c0, out=out)
        for c, t in rest:
            out.add_(t, alpha=c)


def _tiles(h: int, w: int) -> tuple[int, int]:
    return (h + 3) // 4, (w + 3) // 4


# Transforms run a few samples at a time so their intermediates stay in cache: they are bound by memory
# bandwidth, and one pass over a whole batch's tiles (tens of MB) would go to DRAM and back each time.
CHUNK_BYTES = 2 << 20  # with one thread


# Pieces of the streamed (inference) forward: a band's transforms and products share its data, and the
# products want many tiles per call. Measured at 1 and 2 threads over 96–512 channels, 16² to 256²:
# 16 MB (half this machine's L3) was best or within 5 % of it; 4 MB ran up to 1.3× slower at 256².
STREAM_BYTES = 16 << 20


def chunk_bytes() -> int:
    """The chunk budget for the current number of threads.

    Each of the ~40 small ops per chunk pays a fork and join of the thread team, so more threads need
    more work per op. Measured on the transforms of the 16²–64² training layers: on two threads 8 MB chunks
    ran 1.4× faster than 2 MB ones, while one thread is best at 1.5–2 MB. Beyond two threads (unmeasured)
    this keeps the work per thread and stops at 32 MB, about a server's L3 cache.
    """
    threads = torch.get_num_threads()
    return CHUNK_BYTES if threads == 1 else CHUNK_BYTES * min(2 * threads, 16)


def _chunks(n: int, bytes_per_sample: int) -> tuple[int, list[tuple[int, int]]]:
    """The chunk size (samples) and the ``(n0, n1)`` sample ranges covering a batch of ``n``."""
    step = max(1, min(n, chunk_bytes() // max(bytes_per_sample, 1)))
    return step, [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _padded_for_tiles(xh: torch.Tensor) -> torch.Tensor:
    """NHWC ``[N, H, W, C]`` → ``[N, 4Th+2, 4Tw+2, C]``: the convolution's zero border plus whole tiles."""
    _, h, w, _ = xh.shape
    th, tw = _tiles(h, w)
    return F.pad(xh, [0, 0, 1, 1 + 4 * tw - w, 1, 1 + 4 * th - h])


def _input_transform(xh: torch.Tensor) -> torch.Tensor:
    """NHWC ``[N, H, W, C]`` → transform-domain tiles ``[36, N·Th·Tw, C]`` (point index a·6 + b)."""
    return _transform_padded(_padded_for_tiles(xh))


def _transform_padded(xp: torch.Tensor) -> torch.Tensor:
    """:func:`_input_transform` of an already padded ``[N, 4Th+2, 4Tw+2, C]`` (or a band of its rows)."""
    n, hp, wp, c = xp.shape
    th, tw = (hp - 2) // 4, (wp - 2) // 4
    v = xp.new_empty(6, 6, n, th, tw, c)
    step, chunks = _chunks(n, 6 * hp * tw * c * xp.element_size())
    cols = xp.new_empty(6, step, hp, tw, c)
    for n0, n1 in chunks:
        xs, cs = xp[n0:n1], cols[:, : n1 - n0]
        # Along W: cols[b] = Σ_j Bᵀ[b, j] · x[.., 4s + j]; then along H for all b at once into v[a].
        _combine(_BT, [xs[:, :, j : j + 4 * tw : 4] for j in range(6)], cs)
        _combine(_BT, [cs[:, :, i : i + 4 * th : 4] for i in range(6)], [v[a, :, n0:n1] for a in range(6)])
    return v.view(36, n * th * tw, c)


def _input_transform_transposed(gv: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """The adjoint of :func:`_input_transform`: ``[36, N·Th·Tw, C]`` → NHWC ``[N, H, W, C]`` (overlaps add up)."""
    th, tw = _tiles(h, w)
    c = gv.shape[-1]
    hp, wp = 4 * th + 2, 4 * tw + 2
    gv = gv.view(6, 6, n, th, tw, c)
    xp = gv.new_empty(n, hp, wp, c)
    step, chunks = _chunks(n, 6 * hp * tw * c * gv.element_size())
    cols = gv.new_empty(6, step, hp, tw, c)
    rows_part = gv.new_empty(2, 6, step, th, tw, c)
    cols_part = gv.new_empty(2, step, hp, tw, c)
    for n0, n1 in chunks:
        k = n1 - n0
        cs, g = cols[:, :k], [gv[a, :, n0:n1] for a in range(6)]
        # Along H: rows 4t+0..3 of the tiles are disjoint and cover the image; rows 4t+4, 4t+5 overlap
        # the next tile's first two, so they are added on.
        _combine(_BT_T[:4], g, [cs[:, :, i : i + 4 * th : 4] for i in range(4)])
        cs[:, :, 4 * th :].zero_()
        _combine(_BT_T[4:], g, rows_part[:, :, :k])
        cs[:, :, 4 : 4 * th + 4 : 4].add_(rows_part[0, :, :k])
        cs[:, :, 5 : 4 * th + 5 : 4].add_(rows_part[1, :, :k])
        # Along W, the same way.
        xs = xp[n0:n1]
        _combine(_BT_T[:4], list(cs), [xs[:, :, j : j + 4 * tw : 4] for j in range(4)])
        xs[:, :, 4 * tw :].zero_()
        _combine(_BT_T[4:], list(cs), cols_part[:, :k])
        xs[:, :, 4 : 4 * tw + 4 : 4].add_(cols_part[0, :k])
        xs[:, :, 5 : 4 * tw + 5 : 4].add_(cols_part[1, :k])
    return xp[:, 1 : 1 + h, 1 : 1 + w]


def _output_transform(m: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """``[36, N·Th·Tw, O]`` → ``[N, O, H, W]`` in channels-last memory: Aᵀ·m·A per tile (tiles do not overlap).

    The result is a tensor of its own, not a view, so a layer may update it in place.
    """
    th, tw = _tiles(h, w)
    o = m.shape[-1]
    y = torch.empty([n, o, h, w], dtype=m.dtype, device=m.device, memory_format=torch.channels_last)
    yh = y.permute(0, 2, 3, 1)  # the same memory as NHWC
    for n0, n1 in _chunks(n, 16 * th * tw * o * m.element_size())[1]:
        _write_tiles(m[:, n0 * th * tw : n1 * th * tw], yh[n0:n1], th, tw)
    return y


def _output_transform_transposed(gy: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`_output_transform`: NHWC ``[N, H, W, O]`` → ``[36, N·Th·Tw, O]``."""
    n, h, w, o = gy.shape
    th, tw = _tiles(h, w)
    if (h, w) != (4 * th, 4 * tw):
        gy = F.pad(gy, [0, 0, 0, 4 * tw - w, 0, 4 * th - h])
    gm = gy.new_empty(36, n * th * tw, o)
    for n0, n1 in _chunks(n, 16 * th * tw * o * gy.element_size())[1]:
        tiles = gy[n0:n1].reshape(n1 - n0, th, 4, tw, 4, o).permute(2, 4, 0, 1, 3, 5).reshape(16, -1)
        torch.mm(_AT2.to(gy).t(), tiles, out=gm[:, n0 * th * tw : n1 * th * tw].view(36, -1))
    return gm


def _weight_transform(w: torch.Tensor) -> torch.Tensor:
    """``[O, C, 3, 3]`` → ``[36, C, O]``: G·w·Gᵀ per input/output channel pair."""
    o, c = w.shape[:2]
    return (_G2.to(w) @ w.permute(2, 3, 1, 0).reshape(9, c * o)).view(36, c, o)


def _weight_transform_transposed(gu: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`_weight_transform`: ``[36, C, O]`` → ``[O, C, 3, 3]``."""
    _, c, o = gu.shape
    return (_G2.to(gu).t() @ gu.reshape(36, c * o)).view(3, 3, c, o).permute(3, 2, 0, 1)


def _pointwise_products(a: torch.Tensor, b: torch.Tensor, transpose_a: bool = False,
                        transpose_b: bool = False) -> torch.Tensor:
    """One matrix product per transform point, ``[P, M, K] @ [P, K, N]`` (either operand may be transposed)."""
    a = a.transpose(1, 2) if transpose_a else a
    b = b.transpose(1, 2) if transpose_b else b
    return torch.bmm(a, b, out=a.new_empty(a.shape[0], a.shape[1], b.shape[2]))


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` → a contiguous ``[N, H, W, C]`` (a view when x is already channels-last)."""
    return x.permute(0, 2, 3, 1).contiguous()


def _like(yh: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """NHWC result back to ``[N, C, H, W]``, in the memory format of ``ref``."""
    y = yh.permute(0, 3, 1, 2)
    if ref.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y.contiguous()


def _engine_will_use(ctx, index: int) -> bool:
    """Whether this backward pass needs the gradient of input ``index``.

    ``needs_input_grad`` only says that an input requires grad. R1 asks for ∇ₓD alone while D's weights
    require grad; skipping their unused gradient is what PyTorch's own convolution does there. The check is
    conservative: when the engine cannot tell (a leaf inside ``autograd.grad``), the gradient is computed.
    """
    node = ctx.next_functions[index][0]
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (RuntimeError, AttributeError):
        return True


def _streamed_forward(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The convolution without keeping the transformed input: transform, multiply and transform back one
    cache-sized piece at a time (a few samples, or a band of tile rows of one sample).

    In one piece per layer the transform-domain tensors of a large image go to DRAM and back between the
    steps. Measured at 256², 128 channels, batch 1, one thread: 252 ms in one piece, 187 ms direct, 126–138 ms
    in bands. Inference only: training needs the whole transformed input for the weight gradient.
    """
    n, _, h, w = x.shape
    th, tw = _tiles(h, w)
    xp = _padded_for_tiles(_nhwc(x))
    out_c = u.shape[-1]
    y = torch.empty([n, out_c, h, w], dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    yh = y.permute(0, 2, 3, 1)
    row_bytes = 36 * tw * max(x.shape[1], out_c) * x.element_size()  # one row of tiles, transformed
    rows = max(1, STREAM_BYTES // row_bytes)
    samples = max(1, rows // th) if rows >= th else 1
    for n0 in range(0, n, samples):
        n1 = min(n, n0 + samples)
        for t0 in range(0, th, rows):
            t1 = min(th, t0 + rows)
            v = _transform_padded(xp[n0:n1, 4 * t0 : 4 * t1 + 2])
            m = _pointwise_products(v, u)
            _write_tiles(m, yh[n0:n1, 4 * t0 : min(h, 4 * t1)], t1 - t0, tw)
    return y


def _write_tiles(m: torch.Tensor, out: torch.Tensor, th: int, tw: int) -> None:
    """Transform ``[36, K·th·tw, O]`` back into 4×4 output tiles and store them in NHWC ``out``
    ``[K, ≤4th, ≤4tw, O]`` (the last tiles are cut to fit)."""
    k, rows, cols, o = out.shape
    tiles = (_AT2.to(m) @ m.reshape(36, -1)).view(4, 4, k, th, tw, o).permute(2, 3, 0, 4, 1, 5)
    if (rows, cols) == (4 * th, 4 * tw):
        out.view(k, th, 4, tw, 4, o).copy_(tiles)
    else:
        out.copy_(tiles.reshape(k, 4 * th, 4 * tw, o)[:, :rows, :cols])


class _WinogradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, u=None):
        n, _, h, wd = x.shape
        v = _input_transform(_nhwc(x))
        u = _weight_transform(w) if u is None else u
        y = _output_transform(_pointwise_products(v, u), n, h, wd)
        # The transformed input serves only the weight gradient: a frozen w (D in a G step) does not keep it.
        ctx.save_for_backward(x, w, v if ctx.needs_input_grad[1] else None, u)
        return y if x.is_contiguous(memory_format=torch.channels_last) else y.contiguous()

    @staticmethod
    def backward(ctx, gy):
        x, w, v, u = ctx.saved_tensors
        need_x, need_w = (need and _engine_will_use(ctx, i) for i, need in enumerate(ctx.needs_input_grad[:2]))
        if torch.is_grad_enabled():
            # create_graph: build the gradients from differentiable ops (this convolution again, for the
            # input gradient, which is all R1 and path-length regularisation differentiate).
            gx = winograd_conv2d(gy, w.flip([2, 3]).transpose(0, 1)) if need_x else None
            gw = torch.nn.grad.conv2d_weight(x, w.shape, gy, padding=1) if need_w else None
            return gx, gw, None
        n, _, h, wd = x.shape
        gm = _output_transform_transposed(_nhwc(gy))
        gx = gw = None
        if need_x:
            gv = _pointwise_products(gm, u, transpose_b=True)
            gx = _like(_input_transform_transposed(gv, n, h, wd), x)
        if need_w:
            gw = _weight_transform_transposed(_pointwise_products(v, gm, transpose_a=True)).contiguous()
        return gx, gw, None
