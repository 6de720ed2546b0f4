"""The explorer on a StyleGAN3 network (translate / rotate equal generate's), and the command's refusals."""

from __future__ import annotations

import numpy as np

import stylegan
from stylegan.cli import main
from stylegan.cli.explore import is_loopback
from tests.hostile.harness import run_refused
from tests.web.conftest import png_pixels, seed_dependent_sg3


def test_stylegan3_translate_rotate_equal_generate(tmp_path):
    from stylegan.web.params import parse_render_request
    from stylegan.web.session import Explorer

    path = tmp_path / "sg3.safetensors"
    stylegan.save_network({"G_ema": seed_dependent_sg3("t")}, path)
    explorer = Explorer([str(path)])
    assert explorer.network_info(0)["stylegan3"]
    moved = explorer.render_png(parse_render_request({"seed": "4", "translate": "0.2,-0.1", "rotate": "15"}))
    out = tmp_path / "gen"
    assert main(["generate", "--network", str(path), "--seeds", "4", "--translate", "0.2,-0.1", "--rotate", "15",
                 "--outdir", str(out), "--quiet"]) == 0
    assert np.array_equal(png_pixels(moved), png_pixels((out / "seed0004.png").read_bytes()))
    # leaving translate/rotate out restores the network's own transform
    plain = explorer.render_png(parse_render_request({"seed": "4"}))
    assert main(["generate", "--network", str(path), "--seeds", "4", "--outdir", str(tmp_path / "g2"), "--quiet"]) == 0
    assert np.array_equal(png_pixels(plain), png_pixels((tmp_path / "g2" / "seed0004.png").read_bytes()))
    assert not np.array_equal(png_pixels(plain), png_pixels(moved))
    assert not np.array_equal(png_pixels(plain), png_pixels(explorer.render_png(parse_render_request({"seed": "5"}))))


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_explore_refusals(tmp_path):
    run_refused(["explore", "--network", str(tmp_path / "missing.pkl"), "--port", "0"], cwd=tmp_path)
    run_refused(["explore", "--port", "70000"], cwd=tmp_path, expect="70000")
    run_refused(["explore", "--host", "203.0.113.9", "--port", "0"], cwd=tmp_path, expect="cannot listen")
