"""``stylegan explore``: the interactive explorer, served as one web page (see stylegan.web)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

import click
import torch

from stylegan.cli.options import device_option, threads_option
from stylegan.errors import StyleGANError
from stylegan.precision import PRECISIONS, resolve_precision

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); StyleGANError when it cannot be had."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        raise StyleGANError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                            "pick another --port (or 0 for any free one), or check --host") from None
    return sock


@click.command("explore")
@click.option("--network", "networks", multiple=True, metavar="PATH|URL|NAME",
              help="Network to explore; repeat to switch between several in the page (default: the built-in one).")
@click.option("--host", default=LOOPBACK, show_default=True,
              help="Address to listen on. Anything but loopback exposes the explorer to your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--detector-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder holding vgg16.pt for projections (default: $STYLEGAN_DETECTOR_DIR, else download).")
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False), default="fp32", show_default=True,
              help="Generator arithmetic: fp32 (the official pixels) or bf16 (faster on CPUs with AVX512-BF16/AMX).")
@device_option
@threads_option
def explore(networks: tuple[str, ...], host: str, port: int, detector_dir: Path | None,
            device: torch.device, precision: str) -> None:
    """Explore networks in the browser: seeds, truncation, noise, style mixing, layers, projection.

    \b
    Examples:
      stylegan explore                       # the built-in network, http://127.0.0.1:7860/
      stylegan explore --network ffhq.pkl --network metfaces.pkl
      ssh -L 7860:localhost:7860 gpu-host    # then open http://localhost:7860/ here
    """
    import uvicorn

    from stylegan.web.app import create_app
    from stylegan.web.projections import Projections
    from stylegan.web.session import Explorer

    if any(not n for n in networks):
        raise StyleGANError("--network is empty", "give a network file, URL or built-in name")
    explorer = Explorer(list(networks) or ["default"], device, resolve_precision(precision, device))
    explorer.slot(0)  # load the first network now: a bad --network fails here, not in the page
    app = create_app(explorer, Projections(explorer, detector_dir))
    sock = bound_socket(host, port)
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the explorer "
                   "(prefer the default 127.0.0.1 with `ssh -L 7860:localhost:7860 host`)", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"stylegan explore: open http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)")
    sys.stdout.flush()  # scripts wait for this line
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        explorer.workdir.cleanup()
