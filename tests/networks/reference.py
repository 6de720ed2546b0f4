"""An independent float64 NumPy/SciPy re-implementation of StyleGAN2's forward passes.

Written from the papers' definitions (equalised lr, modulation/demodulation, FIR resampling as
"zero-insert, convolve, decimate") and the official parameter layout, without any of the package's ops,
so that tests can check the package's float32 numerics against it. Slow but plain: one 2-D convolution
per channel pair. Works on a state dict (numpy arrays) and the network's constructor kwargs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import convolve2d, correlate2d

SQRT2 = math.sqrt(2)


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def fir(taps):
    f = np.asarray(taps, np.float64)
    f = np.outer(f, f) if f.ndim == 1 else f
    return f / f.sum()


def pad(x, x0, x1, y0, y1):
    """Zero-pad (or crop, for negatives) the last two axes of [C, H, W]."""
    x = np.pad(x, [(0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))])
    h, w = x.shape[1:]
    return x[:, max(-y0, 0): h - max(-y1, 0), max(-x0, 0): w - max(-x1, 0)]


def filt(x, f, gain=1.0):
    """True 2-D convolution of every channel with the filter, 'valid' region."""
    return np.stack([convolve2d(ch, f * gain, mode="valid") for ch in x])


def zero_insert(x, factor=2):
    c, h, w = x.shape
    y = np.zeros([c, (h - 1) * factor + 1, (w - 1) * factor + 1])
    y[:, ::factor, ::factor] = x
    return y


def upsample(x, f):
    """×2 upsampling of [C, H, W]: zero insertion then the filter (gain 4 keeps the mean)."""
    y = np.pad(zero_insert(x), [(0, 0), (0, 1), (0, 1)])
    k = f.shape[0]
    return filt(pad(y, (k + 1) // 2, (k - 2) // 2, (k + 1) // 2, (k - 2) // 2), f, 4.0)


def downsample(x, f):
    k = f.shape[0]
    return filt(pad(x, (k - 1) // 2, (k - 2) // 2, (k - 1) // 2, (k - 2) // 2), f)[:, ::2, ::2]


def correlate_same(x, w):
    """[I, H, W] correlated with [O, I, k, k], zero padding k//2 → [O, H, W]."""
    p = w.shape[-1] // 2
    xp = np.pad(x, [(0, 0), (p, p), (p, p)])
    return np.stack([sum(correlate2d(xp[i], w[o, i], mode="valid") for i in range(x.shape[0]))
                     for o in range(w.shape[0])])


def conv_up(x, w, f):
    """Upsampling 3×3 convolution: the kernel is scattered at stride 2 (a true convolution of the
    zero-inserted input), then the result is low-pass filtered back onto the 2× grid."""
    y = zero_insert(x)
    y = np.stack([sum(convolve2d(y[i], w[o, i], mode="full") for i in range(x.shape[0]))
                  for o in range(w.shape[0])])
    k, fk = w.shape[-1], f.shape[0]
    # Padding that centres the filtered result on the 2x grid (for k=3, fk=4: one sample each side).
    left, right = k // 2 + (fk + 1) // 2 - (k - 1), k // 2 + (fk - 2) // 2 - (k - 2)
    return filt(pad(y, left, right, left, right), f, 4.0)


def conv_down(x, w, f):
    """Downsampling 3×3 convolution: low-pass filter with padding 2, then correlate at stride 2."""
    y = filt(pad(x, 2, 2, 2, 2), f)
    return np.stack([sum(correlate2d(y[i], w[o, i], mode="valid") for i in range(x.shape[0]))
                     for o in range(w.shape[0])])[:, ::2, ::2]


def fc(sd, name, x, act="linear", lr=1.0):
    w = sd[name + ".weight"] * lr / math.sqrt(sd[name + ".weight"].shape[1])
    y = x @ w.T + sd[name + ".bias"] * lr
    return lrelu(y) * SQRT2 if act == "lrelu" else y


def norm2(x):
    return x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + 1e-8)


def mapping(sd, prefix, z, c, num_layers, lr=0.01, psi=1.0, cutoff=None, num_ws=None):
    parts = []
    if z is not None:
        parts.append(norm2(z))
    if c is not None:
        parts.append(norm2(fc(sd, prefix + "embed", c)))
    x = np.concatenate(parts, axis=1)
    for i in range(num_layers):
        x = fc(sd, f"{prefix}fc{i}", x, "lrelu", lr)
    if num_ws is None:
        return x
    ws = np.repeat(x[:, None], num_ws, axis=1)
    if psi != 1:
        avg = sd[prefix + "w_avg"]
        n = num_ws if cutoff is None else cutoff
        ws[:, :n] = avg + (ws[:, :n] - avg) * psi
    return ws


