"""The signal-processing design of alias-free (StyleGAN3) synthesis: per-layer frequencies and filters.

Karras et al. 2021, "Alias-Free Generative Adversarial Networks", section 3 and appendix F. Every layer
carries a band-limited signal: its cutoff ``f_c`` and minimum stopband ``f_t`` grow geometrically from
the first layer to the last few ("critically sampled") ones, which sit at the output resolution. From
them follow each layer's sampling rate, transition band, size (with a margin around the image) and
channel count, and the Kaiser-windowed low-pass filters of its up- and down-sampling.

Everything here is plain numbers (numpy float64, as the official design computes it); the networks in
``stylegan3`` turn the results into modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer's signal geometry (the input side is the previous layer's output side)."""

    index: int
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int  # square side, margin included
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float

    @property
    def name(self) -> str:
        """The module name the official networks (and so the files) use: ``L{index}_{size}_{channels}``."""
        return f"L{self.index}_{self.out_size}_{self.out_channels}"


@dataclass(frozen=True)
class SynthesisPlan:
    """The Fourier input's geometry and every layer's, for one synthesis network."""

    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    layers: tuple[LayerSpec, ...]


def synthesis_plan(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                   num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                   margin_size: int, num_fp16_res: int) -> SynthesisPlan:
    """Per-layer cutoffs, stopbands, sampling rates, transition half-widths, sizes and channel counts.

    Layer i of ``num_layers + 1`` (the last is ToRGB) has exponent ``e = min(i / (num_layers −
    num_critical), 1)``; cutoff and stopband interpolate geometrically between the first layer's and the
    last one's (``img_resolution / 2`` and that times ``last_stopband_rel``). The sampling rate is the
    power of two at or above twice the stopband (at most the image resolution); the half-width reaches
    from the cutoff to the stopband or Nyquist, whichever is higher.
    """
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"num_critical must be in [0, num_layers), got {num_critical} with num_layers={num_layers}")
    fc_end = img_resolution / 2
    ft_end = last_stopband_rel * fc_end
    progress = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)  # 0 → 1, then flat
    cutoffs = first_cutoff * np.power(fc_end / first_cutoff, progress)
    stopbands = first_stopband * np.power(ft_end / first_stopband, progress)
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution  # the critically sampled layers have no margin
    channels = np.rint(np.minimum(0.5 * channel_base / cutoffs, channel_max))
    channels[-1] = img_channels
    layers = []
    for i in range(num_layers + 1):
        p = max(i - 1, 0)  # the first layer reads the Fourier input, which has layer 0's geometry
        layers.append(LayerSpec(
            index=i, is_torgb=i == num_layers, is_critically_sampled=i >= num_layers - num_critical,
            use_fp16=bool(rates[i] * 2**num_fp16_res > img_resolution),
            in_channels=int(channels[p]), out_channels=int(channels[i]), in_size=int(sizes[p]), out_size=int(sizes[i]),
            in_sampling_rate=int(rates[p]), out_sampling_rate=int(rates[i]),
            in_cutoff=float(cutoffs[p]), out_cutoff=float(cutoffs[i]),
            in_half_width=float(half_widths[p]), out_half_width=float(half_widths[i])))
    return SynthesisPlan(input_channels=int(channels[0]), input_size=int(sizes[0]),
                         input_sampling_rate=float(rates[0]), input_bandwidth=float(cutoffs[0]), layers=tuple(layers))


def kaiser_beta_for(numtaps: int, width: float, fs: float) -> float:
    """The Kaiser window's β for a transition band ``width`` (Hz) at sampling rate ``fs`` (Kaiser's formulas).

    The attenuation the window can reach is ``A = 2.285 (numtaps − 1) π Δ + 7.95`` with Δ the width
    relative to Nyquist; β follows from A piecewise.
    """
    import scipy.signal

    return float(scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2))))


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass FIR filter, float32; None for a single tap (identity).

    Separable (``radial`` False): the ``numtaps`` 1-D taps of a windowed sinc, cutoff and transition
    ``width`` in Hz at rate ``fs``, unit DC gain (``scipy.signal.firwin``). Radial: a ``numtaps²`` kernel,
    the jinc ``J1(2π f_c r) / (π r)`` times the outer product of the same Kaiser window, summing to 1.
    """
    if numtaps < 1:
        raise ValueError(f"a low-pass filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special

    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    positions = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.hypot(*np.meshgrid(positions, positions))
    with np.errstate(invalid="ignore", divide="ignore"):
        jinc = scipy.special.j1(2 * np.pi * cutoff * radius) / (np.pi * radius)
    jinc[radius == 0] = cutoff  # the limit of J1(2π f r) / (π r) at r = 0 (only for an odd tap count)
    window = np.kaiser(numtaps, kaiser_beta_for(numtaps, width, fs))
    kernel = jinc * np.outer(window, window)
    return torch.as_tensor(kernel / kernel.sum(), dtype=torch.float32)


def layer_padding(in_size: int, out_size: int, conv_kernel: int, up: int, down: int, up_taps: int,
                  down_taps: int) -> list[int]:
    """``[x0, x1, y0, y1]`` padding of the up-sampled signal so that ``out_size`` samples come out.

    The total is what the output needs before down-sampling, less the up-sampled (full-convolution)
    input, plus what the two filters consume; it is split so that samples sit at pixel centres
    (the symmetric interpretation of the paper's appendix C.3).
    """
    total = (out_size - 1) * down + 1 - (in_size + conv_kernel - 1) * up + up_taps + down_taps - 2
    low = (total + up) // 2
    return [low, total - low, low, total - low]


__all__ = ["LayerSpec", "SynthesisPlan", "synthesis_plan", "lowpass_filter", "kaiser_beta_for", "layer_padding"]
