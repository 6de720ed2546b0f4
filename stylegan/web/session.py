"""The explorer's state: the networks named on the command line, stored ws, and how a request becomes a frame.

Networks load on first use and stay loaded. Each has a lock: a render may set a StyleGAN3 input transform or
hang forward hooks on the network, so one render runs at a time per network, and a projection copies the
network under the same lock. Stored ws (uploaded ``.npz`` files, finished projections) live in memory under
random ids; requests name them by id, never by path.
"""

from __future__ import annotations

import io
import secrets
import shlex
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import stylegan
from stylegan.data.images import encode_png
from stylegan.errors import StyleGANError
from stylegan.explore.images import to_uint8
from stylegan.explore.labels import check_class
from stylegan.explore.layers import LayerInfo, activation_image, activation_layers, layer_activation
from stylegan.explore.seed_blend import blended_seed_ws
from stylegan.explore.style_mix import format_indices, style_groups
from stylegan.explore.ws_files import check_ws_shape, read_projected_w
from stylegan.networks.stylegan3 import set_input_transform
from stylegan.precision import inference_precision
from stylegan.web.params import Latent, RenderRequest, is_whole

MAX_STORED_WS = 256  # uploaded and projected ws kept in memory; the oldest goes first
MAX_CLIENTS = 1024  # pages whose newest render number is remembered
MAX_UPLOAD_BYTES = 20 * 2**20  # an upload (image or .npz) larger than this is refused unread


@dataclass
class NetworkSlot:
    """One ``--network`` value: what the user typed, and the generator once loaded."""

    spec: str
    G: nn.Module | None = None
    layers: list[LayerInfo] = field(default_factory=list)
    stored_transform: torch.Tensor | None = None  # a StyleGAN3 network's own input transform
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return "built-in network" if self.spec == "default" else Path(self.spec).name or self.spec


@dataclass
class StoredW:
    ws: torch.Tensor  # [1, num_ws, w_dim] float32 on the CPU
    label: str


def input_transform(G: nn.Module) -> torch.Tensor | None:
    """A StyleGAN3 network's input transform buffer, or None for networks without one."""
    transform = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    return transform if isinstance(transform, torch.Tensor) else None


