"""Controls: random-init networks and the embedding-only floor."""

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from slimlib import book
from slimlib.sweeping import controls


def _vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2,
                             img_size=32, patch_size=8).eval()


def test_embedding_only_skips_every_block_and_keeps_the_rest():
    model = _vit()
    floor = controls.embedding_only(model)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tokens = model.norm(model._pos_embed(model.patch_embed(x)))
        expected = model.forward_head(tokens, pre_logits=True)
        got = floor(x)
        full = model(x)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, full, atol=1e-3)  # the blocks did something in the original
    assert all(isinstance(b, controls.SkippedBlock) for b in floor.blocks)
    assert not isinstance(model.blocks[0], controls.SkippedBlock)  # original untouched


def test_embedding_only_refuses_models_without_blocks():
    with pytest.raises(TypeError, match="no transformer blocks"):
        controls.embedding_only(torch.nn.Linear(3, 3))


def test_labels_round_trip():
    label = controls.control_label("galileo-nano", 2)
    assert label == "galileo-nano [random init 2]"
    assert controls.split_label(label) == ("galileo-nano", 2)
    assert controls.split_label("rs-moco-tiny") == ("rs-moco-tiny", None)
    labels = ["a", controls.control_label("a", 0), controls.control_label("b", 1), "b"]
    assert controls.is_control(labels).tolist() == [False, True, True, False]
    assert controls.is_control(labels, of=["b"]).tolist() == [False, False, True, False]


def test_random_init_models_are_seeded_and_differ():
    a = controls.random_init_models("rs-moco-tiny", seeds=(0, 1))
    b = controls.random_init_models("rs-moco-tiny", seeds=(0,))
    w = [next(m.parameters()).detach() for m in a.values()]
    assert not torch.equal(w[0], w[1])
    assert torch.equal(w[0], next(b["rs-moco-tiny [random init 0]"].parameters()).detach())
    with pytest.raises(ValueError, match="at least one seed"):
        controls.random_init_models("rs-moco-tiny", seeds=())


def _rows(model, width, value, seed=0, n_test=100):
    return {"model": model, "dataset": "d", "protocol": "knn", "seed": seed, "width": width,
            "value": value, "rel_compute": width, "n_test": n_test}


def test_compare_computes_retention_gain_and_above_random():
    rows = [_rows("m", 1.0, 0.8), _rows("m", 0.1, 0.6)]
    for s, (full, small) in enumerate([(0.5, 0.45), (0.7, 0.55)]):
        rows += [_rows(controls.control_label("m", s), 1.0, full),
                 _rows(controls.control_label("m", s), 0.1, small)]
    floor = pd.DataFrame([{"model": "m", "dataset": "d", "protocol": "knn", "seed": 0,
                           "value": 0.4, "n_test": 100}])
    out = controls.compare(pd.DataFrame(rows), floor).set_index("width")
    assert out.loc[0.1, "retention"] == pytest.approx(0.75)
    assert out.loc[0.1, "random_mean"] == pytest.approx(0.5)
    assert out.loc[0.1, "random_min"] == pytest.approx(0.45)
    assert out.loc[0.1, "random_retention"] == pytest.approx(0.5 / 0.6)
    assert out.loc[0.1, "above_random"] == pytest.approx(0.1)
    assert out.loc[0.1, "gain_kept"] == pytest.approx((0.6 - 0.4) / (0.8 - 0.4))
    assert out.loc[0.1, "se"] == pytest.approx(np.sqrt(0.6 * 0.4 / 100))
    assert out.loc[1.0, "n_random"] == 2


def test_compare_without_controls_raises():
    with pytest.raises(ValueError, match="random-init controls"):
        controls.compare(pd.DataFrame([_rows("m", 1.0, 0.8)]))


