"""Options and helpers shared by the commands: network, device, outdir, quiet, threads, grids, index lists."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import torch
from torch import nn

import stylegan
from stylegan.atomic import probe_writable_folder
from stylegan.devices import DEVICE_FORMS, idle_cpu_threads, resolve_device
from stylegan.errors import StyleGANError
from stylegan.explore.images import parse_grid
from stylegan.explore.seeds import parse_index_list, parse_seeds
from stylegan.networks.layers import NOISE_MODES
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.precision import PRECISIONS, inference_precision, resolve_precision


class LibraryParsedType(click.ParamType):
    """A click type whose parsing lives in the library (``parse``), so Python callers get the same checks.

    Values that are already parsed (defaults, callers invoking the command function) pass through; a
    StyleGANError from the parser gets the flag it came from in front, e.g. ``--seeds: descending range``.
    """

    parsed_types: tuple[type, ...] = (list,)
    fallback_flag = "list"

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.parsed_types):
            return value
        flag = option_name(param, self.fallback_flag)
        try:
            return self.parse(value)
        except StyleGANError as e:
            raise StyleGANError(f"{flag}: {e.what}", e.fix) from None


class IndexListType(LibraryParsedType):
    """A click type for ``1,2,5-100,999`` lists (``seeds=True``: seeds, which may reach 2³² − 1)."""

    name = "LIST"

    def __init__(self, seeds: bool = False):
        self.seeds = seeds

    def parse(self, text: str) -> list[int]:
        return parse_seeds(text) if self.seeds else parse_index_list(text)


class GridType(LibraryParsedType):
    """``--grid WxH`` → (columns, rows) (a single N means NxN); ``auto`` (or ``--grid`` alone) stays ``'auto'``."""

    name = "WxH"
    parsed_types = (tuple, list)
    fallback_flag = "--grid"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        return super().convert(value, param, ctx)

    def parse(self, text: str) -> tuple[int, int]:
        return parse_grid(text)


def grid_option(help: str) -> Callable:
    """``--grid WxH``, or ``--grid`` alone for the automatic layout (the value is then ``'auto'``)."""
    return click.option("--grid", type=GridType(), is_flag=False, flag_value="auto", metavar="[WxH]", help=help)


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses an empty value: ``--outdir ''`` would otherwise mean the working directory."""

    @classmethod
    def like(cls, path_type: click.Path) -> "NonEmptyPath":
        """The same path type (file/dir rules, path_type) with empty values refused."""
        new = cls.__new__(cls)
        new.__dict__.update(path_type.__dict__)
        return new

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            flag = option_name(param, "path")
            raise StyleGANError(f"{flag} is empty", f"give {flag} a file or folder name (use . for this folder)")
        return super().convert(value, param, ctx)


def refuse_empty_paths(command: click.Command) -> click.Command:
    """Make every path option of ``command`` refuse an empty value (applied to each command when it loads)."""
    for param in command.params:
        if isinstance(param.type, click.Path) and not isinstance(param.type, NonEmptyPath):
            param.type = NonEmptyPath.like(param.type)
    return command


@contextlib.contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``count`` inside (unchanged for None), the old count after."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threads_option(f: Callable) -> Callable:
    """``--threads N``: the command runs with N torch CPU threads, and the old count is restored after."""

    @functools.wraps(f)
    def run_with_threads(*args: Any, threads: int | None = None, **kwargs: Any) -> Any:
        # Every command that computes passes here: the place to let glibc keep freed memory, so the large
        # activations of each image, frame or step reuse pages instead of faulting in fresh zeroed ones
        # (config-f at 1024²: 1.36 s a pass instead of 1.76 s).
        tune_cpu_allocator()
        with cpu_threads(threads or idle_cpu_threads()):
            return f(*args, **kwargs)

    return click.option("--threads", type=click.IntRange(min=1),
                        help="CPU threads (default: the cores the load average leaves idle, at least 1).")(
        run_with_threads)


def precision_option(f: Callable) -> Callable:
    """``--precision fp32|bf16``: the command's generator runs inside ``inference_precision`` (see
    stylegan.precision); bf16 on a device without native bf16 falls back to fp32 with a note."""

    @functools.wraps(f)
    def run_in_precision(*args: Any, precision: str = "fp32", **kwargs: Any) -> Any:
        device = kwargs.get("device") or torch.device("cpu")
        with inference_precision(resolve_precision(precision, device)):
            return f(*args, **kwargs)

    return click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False), default="fp32",
                        show_default=True,
                        help="Generator arithmetic: fp32 (the official pixels) or bf16 (about 2x faster on "
                             "CPUs with AVX512-BF16/AMX, images within about 1/255 of fp32).")(run_in_precision)


def option_name(param: click.Parameter | None, fallback: str) -> str:
    """The flag a value came from (``--seeds``), for error messages; ``fallback`` outside click."""
    return param.opts[0] if param is not None and param.opts else fallback


class DeviceType(click.ParamType):
    """``--device``: :func:`stylegan.devices.resolve_device`, with its errors worded for the flag."""

    name = "DEVICE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> torch.device:
        if isinstance(value, torch.device):
            return value
        try:
            return resolve_device(value)
        except StyleGANError as e:
            # The shared resolver says "device cuda:0: ..." and "use device cpu"; the user typed --device.
            flag = option_name(param, "--device")
            what = f"{flag} {e.what[len('device '):]}" if e.what.startswith("device ") else f"{flag}: {e.what}"
            raise StyleGANError(what, (e.fix or "").replace("use device ", f"use {flag} ")) from None


def not_empty(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> Any:
    """A click callback refusing an empty string (``--network ''`` would name the working directory)."""
    if isinstance(value, str) and not value.strip():
        flag = option_name(param, "value")
        raise StyleGANError(f"{flag} is empty", f"give {flag} a value (see --help)")
    return value


def network_option(f: Callable) -> Callable:
    return click.option("--network", default="default", show_default=True, metavar="PATH|URL|NAME", callback=not_empty,
                        help="Network file (.pkl or .safetensors), URL, or built-in name.")(f)


def device_option(f: Callable) -> Callable:
    return click.option("--device", type=DeviceType(), default="auto", show_default=True,
                        help=f"Where to run: {DEVICE_FORMS}.")(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", is_flag=True, help="Do not show progress bars.")(f)


def outdir_option(f: Callable) -> Callable:
    return click.option("--outdir", default="out", show_default=True, metavar="DIR",
                        type=NonEmptyPath(path_type=Path),
                        help="Where to write images (created if missing).")(f)


def batch_option(f: Callable) -> Callable:
    return click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True,
                        help="Images rendered per forward pass.")(f)


def noise_mode_option(f: Callable) -> Callable:
    return click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const",
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
        probe_writable_folder(path)
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
