"""How the StyleGAN2 networks are laid out: w indices per block, stored kwargs, truncation, w_avg tracking.

Expected values are written out by hand from the StyleGAN2 design (one w per convolution, a block's
ToRGB sharing the next block's first w; the ADA repository's kwargs layout), not computed by our code.
"""

from __future__ import annotations

import torch

from stylegan.networks import build_network
from stylegan.networks.layers import track_w_avg, truncate
from stylegan.networks.stylegan2 import MappingNetwork, block_w_spans

TINY_SYNTHESIS = {"channel_base": 64, "channel_max": 8}


def tiny_generator(architecture: str, resolution: int = 16):
    return build_network("Generator", dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=resolution, img_channels=3,
                                           mapping_kwargs={"num_layers": 1},
                                           synthesis_kwargs={**TINY_SYNTHESIS, "architecture": architecture}))


def test_each_block_reads_its_convolutions_ws_and_shares_the_next_one_with_its_torgb():
    # 4×4: conv1 (w0) + torgb (w1); 8×8: conv0 (w1), conv1 (w2), torgb (w3); 16×16: w3, w4, torgb w5.
    G = tiny_generator("skip")
    assert G.synthesis.w_spans == [(0, 2), (1, 3), (3, 3)] and G.num_ws == 6
    assert block_w_spans(G.synthesis.blocks()) == G.synthesis.w_spans
    # Without skip connections only the last block has a ToRGB: the spans no longer overlap.
    for architecture in ("orig", "resnet"):
        G = tiny_generator(architecture)
        assert G.synthesis.w_spans == [(0, 1), (1, 2), (3, 3)] and G.num_ws == 6


def test_a_block_gets_exactly_its_slice_of_ws():
    G = tiny_generator("skip").eval()
    seen = []
    for block in G.synthesis.blocks():
        block.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[2].clone()), with_kwargs=True)
    ws = torch.arange(6, dtype=torch.float32).reshape(1, 6, 1).repeat(2, 1, 4)  # ws[:, i] is all i
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const")
    assert [block_ws[0, :, 0].tolist() for block_ws in seen] == [[0, 1], [1, 2, 3], [3, 4, 5]]


def test_generator_kwargs_are_stored_in_the_ada_layout_whether_given_nested_or_flat():
    common = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=8, img_channels=3)
    expected = {**common, "mapping_kwargs": {}, "synthesis_kwargs": {"channel_base": 64, "channel_max": 8}}
    nested = build_network("Generator", dict(common, synthesis_kwargs={"channel_base": 64, "channel_max": 8}))
    flat = build_network("Generator", dict(common, channel_base=64, channel_max=8))  # the stylegan3 repo's way
    mixed = build_network("Generator", dict(common, synthesis_kwargs={"channel_base": 64}, channel_max=8))
    assert nested.init_kwargs == flat.init_kwargs == mixed.init_kwargs == expected


def test_label_score_discriminator_stores_every_discriminator_argument():
    D = build_network("LabelScoreDiscriminator", dict(c_dim=3, img_resolution=8, img_channels=1, channel_base=64))
    assert D.init_kwargs == {
        "c_dim": 3, "img_resolution": 8, "img_channels": 1, "architecture": "resnet", "channel_base": 64,
        "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None, "cmap_dim": None, "block_kwargs": {},
        "mapping_kwargs": {}, "epilogue_kwargs": {}}
    assert build_network("LabelScoreDiscriminator", D.init_kwargs).init_kwargs == D.init_kwargs


def test_label_concat_generator_stores_its_own_c_dim_and_mapping_kwargs():
    G = build_network("LabelConcatGenerator", dict(z_dim=4, c_dim=2, w_dim=4, img_resolution=8, img_channels=3,
                                                   mapping_kwargs={"num_layers": 1}, synthesis_kwargs=TINY_SYNTHESIS))
    assert G.init_kwargs == {"z_dim": 4, "c_dim": 2, "w_dim": 4, "img_resolution": 8, "img_channels": 3,
                             "mapping_kwargs": {"num_layers": 1}, "synthesis_kwargs": TINY_SYNTHESIS}


def test_a_label_mapping_may_have_no_layers():
    # StyleGAN2-ADA (TF) conditional discriminators with mapping_layers=0 project onto the raw embedding.
    mapping = MappingNetwork(0, 5, 7, None, num_layers=0, w_avg_beta=None)
    assert [name for name, _ in mapping.named_children()] == ["embed"]
    assert mapping(None, torch.eye(5)).shape == (5, 7)


def test_truncation_moves_only_the_layers_below_the_cutoff_towards_the_average():
    ws = torch.tensor([[[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]])  # [1, 3 layers, 2]
    w_avg = torch.tensor([1.0, 1.0])
    # By hand: w_avg + 0.5 (w - w_avg) for the first two layers; the third stays.
    assert torch.equal(truncate(ws, w_avg, 0.5, 2), torch.tensor([[[1.5, 2.5], [3.5, 4.5], [10.0, 12.0]]]))
    assert torch.equal(truncate(ws, w_avg, 0.5, None), torch.tensor([[[1.5, 2.5], [3.5, 4.5], [5.5, 6.5]]]))
    assert truncate(ws, w_avg, 1, 2) is ws
    assert torch.equal(ws, torch.tensor([[[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]]))  # the input is left alone


def test_w_avg_tracking_keeps_beta_of_the_old_value():
    w_avg = torch.tensor([1.0, -2.0])
    batch = torch.tensor([[3.0, 0.0], [5.0, 4.0]])  # mean [4, 2]
    track_w_avg(w_avg, batch, 0.75)
    assert torch.allclose(w_avg, torch.tensor([0.75 * 1 + 0.25 * 4, 0.75 * -2 + 0.25 * 2]), rtol=0, atol=1e-7)