def modconv(sd, name, x, w, noise_mode, up=False, f=None, demod=True, gain=1.0, clamp=None, act=True):
    weight = sd[name + ".weight"]
    s = fc(sd, name + ".affine", w[None])[0]
    if not demod:  # ToRGB: equalised-lr gain on the styles
        s = s / math.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3])
    wm = weight * s[None, :, None, None]
    if demod:
        wm = wm / np.sqrt((wm**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
    y = conv_up(x, wm, f) if up else correlate_same(x, wm)
    if noise_mode == "const" and name + ".noise_const" in sd:
        y = y + sd[name + ".noise_const"] * sd[name + ".noise_strength"]
    y = y + sd[name + ".bias"][:, None, None]
    if act:
        y = lrelu(y) * SQRT2 * gain
    if clamp is not None:
        y = np.clip(y, -clamp * gain, clamp * gain)
    return y


def synthesis(sd, kw, ws, noise_mode="const"):
    """ws [N, num_ws, w_dim] → images [N, C, R, R], for one generator's kwargs."""
    sk = kw["synthesis_kwargs"]
    arch = sk.get("architecture", "skip")
    clamp = sk.get("conv_clamp")
    f = fir(sk.get("resample_filter", [1, 3, 3, 1]))
    res_list = [2**i for i in range(2, int(math.log2(kw["img_resolution"])) + 1)]
    out = []
    for n in range(ws.shape[0]):
        x = img = None
        idx = 0
        for res in res_list:
            p = f"synthesis.b{res}."
            last = res == res_list[-1]
            if res == 4:
                x = modconv(sd, p + "conv1", sd[p + "const"], ws[n, 0], noise_mode, clamp=clamp)
                idx = 1
            else:
                y = None
                if arch == "resnet":
                    k = sd[p + "skip.weight"]
                    y = np.einsum("oi,ihw->ohw", k[:, :, 0, 0] / math.sqrt(k.shape[1]), x)
                    y = upsample(y, f) * math.sqrt(0.5)
                g = math.sqrt(0.5) if arch == "resnet" else 1.0
                x = modconv(sd, p + "conv0", x, ws[n, idx], noise_mode, up=True, f=f, clamp=clamp)
                x = modconv(sd, p + "conv1", x, ws[n, idx + 1], noise_mode, gain=g, clamp=clamp)
                if y is not None:
                    x = x + y
                idx += 2
            if img is not None:
                img = upsample(img, f)
            if arch == "skip" or last:
                rgb = modconv(sd, p + "torgb", x, ws[n, idx], "none", demod=False, act=False, clamp=clamp)
                img = rgb if img is None else img + rgb
        out.append(img)
    return np.stack(out)


def conv_layer(sd, name, x, down=False, f=None, act=True, gain=1.0, clamp=None):
    w = sd[name + ".weight"]
    w = w / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3])
    if w.shape[-1] == 1:
        if down:
            x = downsample(x, f)
        y = np.einsum("oi,ihw->ohw", w[:, :, 0, 0], x)
    elif down:
        y = conv_down(x, w, f)
    else:
        y = correlate_same(x, w)
    if name + ".bias" in sd:
        y = y + sd[name + ".bias"][:, None, None]
    y = (lrelu(y) * SQRT2 if act else y) * gain
    if clamp is not None:
        y = np.clip(y, -clamp * gain, clamp * gain)
    return y


def discriminator(sd, kw, img, c):
    """img [N, C, R, R], c [N, c_dim] → logits [N, 1], for one discriminator's kwargs."""
    arch = kw.get("architecture", "resnet")
    clamp = kw.get("conv_clamp")
    f = fir(kw.get("block_kwargs", {}).get("resample_filter", [1, 3, 3, 1]))
    ek = kw.get("epilogue_kwargs", {})
    group, nch = ek.get("mbstd_group_size", 4), ek.get("mbstd_num_channels", 1)
    res_list = [2**i for i in range(int(math.log2(kw["img_resolution"])), 2, -1)]
    feats = []
    for n in range(img.shape[0]):
        x, im = None, img[n]
        for res in res_list:
            p = f"b{res}."
            if res == res_list[0] or arch == "skip":
                y = conv_layer(sd, p + "fromrgb", im, clamp=clamp)
                x = y if x is None else x + y
                im = downsample(im, f) if arch == "skip" else None
            if arch == "resnet":
                y = conv_layer(sd, p + "skip", x, down=True, f=f, act=False, gain=math.sqrt(0.5))
                x = y + conv_layer(sd, p + "conv1", conv_layer(sd, p + "conv0", x, clamp=clamp),
                                   down=True, f=f, gain=math.sqrt(0.5), clamp=clamp)
            else:
                x = conv_layer(sd, p + "conv1", conv_layer(sd, p + "conv0", x, clamp=clamp), down=True, f=f, clamp=clamp)
        if arch == "skip":
            x = x + conv_layer(sd, "b4.fromrgb", im)
        feats.append(x)
    x = np.stack(feats)
    if nch > 0:  # minibatch std with strided groups
        N, C, H, W = x.shape
        g = min(group, N) if group is not None else N
        std = np.zeros([N, nch])
        for j in range(N // g):
            members = x[j :: N // g].reshape(g, nch, C // nch, H, W)
            s = np.sqrt(members.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
            std[j :: N // g] = s
        x = np.concatenate([x, np.broadcast_to(std[:, :, None, None], (N, nch, H, W))], axis=1)
    x = np.stack([conv_layer(sd, "b4.conv", xi, clamp=clamp) for xi in x])
    x = fc(sd, "b4.fc", x.reshape(x.shape[0], -1), "lrelu")
    x = fc(sd, "b4.out", x)
    if kw["c_dim"] > 0:
        cmap = mapping(sd, "mapping.", None, c, kw.get("mapping_kwargs", {}).get("num_layers", 8))
        x = (x * cmap).sum(axis=1, keepdims=True) / math.sqrt(cmap.shape[1])
    return x
