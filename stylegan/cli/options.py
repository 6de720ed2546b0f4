"""Options and helpers shared by the commands: network, device, outdir, quiet, index lists."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import torch
from torch import nn

import stylegan
from stylegan.errors import StyleGANError
from stylegan.explore.seeds import parse_index_list, parse_seeds

DEVICE_FORM = "auto, cpu, cuda, cuda:N or mps"


class IndexListType(click.ParamType):
    """A click type for ``1,2,5-100,999`` lists; bad input raises StyleGANError naming the option."""

    name = "LIST"

    def __init__(self, seeds: bool = False):
        self.seeds = seeds

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            return parse_seeds(value) if self.seeds else parse_index_list(value)
        except StyleGANError as e:
            option = param.opts[0] if param is not None and param.opts else "list"
            raise StyleGANError(f"{option}: {e.what}", e.fix) from None


def mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(text: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` → an available torch.device."""
    text = text.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not mps_available():
            raise StyleGANError("--device mps: Apple MPS is not available here", "use --device auto or cpu")
        return torch.device("mps")
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if m is None:
        raise StyleGANError(f"unknown device {text!r}", f"use {DEVICE_FORM}")
    if not torch.cuda.is_available():
        raise StyleGANError(f"--device {text}: CUDA is not available here", "use --device auto or cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise StyleGANError(f"--device {text}: there are only {torch.cuda.device_count()} CUDA devices",
                            f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(text)


class DeviceType(click.ParamType):
    name = "DEVICE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> torch.device:
        return value if isinstance(value, torch.device) else resolve_device(value)


def network_option(f: Callable) -> Callable:
    return click.option("--network", default="default", show_default=True, metavar="PATH|URL|NAME",
                        help="Network file (.pkl or .safetensors), URL, or built-in name.")(f)


def device_option(f: Callable) -> Callable:
    return click.option("--device", type=DeviceType(), default="auto", show_default=True,
                        help=f"Where to run: {DEVICE_FORM}.")(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", is_flag=True, help="Do not show progress bars.")(f)


def outdir_option(f: Callable) -> Callable:
    return click.option("--outdir", default="out", show_default=True, metavar="DIR",
                        type=click.Path(path_type=Path),
                        help="Where to write images (created if missing).")(f)


def batch_option(f: Callable) -> Callable:
    return click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True,
                        help="Images rendered per forward pass.")(f)


def noise_mode_option(f: Callable) -> Callable:
    return click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const",
                        show_default=True, help="Per-pixel noise: stored constant, fresh random, or none.")(f)


@contextlib.contextmanager
def prepared_outdir(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` if missing and prove it writable before any work is done.

    If the body fails, the directories created here are removed again when still empty, so a failed
    command leaves nothing behind.
    """
    path = Path(path)
    created = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # creating a file is the only reliable test (root ignores modes)
            pass
    except OSError as e:
        _remove_empty(created)
        reason = "it is a file" if path.is_file() else e.strerror or str(e)
        raise StyleGANError(f"cannot write to output directory {path}: {reason}",
                            "choose a writable --outdir") from None
    try:
        yield path
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first
        try:
            d.rmdir()
        except OSError:
            return


def load_generator(network: str, device: torch.device) -> nn.Module:
    """``load_network(network)['G_ema']`` on ``device``."""
    return stylegan.load_network(network)["G_ema"].to(device)
