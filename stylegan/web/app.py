"""The explorer's routes (Starlette). The README's "Explorer API" table documents them for scripts.

Renders run in Starlette's thread pool (plain ``def`` endpoints), so the event loop stays free for other
pages and for projection progress. Every StyleGANError becomes HTTP 400 with its one line; anything else
becomes a one-line 500, and the server carries on.
"""

from __future__ import annotations

import json
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from stylegan.errors import StyleGANError
from stylegan.web.params import parse_id, parse_int, parse_render_request
from stylegan.web.projections import Projections
from stylegan.web.session import MAX_UPLOAD_BYTES, W_FILE, Explorer, check_upload_size

NO_STORE = {"Cache-Control": "no-store"}


def page_html() -> bytes:
    """The one static page, shipped in the package."""
    return resources.files("stylegan.web").joinpath("static/index.html").read_bytes()


async def read_upload(request: Request) -> bytes:
    """The request body, refused as soon as it passes the upload limit (never held beyond it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_upload_size(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_upload_size(size)
        chunks.append(chunk)
    if size == 0:
        raise StyleGANError("the upload is empty", "send the file's bytes as the request body")
    return b"".join(chunks)


def upload_name(request: Request, default: str) -> str:
    """A label for an upload from its ``name`` parameter (letters, digits, - and _ only)."""
    raw = request.query_params.get("name", default)
    stem = "".join(ch for ch in raw.rsplit(".", 1)[0] if ch.isalnum() or ch in "-_")[:40]
    return stem or default


def create_app(explorer: Explorer, projections: Projections) -> Starlette:
    """The Starlette application serving ``explorer``."""

    def query(request: Request) -> dict[str, str]:
        params = request.query_params
        repeated = [key for key in params.keys() if len(params.getlist(key)) > 1]
        if repeated:
            raise StyleGANError(f"parameter {repeated[0][:40]!r} was given twice", "give each parameter once")
        return dict(params)

    async def index(request: Request) -> Response:
        return Response(page_html(), media_type="text/html; charset=utf-8", headers=NO_STORE)

    async def networks(request: Request) -> Response:
        return JSONResponse({"networks": [{"net": i, "label": s.label} for i, s in enumerate(explorer.slots)]})

    def network(request: Request) -> Response:
        net = parse_int("net", query(request).get("net", "0"), 1000)
        return JSONResponse(explorer.network_info(net))

    def render(request: Request) -> Response:
        req = parse_render_request(query(request))
        if explorer.is_stale(req):
            return Response(status_code=204, headers=NO_STORE)  # a newer frame was asked for: drop this one
        return Response(explorer.render_png(req), media_type="image/png", headers=NO_STORE)

    def ws_file(request: Request) -> Response:
        req = parse_render_request(query(request))
        return Response(explorer.ws_npz(req), media_type="application/octet-stream",
                        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{W_FILE}"'})

    def command(request: Request) -> Response:
        req = parse_render_request(query(request))
        return JSONResponse({"command": explorer.command(req)})

    async def upload_w(request: Request) -> Response:
        data = await read_upload(request)
        w_id = await run_in_threadpool(explorer.store_npz, data, upload_name(request, "uploaded"))
        return JSONResponse({"w": w_id})

    async def start_projection(request: Request) -> Response:
        params = query(request)
        unknown = [k for k in params if k not in ("net", "steps", "class", "name")]
        if unknown:
            raise StyleGANError(f"unknown parameter {unknown[0][:40]!r}", "use only: net, steps, class, name")
        net = parse_int("net", params.get("net", "0"), 1000)
        steps = parse_int("steps", params.get("steps", "1000"), 10**9)
        class_idx = parse_int("class", params["class"], 1_000_000) if "class" in params else None
        data = await read_upload(request)
        job = await run_in_threadpool(projections.start, net, data, steps, class_idx, upload_name(request, "projected"))
        return JSONResponse(job.status())

    def job_of(request: Request):
        return projections.job(parse_id("job", request.path_params["job"]))

    async def projection_status(request: Request) -> Response:
        return JSONResponse(job_of(request).status(), headers=NO_STORE)

    async def cancel_projection(request: Request) -> Response:
        job = job_of(request)
        job.cancel.set()
        return JSONResponse(job.status())

    async def projection_events(request: Request) -> Response:
        """Server-sent events: the job's status after every step, until it ends."""
        job = job_of(request)

        async def events():
            seen = None
            while True:
                status = job.status()
                key = (status["step"], status["state"])
                if key != seen:
                    seen = key
                    yield f"data: {json.dumps(status)}\n\n"
                if status["state"] != "running" or await request.is_disconnected():
                    return
                await run_in_threadpool(job.wait_change, key, 1.0)

        return StreamingResponse(events(), media_type="text/event-stream", headers=NO_STORE)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(" ".join(str(exc).split())[:300], status_code=400)

    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"internal error: {type(exc).__name__}", status_code=500)

    routes = [
        Route("/", index),
        Route("/api/networks", networks),
        Route("/api/network", network),
        Route("/api/render", render),
        Route("/api/w.npz", ws_file),
        Route("/api/command", command),
        Route("/api/w", upload_w, methods=["POST"]),
        Route("/api/project", start_projection, methods=["POST"]),
        Route("/api/project/{job}", projection_status),
        Route("/api/project/{job}/events", projection_events),
        Route("/api/project/{job}/cancel", cancel_projection, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={StyleGANError: bad_request, Exception: server_error})


__all__ = ["create_app", "MAX_UPLOAD_BYTES"]
