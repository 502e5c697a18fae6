"""Per-block sensitivity and the slimming verification table (slimlib.diagnosis._sensitivity)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import slimlib
from slimlib.diagnosis import (
    block_sensitivity,
    sensitivity_html,
    sensitivity_markdown,
    sensitivity_png,
    sensitivity_section,
    slim_block,
    verify_slimming,
)
from tests.tiny_models import tiny_vit


def _pairs(n_train: int = 30, n_test: int = 15, classes: int = 3):
    gen = torch.Generator().manual_seed(0)
    n = n_train + n_test
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, 32, 32, generator=gen) + y[:, None, None, None].float()
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


@pytest.mark.parametrize("parts", [("attn", "ffn"), ("attn",), ("ffn",)])
def test_slim_block_changes_only_that_block(parts):
    model = tiny_vit(depth=3)
    before = _shapes(model)
    new = slim_block(model, 1, 0.5, parts=parts)
    after = _shapes(new)
    assert _shapes(model) == before  # the original is untouched
    changed = {n for n in before if before[n] != after.get(n)}
    assert changed and all(n.startswith("blocks.1.") for n in changed)
    assert any(".attn." in n for n in changed) == ("attn" in parts)
    assert any(".mlp." in n for n in changed) == ("ffn" in parts)
    # the slimmed block is exactly what slimlib.slim makes of it; other blocks are copies
    whole = slimlib.slim(model, 0.5, parts=parts)
    assert {n: s for n, s in after.items() if n.startswith("blocks.1.")} == \
        {n: s for n, s in _shapes(whole).items() if n.startswith("blocks.1.")}
    assert new.blocks[0] is not model.blocks[0]
    assert torch.equal(new.blocks[0].mlp.fc1.weight, model.blocks[0].mlp.fc1.weight)
    assert new.blocks[1].attn is not model.blocks[1].attn


def test_slim_block_by_name_and_errors():
    model = tiny_vit(depth=2)
    assert _shapes(slim_block(model, "blocks.0", 0.5)) == _shapes(slim_block(model, 0, 0.5))
    assert _shapes(slim_block(model, -1, 0.5)) == _shapes(slim_block(model, 1, 0.5))
    with pytest.raises(ValueError, match="no transformer block named"):
        slim_block(model, "blocks.7", 0.5)
    with pytest.raises(ValueError, match="index in"):
        slim_block(model, 2, 0.5)


class _OddAttention(nn.Module):
    """An attention slimlib cannot read (no q/k/v projections)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mix = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.mix(x)


