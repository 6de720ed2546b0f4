"""The explorer's HTTP API without a browser: every parameter, every kind of bad value, and the pixels.

References are independent of the server: ``stylegan generate`` / ``style-mix`` run through the command line,
the seed blend re-derived from ``G.mapping`` in float64, the layer view from a hook written here.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import stylegan
from stylegan.explore.seeds import seed_latents
from tests.web.conftest import png_pixels
from stylegan.cli import main


def run_cli(tmp_path, *args) -> dict[str, np.ndarray]:
    out = tmp_path / "cli"
    assert main([*args, "--outdir", str(out)]) == 0
    return {p.name: png_pixels(p.read_bytes()) for p in out.glob("*.png")}


def get_png(client, query: str) -> np.ndarray:
    r = client.get("/api/render?" + query)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return png_pixels(r.content)


@pytest.mark.parametrize("query, args", [
    ("seed=7&class=3", ["--seeds", "7", "--class", "3"]),
    ("seed=42&psi=0.7&class=1", ["--seeds", "42", "--trunc", "0.7", "--class", "1"]),
    ("seed=5&psi=-0.5&cutoff=2&class=9&noise=none", ["--seeds", "5", "--trunc", "-0.5", "--trunc-cutoff", "2",
                                                     "--class", "9", "--noise-mode", "none"]),
    ("seed=0&psi=2&class=0&noise=const", ["--seeds", "0", "--trunc", "2", "--class", "0"]),
])
def test_render_equals_generate(client, tmp_path, query, args):
    expected = run_cli(tmp_path, "generate", "--quiet", *args)
    (name, image), = expected.items()
    assert np.array_equal(get_png(client, query), image)


def test_mix_equals_style_mix(client, tmp_path):
    expected = run_cli(tmp_path, "style-mix", "--rows", "3", "--cols", "11", "--styles", "coarse", "--trunc", "0.8",
                       "--class", "4", "--quiet")
    mixed = get_png(client, "seed=3&psi=0.8&class=4&mix_seed=11&mix_layers=0-3")
    assert np.array_equal(mixed, expected["3-11.png"])
    assert np.array_equal(get_png(client, "seed=3&psi=0.8&class=4&mix_seed=11&mix_layers=coarse"), mixed)
    assert not np.array_equal(mixed, get_png(client, "seed=3&psi=0.8&class=4"))


def test_command_reproduces_the_image(client, tmp_path):
    r = client.get("/api/command?seed=12&psi=0.6&cutoff=3&class=2&noise=none")
    assert r.json()["command"] == "stylegan generate --seeds 12 --trunc 0.6 --trunc-cutoff 3 --class 2 --noise-mode none"
    r = client.get("/api/command?seed=3&class=4&mix_seed=11&mix_layers=coarse")
    assert r.json()["command"] == "stylegan style-mix --rows 3 --cols 11 --styles 0-3 --class 4"
    r = client.get("/api/command?seed=3.5&class=4")
    assert "--projected-w explore_w.npz" in r.json()["command"]


def test_w_download_renders_with_generate_and_uploads_back(client, tmp_path):
    query = "seed=3.25&psi=0.9&class=5&mix_seed=8&mix_layers=4-7"
    r = client.get("/api/w.npz?" + query)
    assert r.status_code == 200
    w_file = tmp_path / "explore_w.npz"
    w_file.write_bytes(r.content)
    assert np.load(w_file)["w"].shape == (1, 8, 64)
    (_, expected), = run_cli(tmp_path, "generate", "--projected-w", str(w_file), "--quiet").items()
    assert np.array_equal(get_png(client, query), expected)
    w_id = client.post("/api/w?name=mine.npz", content=r.content).json()["w"]
    assert np.array_equal(get_png(client, f"w={w_id}"), expected)
    mixed = get_png(client, f"w={w_id}&mix_seed=1&mix_layers=0-3&class=2")
    assert not np.array_equal(mixed, expected)


def test_seed_blend_matches_float64_rederivation():
    from stylegan.explore.seed_blend import blended_seed_ws

    G = stylegan.load_network("default")["G_ema"]
    c = torch.zeros([1, 10], dtype=torch.float64)
    c[0, 6] = 1
    with torch.no_grad():
        a = G.mapping(seed_latents([20], 64), c.float(), truncation_psi=0.5).double()
        b = G.mapping(seed_latents([21], 64), c.float(), truncation_psi=0.5).double()
        got = blended_seed_ws(G, 20.3, truncation_psi=0.5, class_idx=6).double()
    expected = 0.7 * a + 0.3 * b
    # ws are O(1): float32 blending rounds to a few ulps of 1
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    assert torch.equal(blended_seed_ws(G, 20.0, truncation_psi=0.5, class_idx=6).double(), a)


def test_layer_view_is_the_normalised_activation(client, explorer):
    G = explorer.slot(0).G
    captured = []
    handle = G.synthesis.b8.conv1.register_forward_hook(lambda m, i, o: captured.append(o[0].double()))
    with torch.no_grad():
        G(torch.from_numpy(np.random.RandomState(9).randn(1, 64)).float(), torch.eye(10)[[2]], noise_mode="const")
    handle.remove()
    fmap = captured[0]
    one = get_png(client, "seed=9&class=2&layer=b8.conv1&channel=5")
    x = fmap[5] / fmap[5].abs().max()
    expected = np.clip(x.numpy() * 127.5 + 128, 0, 255).astype(np.uint8)
    assert one.shape == (8, 8)
    assert np.abs(one.astype(int) - expected).max() <= 1  # float32 vs float64 truncation at a byte edge
    rgb = get_png(client, "seed=9&class=2&layer=b8.conv1")
    assert rgb.shape == (8, 8, 3)
    assert np.array_equal(rgb[:, :, 2:3][:, :, 0], get_png(client, "seed=9&class=2&layer=b8.conv1&channel=2"))


def test_noise_modes_and_noise_seed(client):
    a = get_png(client, "seed=1&class=0&noise=random&noise_seed=1")
    assert np.array_equal(a, get_png(client, "seed=1&class=0&noise=random&noise_seed=1"))
    assert not np.array_equal(a, get_png(client, "seed=1&class=0&noise=random&noise_seed=2"))
    assert not np.array_equal(get_png(client, "seed=1&class=0&noise=none"), get_png(client, "seed=1&class=0"))


def test_stale_renders_are_dropped(client):
    assert client.get("/api/render?seed=1&class=0&cid=page1&seq=5").status_code == 200
    assert client.get("/api/render?seed=2&class=0&cid=page1&seq=3").status_code == 204
    assert client.get("/api/render?seed=2&class=0&cid=page2&seq=3").status_code == 200


def test_network_info_and_page(client):
    info = client.get("/api/network?net=0").json()
    assert (info["num_ws"], info["c_dim"], info["img_resolution"], info["stylegan3"]) == (8, 10, 32, False)
    assert info["groups"]["coarse"] == [0, 1, 2, 3]
    assert "b16.conv1" in [layer["name"] for layer in info["layers"]]
    page = client.get("/").text
    for testid in ("seed", "psi", "cutoff", "class", "noise", "mix-seed", "mix-layers", "image", "upload",
                   "download-png", "download-w", "command"):
        assert f'data-testid="{testid}"' in page


@pytest.mark.parametrize("query, expect", [
    ("seed=-1&class=0", "seed"), ("seed=abc&class=0", "seed"), ("seed=4294967296&class=0", "seed"),
    ("seed=1e3&class=0", "seed"), ("seed=1&psi=nan&class=0", "psi"), ("seed=1&psi=inf&class=0", "psi"),
    ("seed=1&psi=1000&class=0", "psi"), ("seed=1&cutoff=-1&class=0", "cutoff"), ("seed=1&cutoff=x&class=0", "cutoff"),
    ("seed=1", "conditional"), ("seed=1&class=10", "out of range"), ("seed=1&class=-2", "class"),
    ("seed=1&class=0&noise=loud", "noise"), ("seed=1&class=0&noise_seed=-5", "noise_seed"),
    ("seed=1&class=0&mix_seed=2", "mix_layers"), ("seed=1&class=0&mix_layers=0-3", "mix_seed"),
    ("seed=1&class=0&mix_seed=2&mix_layers=9", "beyond"), ("seed=1&class=0&mix_seed=2&mix_layers=fine", "empty"),
    ("seed=1&class=0&mix_seed=2&mix_layers=3-1", "descending"), ("seed=1&class=0&mix_seed=x&mix_layers=1", "mix_seed"),
    ("seed=1&class=0&translate=0.1,0", "StyleGAN3"), ("seed=1&class=0&rotate=10", "StyleGAN3"),
    ("seed=1&class=0&translate=1", "translate"), ("seed=1&class=0&rotate=nan", "rotate"),
    ("seed=1&class=0&layer=b99", "no layer"), ("seed=1&class=0&layer=b8.conv1&channel=32", "channel"),
    ("seed=1&class=0&layer=b8.conv1&channel=x", "channel"), ("w=nosuchid", "no stored w"), ("w=../etc/passwd", "w"),
    ("w=abc&seed=1", "both"), ("w=abc&psi=0.5", "psi"), ("net=1&seed=1", "no network 1"), ("net=x", "net"),
    ("seed=1&class=0&network=/etc/passwd", "unknown parameter"), ("seed=1&seed=2&class=0", "twice"),
    ("seed=1&class=0&cid=a/b&seq=1", "cid"), ("seed=1&class=0&psi=" + "1" * 300, "characters"),
])
def test_bad_parameters_are_one_line_400s(client, query, expect):
    for route in ("/api/render", "/api/w.npz", "/api/command"):
        r = client.get(f"{route}?{query}")
        assert r.status_code == 400, (route, query, r.status_code)
        assert expect.lower() in r.text.lower() and "\n" not in r.text.strip(), r.text


@pytest.mark.parametrize("body, expect", [
    (b"", "empty"), (b"not a zip", "cannot read projected W"), (b"PK\x03\x04" + b"\0" * 100, "cannot read"),
])
def test_bad_w_uploads(client, body, expect):
    r = client.post("/api/w", content=body)
    assert r.status_code == 400 and expect in r.text


def test_w_of_another_shape_is_refused(client):
    buf = io.BytesIO()
    np.savez(buf, w=np.zeros([1, 18, 512], np.float32))
    w_id = client.post("/api/w", content=buf.getvalue()).json()["w"]
    r = client.get(f"/api/render?w={w_id}")
    assert r.status_code == 400 and "shape" in r.text.lower()


def test_oversized_uploads_are_refused_unread(client):
    big = b"\0" * (20 * 2**20 + 1)
    for route in ("/api/w", "/api/project?steps=2&class=0"):
        r = client.post(route, content=big)
        assert r.status_code == 400 and "limit" in r.text


@pytest.mark.parametrize("route, body, expect", [
    ("/api/project?steps=2&class=0", b"GIF89a broken", "not a readable image"),
    ("/api/project?steps=2&class=0", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a readable image"),
    ("/api/project?steps=0&class=0", None, "steps"), ("/api/project?steps=2", None, "conditional"),
    ("/api/project?steps=2&class=0&path=/tmp/x", None, "unknown parameter"),
    ("/api/project/nosuchjob", None, "no projection"), ("/api/project/..%2Fx", None, "job"),
])
def test_bad_projection_requests(client, route, body, expect):
    png = io.BytesIO()
    import PIL.Image
    PIL.Image.new("L", (40, 30), 128).save(png, format="png")
    if route.startswith("/api/project?"):
        r = client.post(route, content=body if body is not None else png.getvalue())
    else:
        r = client.get(route)
    assert r.status_code in (400, 404) and (r.status_code == 404 or expect in r.text), (r.status_code, r.text)


def test_projection_runs_in_background_streams_and_cancels(client, tmp_path, monkeypatch):
    from tests.detector_standins import write_detectors

    monkeypatch.setenv("STYLEGAN_DETECTOR_DIR", str(write_detectors(tmp_path / "det")))
    import PIL.Image
    png = io.BytesIO()
    PIL.Image.fromarray((np.arange(48 * 64) % 251).reshape(48, 64).astype(np.uint8)).save(png, format="png")
    job = client.post("/api/project?steps=3&class=1&name=face.png", content=png.getvalue()).json()
    assert job["state"] == "running" and job["steps"] == 3
    # the server stays live meanwhile
    assert client.get("/api/render?seed=1&class=0").status_code == 200
    with client.stream("GET", f"/api/project/{job['job']}/events") as events:
        lines = [line for line in events.iter_lines() if line.startswith("data: ")]
    import json
    final = json.loads(lines[-1][6:])
    assert final["state"] == "done" and final["step"] == 3 and final["w"], final
    assert client.get(f"/api/render?w={final['w']}").status_code == 200
    long = client.post("/api/project?steps=10000&class=1", content=png.getvalue()).json()
    assert client.post(f"/api/project/{long['job']}/cancel").status_code == 200
    for _ in range(600):
        status = client.get(f"/api/project/{long['job']}").json()
        if status["state"] != "running":
            break
        import time
        time.sleep(0.05)
    assert status["state"] == "cancelled" and status["step"] < 10000


def test_bf16_explorer_renders_what_generate_renders_in_bf16(tmp_path):
    """--precision bf16 reaches the worker threads that render (the precision is a context variable, which a
    new thread does not inherit), and the copied command carries it, so it reproduces the same pixels."""
    from stylegan.precision import cpu_has_native_bf16
    from stylegan.web.app import create_app
    from stylegan.web.projections import Projections
    from stylegan.web.session import Explorer
    from starlette.testclient import TestClient

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16: --precision bf16 runs fp32 here")
    explorer = Explorer(["default"], precision="bf16")
    client = TestClient(create_app(explorer, Projections(explorer)), raise_server_exceptions=False)
    command = client.get("/api/command?seed=7&class=3").json()["command"]
    assert command == "stylegan generate --seeds 7 --class 3 --precision bf16"
    shown = get_png(client, "seed=7&class=3")
    (_, bf16), = run_cli(tmp_path / "bf16", "generate", "--quiet", "--seeds", "7", "--class", "3",
                         "--precision", "bf16").items()
    (_, fp32), = run_cli(tmp_path / "fp32", "generate", "--quiet", "--seeds", "7", "--class", "3").items()
    assert np.array_equal(shown, bf16)
    assert not np.array_equal(bf16, fp32)  # else this test could not tell the precisions apart
