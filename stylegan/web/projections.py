"""Projections in the background: an uploaded image → a w, with progress to poll or stream, and cancel.

Each job runs the projector (:func:`stylegan.explore.projector.project`) in a thread of its own on a copy
of the network, so renders and other pages carry on meanwhile. The image is decoded and checked when the
job is created (a bad upload fails the request itself); the finished w is stored in the explorer and
becomes the page's latent.
"""

from __future__ import annotations

import copy
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stylegan.data.images import decode_error_text, open_image
from stylegan.errors import StyleGANError
from stylegan.explore.labels import check_class
from stylegan.explore.projector import ProjectorConfig, check_projectable, project
from stylegan.explore.targets import prepare_target
from stylegan.precision import inference_precision
from stylegan.web.session import Explorer, check_upload_size

MAX_STEPS = 10_000
MAX_RUNNING = 2  # projections at once: each takes a core or a GPU's attention for minutes


class Cancelled(Exception):
    """Raised inside the projector's step callback to stop a cancelled job."""


@dataclass
class ProjectionJob:
    """One projection's progress: ``state`` is running, done, cancelled or failed."""

    job_id: str
    net: int
    steps: int
    step: int = 0
    dist: float | None = None
    state: str = "running"
    error: str | None = None
    w_id: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def status(self) -> dict:
        return {"job": self.job_id, "net": self.net, "state": self.state, "step": self.step, "steps": self.steps,
                "dist": self.dist, "error": self.error, "w": self.w_id}

    def update(self, **values) -> None:
        with self.changed:
            for key, value in values.items():
                setattr(self, key, value)
            self.changed.notify_all()

    def wait_change(self, seen: tuple, timeout: float) -> None:
        """Block until the (step, state) pair differs from ``seen`` or ``timeout`` seconds pass."""
        with self.changed:
            self.changed.wait_for(lambda: (self.step, self.state) != seen, timeout=timeout)


def decode_upload(data: bytes, resolution: int, channels: int) -> np.ndarray:
    """Uploaded bytes → uint8 ``[resolution, resolution, channels]`` target; StyleGANError unless an image."""
    check_upload_size(len(data))
    try:
        image = open_image(data)
    except Exception as e:  # noqa: BLE001 - whatever the decoder says, the upload is not a usable image
        raise StyleGANError(f"the upload is not a readable image ({decode_error_text(e)})",
                            "upload a PNG or JPEG image") from None
    return prepare_target(image, resolution, channels)


class Projections:
    """The explorer's projection jobs, and the detector they share."""

    def __init__(self, explorer: Explorer, detector_dir: str | Path | None = None):
        self.explorer = explorer
        self.detector_dir = detector_dir
        self.jobs: dict[str, ProjectionJob] = {}
        self._lock = threading.Lock()

    def start(self, net: int, data: bytes, steps: int, class_idx: int | None, name: str = "projected") -> ProjectionJob:
        """Check the request, then project in a background thread; returns the running job."""
        if not 1 <= steps <= MAX_STEPS:
            raise StyleGANError(f"{steps} projection steps", f"give 1 to {MAX_STEPS} steps")
        slot = self.explorer.slot(net)
        G = slot.G
        check_projectable(G)
        check_class(G, class_idx)
        target = decode_upload(data, G.img_resolution, G.img_channels)
        with self._lock:
            running = sum(job.state == "running" for job in self.jobs.values())
            if running >= MAX_RUNNING:
                raise StyleGANError(f"{running} projections are running already", "wait for one or cancel it")
            job = ProjectionJob(secrets.token_urlsafe(9), net, steps)
            self.jobs[job.job_id] = job
        with slot.lock:
            G_copy = copy.deepcopy(G)  # renders may change the shared network's transform meanwhile
        thread = threading.Thread(target=self._run, args=(job, G_copy, target, class_idx, name), daemon=True,
                                  name=f"projection-{job.job_id}")
        thread.start()
        return job

    def job(self, job_id: str) -> ProjectionJob:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise StyleGANError(f"no projection {job_id[:40]!r}", "start one with POST /api/project")
        return job

    def _detector(self) -> torch.jit.ScriptModule:
        from stylegan.metrics.detectors import load_detector  # only projections need the metrics code

        return load_detector("vgg16", detector_dir=self.detector_dir, device=self.explorer.device, progress=False)

    def _run(self, job: ProjectionJob, G: torch.nn.Module, target: np.ndarray, class_idx: int | None,
             name: str) -> None:
        def on_step(step: int, dist: float, _loss: float) -> None:
            job.update(step=step + 1, dist=dist)
            if job.cancel.is_set():
                raise Cancelled

        try:
            detector = self._detector()
            image = torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1)))
            with inference_precision(self.explorer.precision):  # a worker thread: enter it here
                result = project(G, image, detector, config=ProjectorConfig(num_steps=job.steps),
                                 class_idx=class_idx, progress=False, on_step=on_step)
            w_id = self.explorer.store_ws(result.final_ws, name)
            job.update(w_id=w_id, state="done")
        except Cancelled:
            job.update(state="cancelled")
        except StyleGANError as e:
            job.update(state="failed", error=str(e))
        except Exception as e:  # noqa: BLE001 - a failed job reports its error; the server carries on
            job.update(state="failed", error=f"{type(e).__name__}: {str(e)[:200]}")
