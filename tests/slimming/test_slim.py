"""slimlib.slim: equivalence with zeroed channels, identity at width 1, error paths."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from timm.layers import GluMlp, SwiGLU

import slimlib
from slimlib._validation import slimmed_dim
from slimlib.slimming import SlimAttention, describe, find_blocks, slim
from tests.tiny_models import tiny_vit

ATOL = 1e-5


def _zeroed_reference(model, width, parts=("attn", "ffn"), attn_keep=None, ffn_keep=None):
    """The full model with dropped channels zeroed and the slimmed softmax scale.

    ``attn_keep[i]`` / ``ffn_keep[i]`` give the kept per-head (H, d') / hidden (d_h',) indices
    of block i; by default the first ones (the paper's rule).
    """
    ref = copy.deepcopy(model)
    for i, (_, block) in enumerate(find_blocks(ref)):
        if "attn" in parts:
            attn = block.attn
            heads, d_k = attn.num_heads, attn.head_dim
            kept = slimmed_dim(width, d_k)
            keep = attn_keep[i] if attn_keep is not None else torch.arange(kept).expand(heads, -1)
            mask = torch.zeros(heads, d_k, dtype=torch.bool)
            mask.scatter_(1, keep, True)
            rows = mask.reshape(-1).repeat(3)  # [q | k | v] x heads x d_k
            with torch.no_grad():
                attn.qkv.weight[~rows] = 0
                if attn.qkv.bias is not None:
                    attn.qkv.bias[~rows] = 0
            attn.scale = kept ** -0.5
            attn.fused_attn = False  # timm's fused path ignores attn.scale
        if "ffn" in parts:
            mlp = block.mlp
            d_h = mlp.fc2.in_features
            keep = ffn_keep[i] if ffn_keep is not None else torch.arange(slimmed_dim(width, d_h))
            mask = torch.zeros(d_h, dtype=torch.bool)
            mask[keep] = True
            with torch.no_grad():
                if isinstance(mlp, SwiGLU):
                    for layer in (mlp.fc1_g, mlp.fc1_x):
                        layer.weight[~mask] = 0
                        layer.bias[~mask] = 0
                elif isinstance(mlp, GluMlp):
                    both = mask.repeat(2)
                    mlp.fc1.weight[~both] = 0
                    mlp.fc1.bias[~both] = 0
                else:
                    mlp.fc1.weight[~mask] = 0
                    mlp.fc1.bias[~mask] = 0
                mlp.fc2.weight[:, ~mask] = 0
    return ref


ARCHS = {
    "plain": dict(),
    "layerscale+registers": dict(init_values=1e-1, reg_tokens=4, no_embed_class=True),
    "avgpool-no-cls": dict(class_token=False, global_pool="avg"),
    "swiglu": dict(mlp_layer=SwiGLU, act_layer=torch.nn.SiLU),
    "glu": dict(mlp_layer=GluMlp, act_layer=torch.nn.Sigmoid, mlp_ratio=2.0),
    "no-qkv-bias": dict(qkv_bias=False),
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("width", [0.5, 0.25, 0.001])
def test_slim_equals_zeroed_full_model(arch, width):
    model = tiny_vit(**ARCHS[arch])
    x = torch.randn(2, 3, 32, 32)
    small = slim(model, width)
    ref = _zeroed_reference(model, width)
    with torch.no_grad():
        out, expected = small(x), ref(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("parts", [("attn",), ("ffn",)])
def test_slim_single_part_equals_zeroed(parts):
    model = tiny_vit(depth=3)
    x = torch.randn(2, 3, 32, 32)
    small = slim(model, 0.3, parts=parts)
    info = describe(small)
    if parts == ("attn",):
        assert (info["d_h"] == 192).all() and (info["d_k"] == 4).all()
    else:
        assert (info["d_k"] == 16).all() and (info["d_h"] == 57).all()
    with torch.no_grad():
        torch.testing.assert_close(small(x), _zeroed_reference(model, 0.3, parts)(x), atol=ATOL,
                                   rtol=1e-4)


def _recover_indices(model, small):
    """Find which rows of the full weights each slimmed weight row came from."""
    attn_keep, ffn_keep = [], []
    for (_, full), (_, part) in zip(find_blocks(model), find_blocks(small), strict=True):
        heads, d_k, d_new = full.attn.num_heads, full.attn.head_dim, part.attn.head_dim
        q_full = full.attn.qkv.weight[: heads * d_k].reshape(heads, d_k, -1)
        q_part = part.attn.qkv.weight[: heads * d_new].reshape(heads, d_new, -1)
        keep = torch.stack([
            torch.cdist(q_part[h], q_full[h]).argmin(dim=1) for h in range(heads)
        ])
        attn_keep.append(keep)
        ffn_keep.append(torch.cdist(part.mlp.fc1.weight, full.mlp.fc1.weight).argmin(dim=1))
    return attn_keep, ffn_keep


@pytest.mark.parametrize("order", ["last", "random"])
def test_other_orders_equal_zeroed_reference(order):
    model = tiny_vit(depth=2)
    x = torch.randn(2, 3, 32, 32)
    small = slim(model, 0.4, order=order, seed=3)
    attn_keep, ffn_keep = _recover_indices(model, small)
    if order == "last":
        assert attn_keep[0][0].tolist() == list(range(16 - 6, 16))
        assert ffn_keep[0].tolist() == list(range(192 - 76, 192))
    else:
        assert all(k.unique().numel() == k.numel() for k in ffn_keep)
        assert ffn_keep[0].tolist() == sorted(ffn_keep[0].tolist())
        assert ffn_keep[0].tolist() != list(range(76))
        # an independent draw per head
        assert any(not torch.equal(attn_keep[0][0], attn_keep[0][h]) for h in range(1, 3))
    ref = _zeroed_reference(model, 0.4, attn_keep=attn_keep, ffn_keep=ffn_keep)
    with torch.no_grad():
        torch.testing.assert_close(small(x), ref(x), atol=ATOL, rtol=1e-4)


def test_random_order_is_seeded():
    model = tiny_vit()
    a, b, c = (slim(model, 0.5, order="random", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.blocks[0].mlp.fc1.weight, b.blocks[0].mlp.fc1.weight)
    assert not torch.equal(a.blocks[0].mlp.fc1.weight, c.blocks[0].mlp.fc1.weight)


def test_width_one_is_identity_and_input_untouched():
    model = tiny_vit(init_values=1e-2, reg_tokens=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        out = slim(model, 1.0)(x)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    slim(model, 0.1)
    assert model.state_dict().keys() == state.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(type(b.attn).__name__ == "Attention" for b in model.blocks)


def test_slimmed_model_is_physically_smaller_and_keeps_untouched_parts():
    model = tiny_vit(init_values=0.5)
    small = slim(model, 0.25)
    assert slimlib.params(small) < slimlib.params(model)
    block, full = small.blocks[0], model.blocks[0]
    assert block.attn.qkv.weight.shape == (3 * 3 * 4, 48)
    assert block.attn.proj.weight.shape == (48, 3 * 4)
    assert block.mlp.fc1.weight.shape == (48, 48) and block.mlp.fc2.bias.shape == (48,)
    torch.testing.assert_close(block.mlp.fc2.bias, full.mlp.fc2.bias)
    torch.testing.assert_close(block.ls1.gamma, full.ls1.gamma)
    torch.testing.assert_close(block.norm1.weight, full.norm1.weight)
    torch.testing.assert_close(small.patch_embed.proj.weight, model.patch_embed.proj.weight)
    torch.testing.assert_close(small.pos_embed, model.pos_embed)
    torch.testing.assert_close(small.cls_token, model.cls_token)


@pytest.mark.parametrize("width", [0.5, 0.1])
def test_fused_and_manual_paths_agree(width):
    model = slim(tiny_vit(), width)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = model(x)
        for block in model.blocks:
            block.attn.fused_attn = False
        manual = model(x)
    torch.testing.assert_close(fused, manual, atol=ATOL, rtol=1e-4)


def test_scale_choice_is_explicit():
    model = tiny_vit()
    slimmed = slim(model, 0.25)
    original = slim(model, 0.25, scale="original")
    assert math.isclose(slimmed.blocks[0].attn.scale, 4 ** -0.5)
    assert math.isclose(original.blocks[0].attn.scale, 16 ** -0.5)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = slimmed(x), original(x)
    assert not torch.allclose(a, b, atol=1e-4)
    # scale="original" equals the zeroed full model with the untouched 1/sqrt(d_k) scale
    ref = _zeroed_reference(model, 0.25)
    for block in ref.blocks:
        block.attn.scale = 16 ** -0.5
    with torch.no_grad():
        torch.testing.assert_close(b, ref(x), atol=ATOL, rtol=1e-4)


def test_qk_norm_slims_and_runs_both_paths():
    model = tiny_vit(qk_norm=True)
    small = slim(model, 0.5)
    assert small.blocks[0].attn.q_norm.weight.shape == (8,)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = small(x)
        for block in small.blocks:
            block.attn.fused_attn = False
        torch.testing.assert_close(fused, small(x), atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(slim(model, 1.0)(x), model(x), atol=1e-6, rtol=1e-5)


def test_slim_twice_composes():
    model = tiny_vit()
    x = torch.randn(1, 3, 32, 32)
    with pytest.warns(UserWarning, match="already slimmed"):
        twice = slim(slim(model, 0.5), 0.5)
    assert twice.blocks[0].attn.head_dim == 4 and twice.blocks[0].mlp.fc2.in_features == 48
    with torch.no_grad():
        torch.testing.assert_close(twice(x), slim(model, 0.25)(x), atol=ATOL, rtol=1e-4)


def test_dofa_from_torchgeo_slims_like_zeroing():
    from torchgeo.models import dofa_small_patch16_224

    model = dofa_small_patch16_224().eval()
    wavelengths = [0.665, 0.56, 0.49]
    x = torch.randn(1, 3, 64, 64)
    model.img_size = 64
    small = slim(model, 0.2)
    ref = _zeroed_reference(model, 0.2)
    try:
        with torch.no_grad():
            out, expected = small.forward_features(x, wavelengths), ref.forward_features(x, wavelengths)
    except Exception:  # pragma: no cover - fixed input size in some versions
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            out, expected = small.forward_features(x, wavelengths), ref.forward_features(x, wavelengths)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_describe_reports_every_block():
    info = describe(tiny_vit(depth=3))
    assert list(info["block"]) == [0, 1, 2]
    assert set(info.columns) >= {"d", "heads", "d_k", "d_h"}
    assert (info["d_k"] == 16).all() and (info["d_h"] == 192).all() and (info["heads"] == 3).all()


@pytest.mark.parametrize(("width", "align", "d_k", "d_h"), [
    (0.1, 8, 8, 24),     # floor rule: d_k' = 1, d_h' = 19 -> rounded up to 8 and 24
    (0.25, 8, 8, 48),    # already multiples: unchanged (4 -> 8 for d_k)
    (0.3, 5, 5, 60),     # 4 -> 5, 57 -> 60
    (0.9, 8, 16, 176),   # 14 -> 16 = d_k (capped at the full size), 172 -> 176
    (0.9, 32, 16, 192),  # rounding up past the full size is capped: 16 of 16, 192 of 192
    (0.1, 1, 1, 19),     # align=1 is the floor rule
])
def test_align_rounds_kept_dims_up_to_a_multiple_capped_at_full(width, align, d_k, d_h):
    model = tiny_vit()  # d_k = 16, d_h = 192
    small = slim(model, width, align=align)
    info = describe(small)
    assert (info["d_k"] == d_k).all() and (info["d_h"] == d_h).all()
    assert info.attrs["align"] == align and slimlib.slimming.slimmed_align(small) == align
    attn = small.blocks[0].attn
    assert attn.qkv.out_features == 3 * 3 * d_k and attn.proj.in_features == 3 * d_k
    assert attn.scale == pytest.approx(d_k ** -0.5)  # scale="slimmed" uses the kept d_k'
    assert small.blocks[0].mlp.fc1.out_features == d_h == small.blocks[0].mlp.fc2.in_features
    for kept, full in ((d_k, 16), (d_h, 192)):
        assert kept % align == 0 or kept == full
    # the aligned model is the floor-rule model of the same kept dims: same function
    ref = _zeroed_reference(model, width, attn_keep=[torch.arange(d_k).expand(3, -1)] * 2,
                            ffn_keep=[torch.arange(d_h)] * 2)
    for _, block in find_blocks(ref):
        block.attn.scale = d_k ** -0.5
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(small(x), ref(x), atol=1e-5)


def test_align_default_is_the_papers_floor_rule():
    model = tiny_vit()
    plain, none = slim(model, 0.1), slim(model, 0.1, align=None)
    assert describe(plain).equals(describe(none)) and describe(plain).attrs["align"] is None
    assert slimlib.slimming.slimmed_align(plain) is None
    assert plain.blocks[0].attn.head_dim == slimmed_dim(0.1, 16) == 1
    assert plain.blocks[0].mlp.fc1.out_features == slimmed_dim(0.1, 192) == 19
    assert not hasattr(plain, slimlib.slimming.ALIGN_ATTR)


def test_slim_keeps_train_mode():
    model = tiny_vit().train()
    small = slim(model, 0.5)
    assert small.training and small.blocks[0].attn.training
    assert isinstance(small.blocks[0].attn, SlimAttention)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.0001, 2, float("nan"), float("inf"), "0.5",
                                 None, True, [0.5]])
def test_bad_width_raises(bad):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        slim(tiny_vit(), bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(parts=("attn", "heads")), "parts"),
        (dict(parts=()), "parts"),
        (dict(order="middle"), "order"),
        (dict(scale="none"), "scale"),
        (dict(order="random", seed=1.5), "seed"),
        (dict(align=0), "align must be a positive integer"),
        (dict(align=-8), "align must be a positive integer"),
        (dict(align=8.0), "align must be a positive integer"),
        (dict(align=True), "align must be a positive integer"),
        (dict(align="8"), "align must be a positive integer"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        slim(tiny_vit(), 0.5, **kwargs)


def test_unknown_block_raises_with_names():
    from timm.layers import AttentionRope

    model = tiny_vit()
    model.blocks[1].attn = AttentionRope(48, num_heads=3)
    with pytest.raises(TypeError, match=r"blocks\.1.*AttentionRope.*Supported"):
        slim(model, 0.5)
    # FFN-only slimming does not touch the attention, so it is allowed.
    assert slim(model, 0.5, parts=("ffn",)).blocks[1].mlp.fc1.out_features == 96


def test_model_without_blocks_raises():
    with pytest.raises(TypeError, match="no transformer blocks"):
        slim(torch.nn.Sequential(torch.nn.Linear(4, 4)), 0.5)


# ------------------------------------------------- separate q/k/v attention (issue 10 item 3)
class _HFSelfAttention(torch.nn.Module):
    """Hugging Face ViT-style attention: query/key/value Linears, out_proj, num_attention_heads."""

    def __init__(self, dim=24, heads=3):
        super().__init__()
        self.num_attention_heads, self.attention_head_size = heads, dim // heads
        self.query, self.key, self.value = (torch.nn.Linear(dim, dim) for _ in range(3))
        self.out_proj = torch.nn.Linear(dim, dim)
        self.dropout = torch.nn.Dropout(0.0)

    def forward(self, x, attn_mask=None):
        B, N, C = x.shape
        H, D = self.num_attention_heads, self.attention_head_size
        q, k, v = (lin(x).view(B, N, H, D).transpose(1, 2)
                   for lin in (self.query, self.key, self.value))
        attn = ((q @ k.transpose(-2, -1)) / math.sqrt(D)).softmax(-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class _ToyBlock(torch.nn.Module):
    def __init__(self, attn, dim=24):
        super().__init__()
        from timm.layers import Mlp

        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.attn, self.mlp = attn, Mlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _toy(attn_cls=_HFSelfAttention, depth=2):
    torch.manual_seed(0)
    return torch.nn.Sequential(*(_ToyBlock(attn_cls()) for _ in range(depth))).eval()


def _split_reference(model, width):
    """Full toy model with dropped q/k/v rows zeroed, FFN units zeroed, slimmed scale."""
    ref = copy.deepcopy(model)
    for block in ref:
        attn = block.attn
        H, D = attn.num_attention_heads, attn.attention_head_size
        kept = slimmed_dim(width, D)
        rows = (torch.arange(D) < kept).repeat(H)
        with torch.no_grad():
            for lin in (attn.query, attn.key, attn.value):
                lin.weight[~rows] = 0
                lin.bias[~rows] = 0
        scale = kept ** -0.5

        def forward(x, attn_mask=None, attn=attn, scale=scale):
            B, N, C = x.shape
            h, d = attn.num_attention_heads, attn.attention_head_size
            q, k, v = (lin(x).view(B, N, h, d).transpose(1, 2)
                       for lin in (attn.query, attn.key, attn.value))
            a = ((q @ k.transpose(-2, -1)) * scale).softmax(-1)
            return attn.out_proj((a @ v).transpose(1, 2).reshape(B, N, C))

        attn.forward = forward
        d_h = block.mlp.fc2.in_features
        keep = torch.arange(d_h) < slimmed_dim(width, d_h)
        with torch.no_grad():
            block.mlp.fc1.weight[~keep] = 0
            block.mlp.fc1.bias[~keep] = 0
    return ref


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25, 0.1])
def test_separate_qkv_attention_slims_like_zeroed_channels(width):
    model = _toy()
    x = torch.randn(2, 7, 24)
    small = slim(model, width)
    with torch.no_grad():
        torch.testing.assert_close(small(x), _split_reference(model, width)(x),
                                   atol=ATOL, rtol=1e-4)
    attn = small[0].attn
    kept = slimmed_dim(width, 8)
    assert isinstance(attn, SlimAttention) and attn.layout == "split"
    assert attn.query.weight.shape == (3 * kept, 24) and attn.out_proj.weight.shape == (24, 3 * kept)
    info = describe(small)
    assert (info["d_k"] == kept).all() and (info["heads"] == 3).all() and (info["d"] == 24).all()
    keys = set(small.state_dict())
    assert "0.attn.query.weight" in keys and "0.attn.out_proj.bias" in keys


def test_separate_qkv_flops_and_switchable_width_agree_with_slim():
    from slimlib.measure._compute import compute_table
    from slimlib.train.slimmable import width as switch

    model = _toy()
    x = torch.randn(1, 7, 24)
    table = compute_table(model, [0.25, 1.0], x)
    assert table["d_k"].tolist() == [2, 8] and table["rel_compute"].iloc[0] < 0.5
    with torch.no_grad(), switch(model, 0.25):
        switched = model(x)
    with torch.no_grad():
        torch.testing.assert_close(switched, slim(model, 0.25)(x), atol=ATOL, rtol=1e-4)


def test_unknown_separate_attention_is_refused():
    class RelPosAttention(_HFSelfAttention):
        def __init__(self):
            super().__init__()
            self.rel_pos = torch.nn.Linear(8, 8)

    class NoHeads(_HFSelfAttention):
        def __init__(self):
            super().__init__()
            del self.num_attention_heads

    for cls, why in [(RelPosAttention, "rel_pos"), (NoHeads, "num_heads")]:
        with pytest.raises(TypeError, match=why):
            slim(_toy(cls), 0.5)
    info = describe(_toy(RelPosAttention))
    assert (info["d_k"] == "unknown").all() and (info["heads"] == "unknown").all()


# ----------------------------------------------------------- issue 13 item 7: what slim keeps
def test_forward_hooks_on_attention_and_fc1_are_carried_over():
    model = tiny_vit()
    seen = []
    model.blocks[0].attn.register_forward_hook(lambda m, i, o: seen.append(("attn", o.shape)))
    model.blocks[0].mlp.fc1.register_forward_hook(lambda m, i, o: seen.append(("fc1", o.shape)))
    model.blocks[0].attn.register_forward_pre_hook(lambda m, i: seen.append(("pre", None)))
    small = slim(model, 0.5)
    seen.clear()
    with torch.no_grad():
        small(torch.randn(1, 3, 32, 32))
    assert ("pre", None) in seen
    assert ("attn", torch.Size([1, 17, 48])) in seen
    assert ("fc1", torch.Size([1, 17, 96])) in seen


def test_backward_hooks_on_replaced_modules_are_refused():
    model = tiny_vit()
    model.blocks[1].mlp.fc1.register_full_backward_hook(lambda m, gi, go: None)
    with pytest.raises(ValueError, match="backward hooks"):
        slim(model, 0.5)
    slim(model, 0.5, parts=("attn",))  # fc1 is not replaced then


def test_requires_grad_is_preserved_including_qk_norm():
    model = tiny_vit(qk_norm=True)
    model.requires_grad_(False)
    model.blocks[0].attn.q_norm.weight.requires_grad_(True)
    small = slim(model, 0.5)
    grads = {n: p.requires_grad for n, p in small.named_parameters()}
    assert grads.pop("blocks.0.attn.q_norm.weight") is True
    assert not any(grads.values()), [n for n, g in grads.items() if g]


def test_softmax_scale_is_in_the_state_and_a_mismatch_is_detected():
    model = tiny_vit()
    original = slim(model, 0.5, scale="original")
    state = original.state_dict()
    assert "blocks.0.attn._extra_state" in state
    default = slim(model, 0.5)
    with pytest.raises(ValueError, match="softmax scale"):
        default.load_state_dict(state)
    again = slim(model, 0.5, scale="original")
    again.load_state_dict(state)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), original(x))


def test_slimming_a_slimmed_model_records_the_cumulative_width_and_warns(tmp_path):
    """Before: ``slim(slim(m, 0.5), 0.5)`` compounded to 0.25 with no warning and no record."""
    import json

    import slimlib
    from slimlib.slimming import slimmed_widths

    model = tiny_vit()
    assert slimmed_widths(model) == {"attn": 1.0, "ffn": 1.0}
    once = slim(model, 0.5)
    assert slimmed_widths(once) == {"attn": 0.5, "ffn": 0.5}
    with pytest.warns(UserWarning, match="already slimmed .* the result has width attn 0.25, "
                                         "ffn 0.25 of the original"):
        twice = slim(once, 0.5)
    assert slimmed_widths(twice) == {"attn": 0.25, "ffn": 0.25}
    table = describe(twice)
    assert set(table["attn_width"]) == {0.25} and set(table["ffn_width"]) == {0.25}
    assert set(describe(model)["attn_width"]) == {1.0}
    # one part, then the other: no compounding, so no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed = slim(slim(model, 0.5, parts=("ffn",)), 0.25, parts=("attn",))
    assert slimmed_widths(mixed) == {"attn": 0.25, "ffn": 0.5}
    # the export records it and the reloaded model reports it
    from tests.tiny_models import build

    with pytest.warns(UserWarning, match="already slimmed"):
        twice = slim(slim(build(), 0.5), 0.5)
    path = slimlib.export(twice, tmp_path / "t.safetensors", builder="tests.tiny_models:build")
    assert json.loads((tmp_path / "t.json").read_text())["widths"] == {"attn": 0.25, "ffn": 0.25}
    assert slimmed_widths(slimlib.load_slimmed(path)) == {"attn": 0.25, "ffn": 0.25}
