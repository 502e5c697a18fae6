"""slimlib.flops / relative_compute / params against analytic counts."""

from __future__ import annotations

import timm
import torch

import slimlib
from slimlib._validation import slimmed_dim
from slimlib.measure._compute import WIDTHS, compute_table, flops, params, relative_compute
from tests.tiny_models import tiny_vit


def analytic_vit_flops(img=224, patch=16, chans=3, d=384, depth=12, heads=6, mlp_ratio=4,
                       width=1.0, prefix=1):
    """2 x MAC of a timm ViT encoder without head: patch conv + blocks (attention included)."""
    d_k, d_h = d // heads, int(d * mlp_ratio)
    dk, dh = slimmed_dim(width, d_k), slimmed_dim(width, d_h)
    patches = (img // patch) ** 2
    n = patches + prefix
    embed = 2 * patches * chans * patch * patch * d
    block = (
        2 * n * d * 3 * heads * dk      # qkv
        + 2 * n * n * heads * dk        # Q K^T
        + 2 * n * n * heads * dk        # A V
        + 2 * n * heads * dk * d        # output projection
        + 2 * n * d * dh * 2            # fc1 + fc2
    )
    return embed + depth * block


def test_widths_are_the_papers_31():
    assert len(WIDTHS) == 31 and WIDTHS[0] == 0.001 and WIDTHS[-1] == 1.0
    assert list(WIDTHS) == sorted(set(WIDTHS))
    assert slimlib.WIDTHS is WIDTHS


def test_vit_s16_matches_analytic_count():
    model = timm.create_model("vit_small_patch16_224", num_classes=0).eval()
    x = torch.randn(1, 3, 224, 224)
    assert flops(model, x) == analytic_vit_flops()
    small = slimlib.slim(model, 0.25)
    assert flops(small, x) == analytic_vit_flops(width=0.25)
    assert flops(slimlib.slim(model, 0.001), x) == analytic_vit_flops(width=0.001)


def test_vit_b16_matches_analytic_count():
    model = timm.create_model("vit_base_patch16_224", num_classes=0).eval()
    x = torch.randn(1, 3, 224, 224)
    expected = analytic_vit_flops(d=768, heads=12)
    assert flops(model, x) == expected
    assert abs(expected / 2e9 - 17.58) < 0.05  # the familiar 17.6 GMACs of ViT-B/16
    assert flops(slimlib.slim(model, 0.1), x) == analytic_vit_flops(d=768, heads=12, width=0.1)


def test_attention_is_counted_on_fused_and_manual_paths():
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    fused = flops(model, x)
    for block in model.blocks:
        block.attn.fused_attn = False
    manual = flops(model, x)
    assert fused == manual
    expected = 2 * analytic_vit_flops(img=32, patch=8, d=48, depth=2, heads=3)
    assert fused == expected


def test_flops_accept_kwargs_and_tuple_inputs():
    model = tiny_vit()
    x = torch.randn(1, 3, 32, 32)
    assert flops(model, (x,)) == flops(model, {"x": x}) == flops(model, x)


def test_flops_restore_train_mode():
    model = tiny_vit().train()
    flops(model, torch.randn(1, 3, 32, 32))
    assert model.training


def test_relative_compute_monotone_with_floor():
    model = tiny_vit(depth=2)
    x = torch.randn(1, 3, 32, 32)
    rel = relative_compute(model, WIDTHS, x)
    assert rel[-1] == 1.0
    assert all(a <= b for a, b in zip(rel, rel[1:], strict=False))
    embed = 2 * 16 * 3 * 64 * 48
    assert rel[0] > embed / flops(model, x)  # unslimmed patch embedding sets a floor


def test_parts_give_the_expected_ordering():
    model = tiny_vit(depth=2)
    x = torch.randn(1, 3, 32, 32)
    both = relative_compute(model, [0.1], x)[0]
    attn = relative_compute(model, [0.1], x, parts=("attn",))[0]
    ffn = relative_compute(model, [0.1], x, parts=("ffn",))[0]
    assert both < attn < 1 and both < ffn < 1


def test_compute_table_columns_and_params():
    model = tiny_vit()
    table = compute_table(model, [0.25, 1.0], torch.randn(1, 3, 32, 32))
    assert list(table.columns) == ["width", "d_k", "d_h", "flops", "rel_compute", "params"]
    assert table["d_k"].tolist() == [4, 16] and table["d_h"].tolist() == [48, 192]
    assert table["params"].iloc[1] == params(model)
    assert table["params"].iloc[0] < table["params"].iloc[1]


def test_params_counts_shared_tensors_once():
    lin = torch.nn.Linear(3, 4)
    shared = torch.nn.Sequential(lin, lin)
    assert params(shared) == 16
    lin.bias.requires_grad_(False)
    assert params(shared, trainable_only=True) == 12


def test_count_attention_false_drops_exactly_the_attention_products():
    model = tiny_vit()
    x = torch.randn(1, 3, 32, 32)
    n, heads, d_k, depth = 17, 3, 16, 2
    attention = depth * 2 * (2 * n * n * heads * d_k)
    assert flops(model, x) - flops(model, x, count_attention=False) == attention
    small = slimlib.slim(model, 0.25)
    assert flops(small, x) - flops(small, x, count_attention=False) == attention // 4


def test_count_norms_adds_fvcore_layer_norm_count():
    model = tiny_vit()  # 2 blocks x 2 norms + final norm, 17 tokens x 48 dims
    x = torch.randn(1, 3, 32, 32)
    extra = flops(model, x, count_norms=True) - flops(model, x)
    assert extra == 5 * 17 * 48 * 10


def test_paper_convention_reproduces_published_ssl4eo_compute():
    """fvcore-style counting (no SDPA products, LayerNorms counted) gives the paper's numbers."""
    from slimlib.book.reference import paper_compute

    model = timm.create_model("vit_small_patch16_224", in_chans=13, num_classes=0).eval()
    x = torch.randn(1, 13, 224, 224)
    widths = [0.001, 0.01, 0.1, 0.5]
    ours = relative_compute(model, widths, x, count_attention=False, count_norms=True)
    paper = paper_compute()
    paper = paper[paper["series"] == "SSL4EO ViT-S (MoCo)"].set_index("s")["rel_compute"]
    for width, value in zip(widths, ours, strict=True):
        assert abs(value - paper[str(width)]) < 2e-4, width
    default = relative_compute(model, [0.001], x)[0]
    assert paper["0.001"] - default > 0.004  # counting attention lowers the floor visibly
