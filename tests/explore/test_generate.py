"""Rendering seeds and projected W: same pixels as a direct G call, independent of batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.generate import resolve_grid, write_images
from stylegan.explore.labels import check_class, class_labels
from stylegan.explore.render import images_from_seeds, images_from_ws
from stylegan.explore.seeds import seed_latents
from stylegan.explore.ws_files import check_ws_shape, read_projected_w


def direct(G, seed, class_idx, **kwargs):
    """The official recipe, spelled out: z from the seed, one-hot c, one G call."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    c = torch.zeros([1, G.c_dim])
    c[0, class_idx] = 1
    with torch.no_grad():
        return G(z, c, **{"noise_mode": "const", **kwargs})


def test_seed_latents_stack_the_official_zs():
    z = seed_latents([3, 1], 16)
    assert z.dtype == torch.float32 and z.shape == (2, 16)
    expected = np.concatenate([np.random.RandomState(s).randn(1, 16) for s in (3, 1)])
    np.testing.assert_array_equal(z.numpy(), expected.astype(np.float32))


def test_images_from_seeds_equal_a_direct_call(G):
    [batch] = list(images_from_seeds(G, [42, 7], class_idx=3, truncation_psi=0.7, batch_size=2, progress=False))
    assert batch.shape == (2, G.img_channels, G.img_resolution, G.img_resolution)
    for i, seed in enumerate([42, 7]):
        torch.testing.assert_close(batch[i:i + 1], direct(G, seed, 3, truncation_psi=0.7), rtol=0, atol=1e-5)


def test_truncation_cutoff_is_passed_through(G):
    [batch] = list(images_from_seeds(G, [5], class_idx=0, truncation_psi=0.5, truncation_cutoff=2, progress=False))
    expected = direct(G, 5, 0, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(batch, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(batch, direct(G, 5, 0, truncation_psi=0.5), atol=1e-4)


@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_a_seed_image_does_not_depend_on_the_batch_size(G, noise_mode):
    seeds = list(range(10, 17))
    results = [torch.cat(list(images_from_seeds(G, seeds, class_idx=1, noise_mode=noise_mode, batch_size=b,
                                                progress=False)))
               for b in (1, 3, 7, 16)]
    for other in results[1:]:
        assert (other - results[0]).abs().max() <= 1e-5


def test_class_rules(G):
    assert G.c_dim == 10
    check_class(G, 0)
    check_class(G, 9)
    for bad, match in [(None, "conditional"), (10, "out of range"), (-1, "out of range")]:
        with pytest.raises(StyleGANError, match=match):
            check_class(G, bad)
    # Python callers pass class_idx, not --class: messages name both.
    with pytest.raises(StyleGANError) as info:
        check_class(G, None)
    assert info.value.fix == "pick one with class_idx (--class), 0 to 9"
    with pytest.raises(StyleGANError) as info:
        check_class(G, 10)
    assert info.value.fix == "use class_idx (--class) between 0 and 9"
    c = class_labels(G, 4, 3)
    assert c.shape == (3, 10) and c.sum().item() == 3 and (c[:, 4] == 1).all()


def test_class_on_an_unconditional_network_is_an_error(G):
    class Unconditional:
        c_dim = 0

    check_class(Unconditional(), None)
    with pytest.raises(StyleGANError, match=r"^class_idx \(--class\) was given but the network is unconditional"
                                            r" \(leave out class_idx \(--class\)\)$"):
        check_class(Unconditional(), 0)


def test_ws_shapes(G):
    w = torch.randn(G.num_ws, G.w_dim, dtype=torch.float64)
    assert check_ws_shape(w, G).shape == (1, G.num_ws, G.w_dim)
    assert check_ws_shape(w.numpy()[None].repeat(3, 0), G).shape == (3, G.num_ws, G.w_dim)
    for shape in ([G.num_ws + 1, G.w_dim], [2, G.num_ws, G.w_dim + 1], [G.w_dim], [1, 1, G.num_ws, G.w_dim]):
        with pytest.raises(StyleGANError, match=rf"expected \[N, {G.num_ws}, {G.w_dim}\]"):
            check_ws_shape(torch.zeros(shape), G)


def test_images_from_ws_equal_direct_synthesis(G):
    ws = torch.randn(3, G.num_ws, G.w_dim)
    got = torch.cat(list(images_from_ws(G, ws, batch_size=2, progress=False)))
    with torch.no_grad():
        expected = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_read_projected_w(tmp_path):
    w = np.random.randn(1, 8, 64).astype(np.float32)
    np.savez(tmp_path / "good.npz", w=w)
    np.testing.assert_array_equal(read_projected_w(tmp_path / "good.npz"), w)
    np.savez(tmp_path / "nokey.npz", ws=w)
    with pytest.raises(StyleGANError, match="no array named 'w'.*ws"):
        read_projected_w(tmp_path / "nokey.npz")
    with pytest.raises(StyleGANError, match="cannot read"):
        read_projected_w(tmp_path / "missing.npz")
    np.save(tmp_path / "single.npy", w)
    with pytest.raises(StyleGANError, match="not an .npz"):
        read_projected_w(tmp_path / "single.npy")
    np.savez(tmp_path / "objects.npz", w=np.array([{"x": 1}], dtype=object))
    with pytest.raises(StyleGANError):
        read_projected_w(tmp_path / "objects.npz")  # never unpickled


def test_resolve_grid():
    assert resolve_grid(5, None, None) == (3, 2)
    assert resolve_grid(5, 5, None) == (5, 1)
    assert resolve_grid(5, None, 5) == (1, 5)
    assert resolve_grid(5, 2, 3) == (2, 3)
    with pytest.raises(StyleGANError, match="4 cells") as info:
        resolve_grid(5, 2, 2)
    assert info.value.fix == "choose a larger grid_w (--grid-w) or grid_h (--grid-h), or fewer images"


def test_write_images_names_files_in_order(tmp_path):
    batches = iter([torch.zeros(2, 1, 4, 4), torch.ones(1, 1, 4, 4)])
    paths = write_images(batches, tmp_path, ["a.png", "b.png", "c.png"])
    assert [p.name for p in paths] == ["a.png", "b.png", "c.png"]
    [grid] = write_images(iter([torch.zeros(3, 3, 4, 4)]), tmp_path, [], grid=(2, 2))
    assert grid.name == "grid.png"


def test_resolve_grid_is_bounded():
    with pytest.raises(StyleGANError, match=r"a 100000x100000 grid has 10000000000 cells, over the limit of 16384"):
        resolve_grid(1, 100_000, 100_000)
    with pytest.raises(StyleGANError, match="MAX_GRID_CELLS"):
        resolve_grid(20_000, None, None)  # the near-square grid of too many images


def test_write_images_refuses_an_oversized_grid_after_the_first_batch(tmp_path):
    rendered = []

    def batches():
        for i in range(3):
            rendered.append(i)
            yield torch.zeros(1, 3, 2048, 2048)

    with pytest.raises(StyleGANError, match="MAX_IMAGE_PIXELS"):
        write_images(batches(), tmp_path, [], grid=(16, 8))  # 32768x16384 pixels
    assert rendered == [0] and list(tmp_path.iterdir()) == []
