"""The paper figures: sizes from the paper's layouts, and every checked cell re-derived here from the
network's own mapping/synthesis calls (the figure code is not used to compute what it is compared with)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.figures import (
    FIGURES,
    FigureSettings,
    draw_noise_components,
    draw_noise_detail,
    draw_seed_grid,
    draw_style_mixing,
    draw_truncation,
    draw_uncurated,
    figure_list,
    plan_figures,
    resolve_figure_names,
    write_figures,
)
from stylegan.explore.figures_common import Box, figure_groups, fine_from_resolution, first_fine_w, parse_box
from stylegan.explore.figures_noise import noise_layers, noise_maps_replaced
from stylegan.explore.style_mix import StyleSpec
from stylegan.networks import StyleGAN1Generator
from tests.explore_nets import tiny_generator


def to_bytes(images: torch.Tensor) -> np.ndarray:
    """The official byte mapping, written out here: NCHW float → NHWC uint8."""
    return np.clip(images.numpy().transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)


def one_hot(G, class_idx, n=1):
    c = torch.zeros([n, G.c_dim])
    if class_idx is not None:
        c[:, class_idx] = 1
    return c


def w_of(G, seed, class_idx=None):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        return G.mapping(z, one_hot(G, class_idx), truncation_psi=1)[0]


def synth(G, ws, noise_mode="const"):
    with torch.no_grad():
        return to_bytes(G.synthesis(ws, noise_mode=noise_mode))


def close(a, b, atol=1):
    """Equal up to one byte: batches of different sizes may round differently in the last float bit."""
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= atol, diff.max()


@pytest.fixture(scope="module")
def v2():
    """16×16 RGB StyleGAN2 with strong noise (0.5) and a non-zero w_avg."""
    return tiny_generator(resolution=16, noise_strength=0.5)


@pytest.fixture(scope="module")
def v1():
    """A random 16×16 RGB StyleGAN (v1) with visible noise and a non-zero w_avg."""
    torch.manual_seed(3)
    G = StyleGAN1Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=2, layer_features=8),
                           synthesis_kwargs=dict(fmap_base=64, fmap_max=16))
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        for name, p in G.synthesis.named_parameters():
            if name.endswith("noise_weight"):
                p.fill_(0.5)
    return G.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------
# Groups and defaults scaled to the network


def test_groups_are_the_papers_from_64_up_and_spread_below():
    assert figure_groups(18) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}
    assert (first_fine_w(18), fine_from_resolution(18)) == (8, 64)  # the paper: cutoff 8, noise 8-17 = 64²+
    assert figure_groups(12)["fine"] == [8, 9, 10, 11]  # 64²: the paper's groups still apply
    assert figure_groups(8) == {"coarse": [0, 1], "middle": [2, 3, 4, 5], "fine": [6, 7]}  # 32²
    assert (first_fine_w(8), fine_from_resolution(8)) == (6, 32)
    assert figure_groups(6) == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}  # 16²


def test_noise_layers_follow_the_official_numbering(v1, v2):
    """noise0, noise1, … from 4² up: v1 has two per resolution, StyleGAN2 one at 4² and two above."""
    assert [(layer.name, layer.resolution) for layer in noise_layers(v2)] == [
        ("b4.conv1", 4), ("b8.conv0", 8), ("b8.conv1", 8), ("b16.conv0", 16), ("b16.conv1", 16)]
    assert [(layer.name, layer.resolution) for layer in noise_layers(v1)] == [
        (f"b{r}.conv{k}.epilogue", r) for r in (4, 8, 16) for k in (0, 1)]


def test_figure_sizes_follow_the_papers_layouts_scaled_to_32(G):
    """The built-in 32² grayscale network: each figure's size from its layout at R = 32, C = 1."""
    r = 32
    expected = {
        "uncurated": (3 * r, r + r // 2 + 2 * (r // 4) + 2 * (r // 8)),  # rows 3, lods 0,1,2,2,3,3
        "style-mixing": (7 * r, 6 * r),  # 6 row seeds + top row, 5 column seeds + left column
        "noise-detail": (2 * r, 3 * r),
        "noise-components": (2 * r, 2 * r),
        "truncation": (2 * r, 6 * r),
        "uncurated-bedrooms": (5 * r, 2 * r + 2 * (r // 2) + 3 * (r // 4)),
        "uncurated-cars": (4 * (r * 3 // 4), r + r // 2 + 2 * (r // 4) + 2 * (r // 8)),  # 512×384 of 512² scaled
        "uncurated-cats": (5 * r, 2 * r + 2 * (r // 2) + 3 * (r // 4)),
        "sg2-uncurated": (5 * r, 6 * r),  # 26 seeds: 6 columns, 5 rows
        "sg2-curated": (2 * r, 2 * r),
        "sg2-uncurated-cars": (5 * r, 6 * r),
    }
    settings = FigureSettings(class_idx=4, samples=6)
    plans = plan_figures(G, ["all"], settings)
    assert [f.name for f, _ in plans] == list(expected)
    for figure, arguments in plans:
        shape = figure.draw(G, **arguments, batch_size=8).shape
        assert shape == (*expected[figure.name], 1), figure.name


def test_write_figures_writes_one_png_per_figure(G, tmp_path):
    paths = write_figures(G, ["truncation", "noise-components"], FigureSettings(class_idx=0), tmp_path)
    assert [p.name for p in paths] == ["figure08-truncation-trick.png", "figure05-noise-components.png"]
    with PIL.Image.open(paths[0]) as im:
        assert im.size == (6 * 32, 2 * 32) and im.mode == "L"


def test_list_and_names():
    assert len(figure_list()) == len(FIGURES) and all(line.split()[0] in FIGURES for line in figure_list())
    assert resolve_figure_names([]) == ["uncurated", "style-mixing", "noise-detail", "noise-components",
                                        "truncation"]
    assert resolve_figure_names(["truncation", "paper"])[0] == "truncation"
    with pytest.raises(StyleGANError) as e:
        resolve_figure_names(["truncaton"])
    assert "truncation" in e.value.fix and "noise-detail" in e.value.fix


# --------------------------------------------------------------------------------------------------
# Cells against direct synthesis


def test_style_mixing_cells_are_the_mixed_ws(G):
    rows, cols, styles = [888, 829], [639, 701, 2268], [[0, 1, 2, 3], [6, 7]]
    fig = draw_style_mixing(G, rows, cols, styles, class_idx=2, batch_size=2)
    r = 32
    assert fig.shape == (3 * r, 4 * r, 1)
    assert (fig[:r, :r] == 255).all()  # blank corner, white as in the paper
    for j, c in enumerate(cols):
        close(fig[:r, (j + 1) * r:(j + 2) * r], synth(G, w_of(G, c, 2)[None])[0])
    for i, row in enumerate(rows):
        close(fig[(i + 1) * r:(i + 2) * r, :r], synth(G, w_of(G, row, 2)[None])[0])
        for j, c in enumerate(cols):
            mixed = w_of(G, row, 2).clone()
            mixed[styles[i]] = w_of(G, c, 2)[styles[i]]
            close(fig[(i + 1) * r:(i + 2) * r, (j + 1) * r:(j + 2) * r], synth(G, mixed[None])[0])


def test_style_mixing_default_rows_take_coarse_middle_fine(G):
    (figure, arguments), = plan_figures(G, ["style-mixing"], FigureSettings(class_idx=1))
    assert arguments["row_styles"] == [[0, 1]] * 3 + [[2, 3, 4, 5]] * 2 + [[6, 7]]
    (figure, arguments), = plan_figures(G, ["style-mixing"], FigureSettings(
        class_idx=1, rows=[1, 2], mix_styles=[StyleSpec(("fine",), (0,))]))
    assert arguments["row_styles"] == [[0, 6, 7], [0, 6, 7]]


def test_truncation_strip_columns(G):
    psis = [1, 0.5, 0, -1]
    fig = draw_truncation(G, [91, 388], psis, class_idx=7)
    r, w_avg = 32, G.mapping.w_avg
    for i, seed in enumerate([91, 388]):
        w = w_of(G, seed, 7)
        for j, psi in enumerate(psis):
            expected = synth(G, (w_avg.double() + psi * (w.double() - w_avg.double())).float()[None])[0]
            close(fig[i * r:(i + 1) * r, j * r:(j + 1) * r], expected)
        # ψ = 0 is the average image, whatever the seed.
        np.testing.assert_array_equal(fig[i * r:(i + 1) * r, 2 * r:3 * r],
                                      synth(G, w_avg.expand(1, G.num_ws, -1))[0])


def test_uncurated_grid_cells(v2):
    """Latents from one RandomState stream, column by column; ψ on the first `cutoff` ws; crop, then shrink."""
    G = tiny_generator(resolution=16, noise_strength=0.0)  # no noise, so cells do not depend on its draws
    seed, lods, box, psi, cutoff = 7, [0, 1, 2], Box(2, 4, 12, 8), 0.6, 3
    fig = draw_uncurated(G, seed, 1, lods, box, psi=psi, cutoff=cutoff, batch_size=3)
    assert fig.shape == (8, 12 + 6 + 3, 3)
    z = torch.from_numpy(np.random.RandomState(seed).randn(1 + 2 + 4, G.z_dim)).float()
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=1)
    ws[:, :cutoff] = G.mapping.w_avg + psi * (ws[:, :cutoff] - G.mapping.w_avg)
    images = synth(G, ws)[:, box.y:box.y + box.h, box.x:box.x + box.w]
    close(fig[:, :12], images[0])  # lod 0: the crop itself
    for k, (x, y) in enumerate([(12, 0), (12, 4)]):  # lod 1: 6×4 cells
        shrunk = np.asarray(PIL.Image.fromarray(images[1 + k]).resize((6, 4), PIL.Image.LANCZOS))
        close(fig[y:y + 4, x:x + 6], shrunk, atol=2)
    for k in range(4):  # lod 2: 3×2 cells down the last column
        shrunk = np.asarray(PIL.Image.fromarray(images[3 + k]).resize((3, 2), PIL.Image.LANCZOS))
        close(fig[2 * k:2 * k + 2, 18:21], shrunk, atol=2)


def test_uncurated_random_noise_is_seeded(v2):
    a = draw_uncurated(v2, 3, 1, [0, 1], Box(0, 0, 16, 16))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    b = draw_uncurated(v2, 3, 1, [0, 1], Box(0, 0, 16, 16))
    np.testing.assert_array_equal(a, b)
    assert torch.rand(1) == before  # the caller's random stream is left alone


@pytest.mark.parametrize("net", ["v1", "v2"])
def test_noise_detail_std_map_and_crops(net, request):
    G = request.getfixturevalue(net)
    seeds, samples, box = [5, 9], 6, Box(10, 2, 4, 4)
    fig = draw_noise_detail(G, seeds, samples, box, batch_size=samples)
    r, half = 16, 8
    assert fig.shape == (2 * r, 3 * r, 3)
    for i, row_seed in enumerate(seeds):
        torch.manual_seed(row_seed)  # the documented source of the noise: torch seeded with the row's seed
        images = synth(G, w_of(G, row_seed)[None].repeat(samples, 1, 1), "random")
        assert len({im.tobytes() for im in images}) == samples  # the noise does vary
        block = fig[i * r:(i + 1) * r]
        close(block[:, :r], images[0])
        for i in range(4):
            enlarged = images[1 + i, 2:6, 10:14].repeat(2, axis=0).repeat(2, axis=1)  # nearest, ×2
            y, x = (i // 2) * half, r + (i % 2) * half
            close(block[y:y + half, x:x + half], enlarged)
        mean = images.astype(np.float64).mean(axis=3)  # [S, H, W]
        sigma = np.sqrt(((mean - mean.mean(axis=0)) ** 2).mean(axis=0))
        expected = np.clip(np.floor(sigma * 4 + 0.5), 0, 255).astype(np.uint8)
        assert expected.max() > 0
        for k in range(3):
            close(block[:, 2 * r:, k], expected)


def _noise_zeroed(G, keep_resolution):
    """Images with the stored noise zeroed, by hand, in layers whose resolution fails ``keep_resolution``."""
    saved = {}
    for name, buf in G.synthesis.named_buffers():
        if name.endswith("noise_const"):
            saved[name] = buf.clone()
            if not keep_resolution(buf.shape[-1]):
                buf.zero_()
    return saved


def _restore(G, saved):
    for name, buf in G.synthesis.named_buffers():
        if name in saved:
            buf.copy_(saved[name])


@pytest.mark.parametrize("net", ["v1", "v2"])
def test_noise_components_halves(net, request):
    G = request.getfixturevalue(net)
    seeds, r, half = [4, 8], 16, 8
    before = {n: b.clone() for n, b in G.synthesis.named_buffers()}
    fig = draw_noise_components(G, seeds, 16, flips=[1])
    for n, b in G.synthesis.named_buffers():
        torch.testing.assert_close(b, before[n], rtol=0, atol=0)  # the network is left as it was
    ws = torch.stack([w_of(G, s) for s in seeds])
    every = synth(G, ws, "const")
    nothing = synth(G, ws, "none")  # the network's own no-noise path, not zeroed maps
    saved = _noise_zeroed(G, lambda res: res >= 16)
    fine = synth(G, ws, "const")
    _restore(G, saved)
    saved = _noise_zeroed(G, lambda res: res < 16)
    coarse = synth(G, ws, "const")
    _restore(G, saved)
    assert np.abs(every.astype(int) - nothing).max() > 8  # the noise is visible
    for col in range(2):
        flip = (lambda a: a[:, ::-1]) if col == 1 else (lambda a: a)
        x = col * r
        close(fig[:r, x:x + half], flip(every[col])[:, :half])
        close(fig[:r, x + half:x + r], flip(nothing[col])[:, half:])
        close(fig[r:, x:x + half], flip(fine[col])[:, :half])
        close(fig[r:, x + half:x + r], flip(coarse[col])[:, half:])


def test_noise_maps_are_restored_after_an_error(v2):
    before = [layer.module.noise_const.clone() for layer in noise_layers(v2)]
    with pytest.raises(RuntimeError):
        with noise_maps_replaced(v2, [torch.zeros_like(b) for b in before]):
            assert all((layer.module.noise_const == 0).all() for layer in noise_layers(v2))
            raise RuntimeError("boom")
    for layer, b in zip(noise_layers(v2), before):
        torch.testing.assert_close(layer.module.noise_const, b, rtol=0, atol=0)


@pytest.mark.parametrize("net", ["v1", "v2"])
def test_stylegan2_seed_grid_draws_noise_from_the_seed(net, request):
    """StyleGAN2's generate-images: z, then each noise map noise0, noise1, … from the same RandomState."""
    G = request.getfixturevalue(net)
    seeds, psi = [66, 230, 389], 0.5
    fig = draw_seed_grid(G, seeds, psi)
    assert fig.shape == (2 * 16, 2 * 16, 3) and (fig[16:, 16:] == 0).all()  # 2×2 grid, last cell empty
    names = [name for name, _ in G.synthesis.named_buffers() if name.endswith("noise_const")]
    for k, seed in enumerate(seeds):
        draws = np.random.RandomState(seed)
        z = torch.from_numpy(draws.randn(1, G.z_dim)).float()
        saved = _noise_zeroed(G, lambda res: True)
        buffers = dict(G.synthesis.named_buffers())
        for name in names:  # registration order is 4², then conv0 before conv1 at each resolution
            res = buffers[name].shape[-1]
            buffers[name].copy_(torch.from_numpy(draws.randn(res, res)))
        with torch.no_grad():
            ws = G.mapping(z, None, truncation_psi=1)
            ws = G.mapping.w_avg + psi * (ws - G.mapping.w_avg)
            expected = synth(G, ws)[0]
        _restore(G, saved)
        y, x = divmod(k, 2)
        close(fig[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16], expected)


def test_v1_figures_draw(v1, tmp_path):
    paths = write_figures(v1, ["all"], FigureSettings(samples=5), tmp_path)
    assert len(paths) == len(FIGURES)
    with PIL.Image.open(tmp_path / "figure08-truncation-trick.png") as im:
        assert im.size == (6 * 16, 2 * 16) and im.mode == "RGB"


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("settings, names, expect", [
    (FigureSettings(class_idx=1, crop=Box(0, 0, 33, 32)), ["uncurated"], "does not fit"),
    (FigureSettings(class_idx=1, detail_crop=Box(30, 0, 4, 4)), ["noise-detail"], "does not fit"),
    (FigureSettings(class_idx=1, crop=Box(0, 0, 0, 32)), ["uncurated"], "is empty"),
    (FigureSettings(class_idx=1, lods=[0, 6]), ["uncurated"], "shrinks"),
    (FigureSettings(class_idx=1, lods=[]), ["uncurated"], "lods"),
    (FigureSettings(class_idx=1, seeds=[2**32]), ["truncation"], "out of range"),
    (FigureSettings(class_idx=1, seeds=[]), ["truncation"], "0 seeds"),
    (FigureSettings(class_idx=1, psi=float("nan")), ["uncurated"], "not a finite number"),
    (FigureSettings(class_idx=1, psis=[1, float("inf")]), ["truncation"], "not a finite number"),
    (FigureSettings(class_idx=1, lods=[0]), ["noise-detail"], "not used by the chosen figures"),
    (FigureSettings(class_idx=1, rows=[1, 2]), ["style-mixing"], "style rows"),
    (FigureSettings(class_idx=1, mix_styles=[StyleSpec((), (40,))]), ["style-mixing"], "beyond"),
    (FigureSettings(class_idx=1, fine_from=4), ["noise-components"], "fine_from"),
    (FigureSettings(class_idx=1, samples=4), ["noise-detail"], "samples"),
    (FigureSettings(class_idx=1, cutoff=9), ["uncurated"], "cutoff"),
    (FigureSettings(class_idx=10), ["truncation"], "out of range"),
    (FigureSettings(), ["truncation"], "conditional"),
    (FigureSettings(class_idx=1, seeds=list(range(20000))), ["sg2-curated"], "seeds"),
])
def test_bad_settings_are_refused_before_drawing(G, tmp_path, settings, names, expect):
    with pytest.raises(StyleGANError) as e:
        write_figures(G, ["truncation", *names], settings, tmp_path)
    assert expect in f"{e.value.what} ({e.value.fix})"
    assert not list(tmp_path.iterdir())  # the first figure is not written either


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "-1,0,4,4", "1,2,3,4,5", "", "9999999,0,1,1"])
def test_bad_crop_text(text):
    with pytest.raises(StyleGANError):
        parse_box(text)