def _two_seed_comparison() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sweep rows of model ``m`` (0.8 at s = 1, 0.6 at s = 0.1) and two random-init seeds
    (0.5 / 0.6 at s = 1, 0.45 at s = 0.1), and their :func:`controls.compare` with a floor of
    0.4."""
    rows = [_rows("m", 1.0, 0.8), _rows("m", 0.1, 0.6)]
    for s in (0, 1):
        rows += [_rows(controls.control_label("m", s), 1.0, 0.5 + 0.1 * s),
                 _rows(controls.control_label("m", s), 0.1, 0.45)]
    floor = pd.DataFrame([{"model": "m", "dataset": "d", "protocol": "knn", "seed": 0,
                           "value": 0.4, "n_test": 100}])
    return pd.DataFrame(rows), controls.compare(pd.DataFrame(rows), floor)


def test_with_controls_draws_band_and_floor():
    import matplotlib

    matplotlib.use("Agg")
    from slimlib.book import plotting

    _, cmp = _two_seed_comparison()
    fig = plotting.with_controls(cmp)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("random init" in t for t in labels)
    assert any("embedding-only floor 0.400" in t for t in labels)
    with pytest.raises(ValueError, match="one model"):
        two = pd.concat([cmp] * 2, ignore_index=True)
        two.loc[two.index[:2], "model"] = "other"
        plotting.with_controls(two)


@pytest.mark.data
def test_controls_for_runs_model_controls_and_floor_on_real_data(data_root):
    from slimlib.book import profiles

    cfg = profiles.resolve("smoke", data_root=str(data_root),
                           datasets=["eurosat-rgb", "eurosat-ms"], limit_per_class=4,
                           test_limit_per_class=2)
    rows, floor, cmp = book.controls_for(cfg, ["rs-moco-tiny"])
    assert set(rows["model"]) == {"rs-moco-tiny", "rs-moco-tiny [random init 0]",
                                  "rs-moco-tiny [random init 1]"}
    assert set(cmp["dataset"]) == {"eurosat-rgb", "eurosat-ms"}  # the RGB model fits both
    assert set(cmp["width"]) == set(cfg.control_widths)
    assert (cmp["n_random"] == 2).all()
    # rs-moco-tiny is CLS-pooled: its floor is the mean of its embedding tokens, which vary
    # over images (with no block run its CLS token alone would be one constant: chance)
    assert not floor["degenerate"].any()
    assert (floor["outcomes"].str.len() > 0).all()
    # the floor's outcomes list the sweep's test images (cross-fitted data: every image), so
    # every difference is paired image by image
    assert (cmp["interval"] == controls.PAIRED).all(), cmp[["dataset", "interval"]]
    assert (cmp["above_floor_lo"] <= cmp["above_floor"]).all()
    assert (cmp["above_floor"] <= cmp["above_floor_hi"]).all()
    defined = cmp["gain_kept_note"] == ""
    assert np.isfinite(cmp.loc[defined, "gain_kept"]).all()
    assert cmp.loc[~defined, "gain_kept"].isna().all()


@pytest.mark.data
def test_shared_controls_run_the_random_init_once_and_stand_for_every_model(data_root):
    from slimlib.book import profiles

    cfg = profiles.resolve("smoke", data_root=str(data_root), datasets=["eurosat-rgb"],
                           limit_per_class=4, test_limit_per_class=2)
    names = ["rs-moco-tiny", "rs-mae-tiny"]
    rows, floor, cmp = book.shared_controls_for(cfg, names, protocols=("knn",))
    ctrl = {m: rows[rows["model"].map(lambda s, m=m: controls.split_label(s) == (m, 0))]
            for m in names}
    assert len(ctrl["rs-mae-tiny"]) == len(ctrl["rs-moco-tiny"]) > 0
    assert ctrl["rs-mae-tiny"]["value"].tolist() == ctrl["rs-moco-tiny"]["value"].tolist()
    assert set(floor["model"]) == set(names)  # each model's own floor
    assert set(cmp["model"]) == set(names)
    by = cmp.set_index(["model", "width"])["random_mean"]
    assert by["rs-mae-tiny"].tolist() == by["rs-moco-tiny"].tolist()
    pre = cmp.set_index(["model", "width"])["value"]
    assert pre["rs-mae-tiny"].tolist() != pre["rs-moco-tiny"].tolist()  # own pretrained rows


def test_shared_controls_refuse_models_with_different_random_init():
    from slimlib.book import profiles

    cfg = profiles.resolve("smoke")
    with pytest.raises(ValueError, match="different random-init"):
        book.shared_controls_for(cfg, ["rs-moco-tiny", "galileo-nano-rgb"])
    with pytest.raises(ValueError, match="at least one"):
        book.shared_controls_for(cfg, [])


def test_control_band_and_per_curve_floors_on_one_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from slimlib.book import plotting

    _, cmp = _two_seed_comparison()
    fig, ax = plt.subplots()
    plotting.control_band(cmp, ax, retention=True)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    # random init over its own width-1 mean (0.55): 0.45 / 0.55 at s = 0.1, 1.0 at s = 1
    assert band.min() == pytest.approx(0.45 / 0.55, abs=1e-9)
    assert band.max() == pytest.approx(0.6 / 0.55, abs=1e-9)
    assert [ln.get_ydata()[0] for ln in ax.lines if ln.get_linestyle() == ":"] == \
        pytest.approx([0.4 / 0.8])
    ours = cmp.assign(run="m", rel_compute_paper=cmp["rel_compute"])
    paper = pd.DataFrame({"series": ["p", "p"], "x": [0.1, 1.0], "retention": [0.5, 1.0]})
    fig, ax = plt.subplots()
    plotting.ours_vs_paper(ours, paper, hue="run", floors={"m": 0.3}, ax=ax)
    floors = [ln for ln in ax.lines if ln.get_label() == "m: embedding-only floor"]
    assert len(floors) == 1 and floors[0].get_ydata()[0] == 0.3
    with pytest.raises(ValueError, match="not curves"):
        plotting.ours_vs_paper(ours, paper, hue="run", floors={"other": 0.3})
    plt.close("all")


def test_at_smallest_reads_differences_against_their_se():
    rows = [_rows("m", 1.0, 0.8, n_test=400), _rows("m", 0.01, 0.6, n_test=400),
            _rows("m", 0.5, 0.7, n_test=400)]
    for s in (0, 1):
        rows += [_rows(controls.control_label("m", s), w, v, n_test=400)
                 for w, v in ((1.0, 0.5), (0.01, 0.45), (0.5, 0.5))]
    floor = pd.DataFrame([{"model": "m", "dataset": "d", "protocol": "knn", "seed": 0,
                           "value": 0.58, "n_test": 400}])
    out = controls.at_smallest(controls.compare(pd.DataFrame(rows), floor))
    assert len(out) == 1 and out.loc[0, "width"] == 0.01
    assert out.loc[0, "vs random init"] == "above"          # 0.15 vs 2 * 0.049
    assert out.loc[0, "vs embedding-only floor"] == "within noise"  # 0.02 vs 2 * 0.049
    assert list(controls.distinguishable([-1.0], [0.1])) == ["below"]


def test_cls_pooled_floor_is_not_a_constant():
    model = _vit()  # timm's default pooling for this ViT: the CLS token
    assert model.global_pool == "token"
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        no_blocks = controls.embedding_only(model)(x)
        floor = controls.embedding_floor(model)(x)
        tokens = model._pos_embed(model.patch_embed(x))
    # no block run: the CLS token is the same for every image
    assert controls.degenerate_features(no_blocks.numpy())
    # the floor: mean of the patch tokens as the model embeds them (class token dropped)
    assert not controls.degenerate_features(floor.numpy())
    assert floor.std(dim=0).max() > 1e-3
    assert torch.allclose(floor, tokens[:, 1:].mean(dim=1), atol=1e-6)
    assert not isinstance(model.blocks[0], controls.SkippedBlock)  # original untouched


def test_floor_scores_carry_outcomes_and_flag_constant_features():
    from slimlib.sweeping import outcomes

    model = _vit()
    g = torch.Generator().manual_seed(3)
    y = torch.arange(4).repeat_interleave(6)
    x = torch.randn(24, 3, 32, 32, generator=g) + y[:, None, None, None].float()
    data = {"toy": ((x[::2], y[::2]), (x[1::2], y[1::2]))}
    out = controls.floor_scores(model, data, name="toy-vit", protocols=("knn",))
    assert not out.loc[0, "degenerate"]
    got = outcomes.decode(out.loc[0, "outcomes"])
    assert got.labels.tolist() == y[1::2].tolist()
    per_class = [got.correct[got.labels == c].mean() for c in range(4)]
    assert out.loc[0, "value"] == pytest.approx(np.mean(per_class))


def _outcome_rows(model, width, correct, labels, seed=0):
    from slimlib.sweeping import outcomes

    preds = np.where(correct, labels, (labels + 1) % 4)
    row = _rows(model, width, float(np.mean([correct[labels == c].mean() for c in range(4)])),
                seed=seed, n_test=labels.size)
    row["outcomes"] = outcomes.encode(labels, preds)
    return row


def test_compare_gives_paired_intervals_when_rows_carry_outcomes():
    from slimlib.sweeping import outcomes

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    full = rng.random(200) < 0.9
    small = full & (rng.random(200) < 0.85)
    floor_ok = small & (rng.random(200) < 0.9)     # the floor gets a subset of the same images
    rand = small & (rng.random(200) < 0.8)
    rows = [_outcome_rows("m", 1.0, full, labels), _outcome_rows("m", 0.1, small, labels)]
    for s in (0, 1):
        rows += [_outcome_rows(controls.control_label("m", s), w, rand, labels)
                 for w in (1.0, 0.1)]
    floor_value = float(np.mean([floor_ok[labels == c].mean() for c in range(4)]))
    floor = pd.DataFrame([{"model": "m", "dataset": "d", "protocol": "knn", "seed": 0,
                           "value": floor_value, "n_test": 200, "degenerate": False,
                           "outcomes": outcomes.encode(labels, np.where(floor_ok, labels,
                                                                   (labels + 1) % 4))}])
    table = pd.DataFrame(rows)
    paired = controls.compare(table, floor, n_boot=400).set_index("width").loc[0.1]
    plain = controls.compare(table.drop(columns="outcomes"),
                             floor.drop(columns="outcomes")).set_index("width").loc[0.1]
    assert paired["interval"] == controls.PAIRED and plain["interval"] == controls.BINOMIAL
    for stat in ("above_floor", "above_random"):
        assert paired[f"{stat}_lo"] <= paired[stat] <= paired[f"{stat}_hi"]
        assert paired[stat] == pytest.approx(plain[stat])
        # both sides fail on the same images: the paired interval is much narrower
        assert paired[f"{stat}_hi"] - paired[f"{stat}_lo"] < \
            0.6 * (plain[f"{stat}_hi"] - plain[f"{stat}_lo"])
    assert paired["above_floor_lo"] > 0  # paired, the small gap is resolved
    assert paired["gain_kept_lo"] <= paired["gain_kept"] <= paired["gain_kept_hi"]
    assert np.isnan(plain["gain_kept_lo"])


def test_gain_kept_is_never_computed_from_a_degenerate_floor():
    rows = [_rows("m", 1.0, 0.8), _rows("m", 0.1, 0.6)]
    rows += [_rows(controls.control_label("m", 0), w, 0.3) for w in (1.0, 0.1)]
    base = {"model": "m", "dataset": "d", "protocol": "knn", "seed": 0, "n_test": 100}
    constant = pd.DataFrame([{**base, "value": 0.1, "degenerate": True}])
    out = controls.compare(pd.DataFrame(rows), constant)
    assert out["gain_kept"].isna().all()
    assert (out["gain_kept_note"] == controls.FLOOR_DEGENERATE).all()
    assert out["floor_degenerate"].all()
    beaten = pd.DataFrame([{**base, "value": 0.85, "degenerate": False}])
    out = controls.compare(pd.DataFrame(rows), beaten)
    assert out["gain_kept"].isna().all()
    assert (out["gain_kept_note"] == controls.FLOOR_NOT_BEATEN).all()
    fine = pd.DataFrame([{**base, "value": 0.4, "degenerate": False}])
    out = controls.compare(pd.DataFrame(rows), fine).set_index("width")
    assert out.loc[0.1, "gain_kept"] == pytest.approx(0.5)
    assert out.loc[0.1, "gain_kept_note"] == ""