class Explorer:
    """Everything the server knows. Methods raise StyleGANError for requests that cannot be served."""

    def __init__(self, networks: list[str], device: torch.device | str = "cpu", precision: str = "fp32"):
        if not networks:
            raise StyleGANError("no network to explore", "give --network, or leave it out for the built-in one")
        self.slots = [NetworkSlot(spec) for spec in networks]
        self.device = torch.device(device)
        self.precision = precision  # 'fp32' or 'bf16', already resolved for the device (stylegan.precision)
        self.stored: OrderedDict[str, StoredW] = OrderedDict()
        self.newest_seq: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()  # guards stored and newest_seq
        self.workdir = tempfile.TemporaryDirectory(prefix="stylegan-explore-")

    # ---- networks -------------------------------------------------------------------------------------

    def slot(self, net: int) -> NetworkSlot:
        """The loaded network ``net`` (an index into the command line's --network values)."""
        if not 0 <= net < len(self.slots):
            raise StyleGANError(f"there is no network {net}", f"networks are 0 to {len(self.slots) - 1}")
        slot = self.slots[net]
        with slot.lock:
            if slot.G is None:
                G = stylegan.load_network(slot.spec)["G_ema"].to(self.device)
                transform = input_transform(G)
                slot.stored_transform = None if transform is None else transform.detach().clone()
                with torch.no_grad():
                    probe = G.mapping.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1).to(self.device)
                slot.layers = activation_layers(G, probe)
                slot.G = G
        return slot

    def network_info(self, net: int) -> dict:
        """What the page needs to draw its controls for network ``net``."""
        slot = self.slot(net)
        G = slot.G
        return {
            "net": net, "label": slot.label, "z_dim": G.z_dim, "c_dim": G.c_dim, "w_dim": G.w_dim,
            "num_ws": G.num_ws, "img_resolution": G.img_resolution, "img_channels": G.img_channels,
            "stylegan3": slot.stored_transform is not None,
            "groups": style_groups(G.num_ws),
            "layers": [vars(layer) for layer in slot.layers],
        }

    # ---- stored ws ------------------------------------------------------------------------------------

    def store_ws(self, ws: torch.Tensor, label: str) -> str:
        """Keep ws ``[1, num_ws, w_dim]`` under a new random id; returns the id."""
        w_id = secrets.token_urlsafe(9)
        with self._lock:
            self.stored[w_id] = StoredW(ws.detach().to("cpu", torch.float32).clone(), label)
            while len(self.stored) > MAX_STORED_WS:
                self.stored.popitem(last=False)
        return w_id

    def store_npz(self, data: bytes, name: str = "uploaded") -> str:
        """Read an uploaded projected-w ``.npz`` (its first w) and store it; returns its id."""
        check_upload_size(len(data))
        with tempfile.NamedTemporaryFile(suffix=".npz", dir=self.workdir.name) as tmp:
            tmp.write(data)
            tmp.flush()
            ws = torch.from_numpy(np.array(read_projected_w(tmp.name), dtype=np.float32))
        ws = ws[None] if ws.ndim == 2 else ws[:1]
        return self.store_ws(ws, name)

    def stored_ws(self, w_id: str) -> StoredW:
        with self._lock:
            found = self.stored.get(w_id)
        if found is None:
            raise StyleGANError(f"no stored w with id {w_id!r}", "upload the .npz again or re-run the projection")
        return found

    # ---- rendering ------------------------------------------------------------------------------------

    def is_stale(self, request: RenderRequest) -> bool:
        """True when the same page already asked for a newer frame (so this one need not be drawn).

        Pages number their requests; the newest number seen per page wins, older ones are dropped unanswered.
        """
        if request.client is None or request.seq is None:
            return False
        with self._lock:
            newest = self.newest_seq.get(request.client, -1)
            if request.seq < newest:
                return True
            self.newest_seq[request.client] = request.seq
            self.newest_seq.move_to_end(request.client)
            while len(self.newest_seq) > MAX_CLIENTS:
                self.newest_seq.popitem(last=False)
        return False

    def _latent_ws(self, G: nn.Module, latent: Latent, request: RenderRequest) -> torch.Tensor:
        if latent.w_id is not None:
            return check_ws_shape(self.stored_ws(latent.w_id).ws, G).to(self.device)
        return blended_seed_ws(G, latent.seed, truncation_psi=request.psi, truncation_cutoff=request.cutoff,
                               class_idx=request.class_idx)

    def _ws(self, G: nn.Module, request: RenderRequest) -> torch.Tensor:
        """The request's ws ``[1, num_ws, w_dim]``: its latent, with the mixed layers taken from the second one."""
        if any(latent is not None and latent.w_id is None for latent in (request.latent, request.mix)):
            check_class(G, request.class_idx)  # seeds are mapped with the class
        ws = self._latent_ws(G, request.latent, request)
        if request.mix is not None:
            layers = request.mix_layers.resolve(G.num_ws)
            ws = ws.clone()
            ws[:, layers] = self._latent_ws(G, request.mix, request)[:, layers]
        return ws

    def _set_transform(self, slot: NetworkSlot, request: RenderRequest) -> None:
        if request.translate is None and request.rotate is None:
            if slot.stored_transform is not None:
                with torch.no_grad():
                    input_transform(slot.G).copy_(slot.stored_transform)
            return
        set_input_transform(slot.G, request.translate or (0.0, 0.0), request.rotate or 0.0)

    def _checked_ws(self, slot: NetworkSlot, request: RenderRequest) -> torch.Tensor:
        """The request's ws, after every check a render makes (call with ``slot.lock`` held)."""
        ws = self._ws(slot.G, request)
        self._set_transform(slot, request)
        if request.layer is not None:
            layer = next((info for info in slot.layers if info.name == request.layer), None)
            if layer is None:
                raise StyleGANError(f"the network has no layer {request.layer[:80]!r}",
                                    "pick a layer listed by /api/network")
            if request.channel is not None and request.channel >= layer.channels:
                raise StyleGANError(f"channel {request.channel} is out of range for a layer of {layer.channels} "
                                    "channels", f"pick a channel between 0 and {layer.channels - 1}")
        return ws

    def frame(self, request: RenderRequest) -> tuple[np.ndarray, torch.Tensor]:
        """The request's image (uint8 ``[H, W, C]``) and its ws ``[1, num_ws, w_dim]`` on the CPU."""
        slot = self.slot(request.net)
        # Each request runs in its own worker thread: the precision is entered here, not inherited.
        with slot.lock, torch.no_grad(), inference_precision(self.precision):
            G = slot.G
            ws = self._checked_ws(slot, request)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(request.noise_seed)  # 'random' noise repeats for the same noise seed
                if request.layer is not None:
                    fmap = layer_activation(G, ws, request.layer, request.noise)
                    return activation_image(fmap, request.channel), ws.cpu()
                image = G.synthesis(ws, noise_mode=request.noise)
        return to_uint8(image.cpu())[0], ws.cpu()

    def render_png(self, request: RenderRequest) -> bytes:
        """The request's frame as PNG bytes."""
        return encode_png(self.frame(request)[0])

    def ws_npz(self, request: RenderRequest) -> bytes:
        """The request's ws as a projected-w ``.npz`` (key ``w``, float32 ``[1, num_ws, w_dim]``)."""
        slot = self.slot(request.net)
        with slot.lock, torch.no_grad():
            ws = self._checked_ws(slot, request).cpu()
        buf = io.BytesIO()
        np.savez(buf, w=ws.numpy().astype(np.float32))
        return buf.getvalue()

    def command(self, request: RenderRequest) -> str:
        """The ``stylegan`` command line that writes the request's image (see :func:`command_line`)."""
        slot = self.slot(request.net)
        with slot.lock, torch.no_grad():
            self._checked_ws(slot, request)  # no command for a frame that cannot be drawn
        line = command_line(slot.spec, request, slot.G.num_ws)
        if self.precision != "fp32" and line.startswith("stylegan "):
            line += f" --precision {self.precision}"  # the same arithmetic, so the same pixels
        return line