class _Mixer(nn.Module):
    """A block type slimlib does not know (no .attn / .mlp)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mixer = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(x)


def test_verification_table_reads_real_shapes():
    model = tiny_vit(depth=2)
    ver = verify_slimming(model, 0.25)
    assert list(ver.blocks["attention"]) == ["slimmed", "slimmed"]
    row = ver.blocks.iloc[0]
    assert (row.heads, row.d_k, row.d_k_kept, row.d_h, row.d_h_kept) == (3, 16, 4, 192, 48)
    assert "qkv 144×48 → 36×48" in row.shapes and "fc2 48×192 → 48×48" in row.shapes
    slimmed = slimlib.slim(model, 0.25)
    assert ver.params_after == sum(p.numel() for p in slimmed.parameters())
    assert ver.params_before == sum(p.numel() for p in model.parameters())
    assert int(ver.blocks["params_after"].sum()) == \
        sum(p.numel() for p in slimmed.blocks.parameters())
    left = dict(zip(ver.left_alone["module"], ver.left_alone["reason"], strict=True))
    assert "patch_embed" in left and "embedding" in left["patch_embed"]
    assert "norm1 (in each of 2 blocks)" in left and "residual width" in left["norm"]
    assert "token" in left["cls_token"]


def test_verification_lists_blocks_left_alone_with_reason():
    model = tiny_vit(depth=3)
    model.blocks[1].attn = _OddAttention(48)
    model.extra = _Mixer(48)
    ver = verify_slimming(model, 0.5)
    odd = ver.blocks.iloc[1]
    assert odd.attention.startswith("left alone:") and "_OddAttention" in odd.attention
    assert odd.ffn == "slimmed" and math.isnan(odd.d_k) and odd.d_h_kept == 96
    assert "attn" not in odd.shapes and "mlp.fc1" in odd.shapes
    assert list(ver.blocks["attention"][[0, 2]]) == ["slimmed", "slimmed"]
    left = dict(zip(ver.left_alone["module"], ver.left_alone["reason"], strict=True))
    assert "not a transformer block slimlib recognises" in left["extra"]
    assert ver.left_alone.set_index("module").loc["extra", "params"] == 48 * 48 + 48
    only_ffn = verify_slimming(tiny_vit(depth=2), 0.5, parts=("ffn",))
    assert set(only_ffn.blocks["attention"]) == {"left alone: not in parts"}
    assert set(only_ffn.blocks["d_k_kept"]) == {16}


def test_sensitivity_table_rows_and_full_model_drop():
    model = tiny_vit(depth=2)
    train, test = _pairs()
    table = block_sensitivity(model, train, test, widths=(0.5, 0.1), cache=False,
                              progress=False, n_boot=200)
    full, rest = table.iloc[0], table.iloc[1:]
    assert full.part == "full" and full["drop"] == 0.0
    assert (full.drop_lo, full.drop_hi) == (0.0, 0.0)
    assert len(rest) == 2 * 2 * 2
    assert set(zip(rest.block, rest.part, rest.width, strict=True)) == \
        {(b, p, w) for b in (0, 1) for p in ("attn", "ffn") for w in (0.5, 0.1)}
    assert rest["score"].notna().all()
    assert np.allclose(rest["drop"], full.score - rest["score"])
    assert (rest["drop_lo"] <= rest["drop"] + 1e-12).all()
    assert (rest["drop"] <= rest["drop_hi"] + 1e-12).all()
    attn = rest[rest.part == "attn"].set_index("width")
    assert list(attn.loc[0.5, "kept"]) == [8, 8] and list(attn.loc[0.1, "full"]) == [16, 16]
    # the reference is the full model's k-NN score on the same images
    from slimlib import features, probes

    feats = [features.extract(model, d, cache=False, progress=False)[0] for d in (train, test)]
    assert full.score == pytest.approx(probes.knn_score(feats[0], train[1], feats[1], test[1]))


def test_sensitivity_notes_a_part_it_cannot_slim():
    model = tiny_vit(depth=2)
    model.blocks[0].attn = _OddAttention(48)
    train, test = _pairs()
    table = block_sensitivity(model, train, test, widths=(0.5,), cache=False, progress=False,
                              n_boot=50)
    odd = table[(table.block == 0) & (table.part == "attn")].iloc[0]
    assert math.isnan(odd.score) and odd.note.startswith("left alone:")
    assert table[(table.block == 0) & (table.part == "ffn")]["score"].notna().all()


def test_section_renders_markdown_html_and_png():
    model = tiny_vit(depth=2)
    train, test = _pairs()
    section = sensitivity_section(model, train, test, widths=(0.5, 0.1), verify_width=0.25,
                                  verify_why="test", cache=False, progress=False, n_boot=100)
    json.dumps(section)  # JSON-able, as report.json needs
    md = sensitivity_markdown(section)
    assert "## Which blocks tolerate narrowing" in md and "![drop per block" in md
    assert "| block | attention s = 0.5 | attention s = 0.1 | FFN s = 0.5 | FFN s = 0.1 |" in md
    assert "0: blocks.0" in md and "qkv 144×48 → 36×48" in md and "At s = 0.25 (test)" in md
    page = sensitivity_html(section)
    assert "data:image/png;base64," in page and "<h2>What slimming did</h2>" in page
    assert sensitivity_png(section).startswith(b"\x89PNG")


def test_diagnose_adds_the_section_and_can_skip_it(tmp_path):
    from pathlib import Path

    from slimlib.__main__ import _parser
    from tests.diagnosis.test_diagnose import FAST, _folder

    data = str(_folder(tmp_path / "imgs"))
    result = slimlib.diagnose("tests.tiny_models:build", data, out=tmp_path / "on",
                              sensitivity_widths=(0.5,), **{**FAST, "sensitivity": True})
    rows = result["sensitivity"]["rows"]
    assert len(rows) == 1 + 2 * 2 * 1 and rows[0]["drop"] == 0.0
    # the reference is the sweep's full-width model: same k-NN score as the report's s = 1 row
    assert rows[0]["score"] == pytest.approx(result["rows"][0]["score"])
    assert Path(result["paths"]["sensitivity_png"]).is_file()
    assert "Which blocks tolerate narrowing" in Path(result["paths"]["html"]).read_text()
    assert "What slimming did" in Path(result["paths"]["markdown"]).read_text()
    assert "--sensitivity-widths 0.5" in result["command"]
    off = slimlib.diagnose("tests.tiny_models:build", data, out=tmp_path / "off",
                           **{**FAST, "sensitivity": False})
    assert "sensitivity" not in off and "sensitivity_png" not in off["paths"]
    assert "Which blocks" not in Path(off["paths"]["html"]).read_text()
    assert "--no-sensitivity" in off["command"]
    args = _parser().parse_args(["diagnose", "--model", "m", "--data", "d", "--no-sensitivity",
                                 "--sensitivity-widths", "0.5", "0.2"])
    assert args.no_sensitivity and args.sensitivity_widths == [0.5, 0.2]
    with pytest.raises(ValueError, match="sensitivity_widths"):
        slimlib.diagnose("tests.tiny_models:build", data, out=tmp_path / "bad",
                         sensitivity_widths=(1.5,), **FAST)