def check_upload_size(size: int) -> None:
    if size > MAX_UPLOAD_BYTES:
        raise StyleGANError(f"the upload is {size} bytes, over the limit of {MAX_UPLOAD_BYTES}",
                            "upload an image or .npz of at most 20 MB")


W_FILE = "explore_w.npz"  # what the page's "download w" saves


def command_line(network: str, request: RenderRequest, num_ws: int) -> str:
    """``stylegan generate`` (or ``style-mix``) arguments reproducing the request's image exactly.

    Whole seeds map to ``generate --seeds`` / ``style-mix --rows --cols``; anything those cannot say (blended
    seeds, stored ws, a cutoff while mixing, seeded random noise, a layer view) is rendered from the downloaded
    w: ``generate --projected-w explore_w.npz``, whose pixels are the same.
    """
    if request.layer is not None:
        return "# a layer view has no command; leave the layer viewer to get one"
    net = [] if network == "default" else ["--network", network]
    noise = [] if request.noise == "const" else ["--noise-mode", request.noise]
    sg3 = []
    if request.translate is not None:
        sg3 += ["--translate", f"{request.translate[0]:g},{request.translate[1]:g}"]
    if request.rotate is not None:
        sg3 += ["--rotate", f"{request.rotate:g}"]
    psi = [] if request.psi == 1 else ["--trunc", f"{request.psi:g}"]
    cls = [] if request.class_idx is None else ["--class", str(request.class_idx)]
    if request.noise == "random":
        return "# random noise differs on every run; set noise to const or none for an exact command"
    from_seeds = all(l is None or (l.w_id is None and is_whole(l.seed)) for l in (request.latent, request.mix))
    if from_seeds and request.mix is None:
        cutoff = [] if request.cutoff is None else ["--trunc-cutoff", str(request.cutoff)]
        args = ["generate", *net, "--seeds", str(int(request.latent.seed)), *psi, *cutoff, *cls, *noise, *sg3]
    elif from_seeds and request.cutoff is None and not sg3:
        layers = format_indices(request.mix_layers.resolve(num_ws))
        args = ["style-mix", *net, "--rows", str(int(request.latent.seed)), "--cols", str(int(request.mix.seed)),
                "--styles", layers, *psi, *cls, *noise]
    else:
        args = ["generate", *net, "--projected-w", W_FILE, *noise, *sg3]
    return " ".join(shlex.quote(a) for a in ["stylegan", *args])
