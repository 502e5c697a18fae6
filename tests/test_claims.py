"""Computed verdicts of the paper's claims (slimlib.claims) on hand-made tables."""

import pandas as pd
import pytest

from slimlib import claims, controls


def _row(model, width, value, *, dataset="d", n_test=1000, protocol="knn", order="first",
         seed=0, rel=None, metric="accuracy"):
    return {"model": model, "dataset": dataset, "protocol": protocol, "metric": metric,
            "seed": seed, "width": width, "value": value, "n_test": n_test, "order": order,
            "rel_compute": width if rel is None else rel, "parts": "attn+ffn", "scale": "slimmed"}


def _rs(small_value, full=0.8, rel=0.05):
    return pd.DataFrame([_row("m", 1.0, full, rel=1.0), _row("m", 0.01, small_value, rel=rel)])


def _verdict(table, key):
    return table.set_index("key").loc[key, "verdict"]


def test_rs_85_holds_only_near_85_percent():
    near = claims.evaluate(claims.Evidence(rs=_rs(0.68)))       # 85 %
    far = claims.evaluate(claims.Evidence(rs=_rs(0.40)))        # 50 %
    assert _verdict(near, "rs-85") == claims.HOLDS
    assert _verdict(far, "rs-85") == claims.FAILS
    assert near.set_index("key").loc["rs-85", "this build"] == pytest.approx(0.85)


def test_missing_evidence_is_not_testable_with_a_reason():
    table = claims.evaluate(claims.Evidence())
    assert set(table["verdict"]) == {claims.UNTESTABLE}
    assert table["why"].str.len().min() > 10


def test_random_weights_make_weight_claims_untestable():
    table = claims.evaluate(claims.Evidence(rs=_rs(0.68), pretrained=False))
    assert _verdict(table, "rs-85") == claims.UNTESTABLE
    assert "random weights" in table.set_index("key").loc["rs-85", "why"]


def test_sevenfold_needs_one_percent_compute():
    table = claims.evaluate(claims.Evidence(rs=_rs(0.6, rel=0.05)))
    assert _verdict(table, "v1-sevenfold") == claims.UNTESTABLE
    assert "5.0%" in table.set_index("key").loc["v1-sevenfold", "why"]
    cv = pd.DataFrame([_row("c", 1.0, 0.8, rel=1.0), _row("c", 0.01, 0.05, rel=0.01)])
    ok = claims.evaluate(claims.Evidence(rs=_rs(0.6, rel=0.01), cv_own=cv))
    assert _verdict(ok, "v1-sevenfold") == claims.HOLDS        # 0.75 / 0.0625 = 12


def test_cv_on_rs_direction_with_interval():
    cv = pd.DataFrame([_row("c", 1.0, 0.8, rel=1.0), _row("c", 0.01, 0.4, rel=0.05)])
    table = claims.evaluate(claims.Evidence(rs=_rs(0.7), cv_rs=cv))
    assert _verdict(table, "cv-74-vs-82-95") == claims.HOLDS
    close = pd.DataFrame([_row("c", 1.0, 0.8, rel=1.0), _row("c", 0.01, 0.69, rel=0.05)])
    assert _verdict(claims.evaluate(claims.Evidence(rs=_rs(0.7), cv_rs=close)),
                    "cv-74-vs-82-95") == claims.FAILS


def test_order_deviation_against_threshold():
    rows = [_row("m", w, v, order=o) for o, vals in
            {"first": (0.80, 0.60), "last": (0.80, 0.58), "random": (0.80, 0.59)}.items()
            for w, v in zip((1.0, 0.1), vals, strict=True)]
    assert _verdict(claims.evaluate(claims.Evidence(orders=pd.DataFrame(rows))),
                    "order") == claims.HOLDS
    rows[1]["value"] = 0.40  # first at s = 0.1 falls 19 points below the random mean
    assert _verdict(claims.evaluate(claims.Evidence(orders=pd.DataFrame(rows))),
                    "order") == claims.FAILS


def test_slimmable_gain_moco_not_mae():
    rows = []
    for name, small in (("rs-moco-tiny", 0.4), ("rs-moco-tiny-slimmable", 0.7),
                        ("rs-mae-tiny", 0.5), ("rs-mae-tiny-slimmable", 0.5)):
        rows += [_row(name, 1.0, 0.8), _row(name, 0.1, small)]
    pairs = (("rs-moco-tiny", "rs-moco-tiny-slimmable"), ("rs-mae-tiny", "rs-mae-tiny-slimmable"))
    table = claims.evaluate(claims.Evidence(slimmable=pd.DataFrame(rows), pairs=pairs))
    assert _verdict(table, "slimmable-moco-not-mae") == claims.HOLDS


def test_parts_floors_and_controls():
    parts = {"vit": {"attn": pd.DataFrame({"rel_compute": [1.0, 0.67]}),
                     "ffn": pd.DataFrame({"rel_compute": [1.0, 0.35]})}}
    rows = [_row("m", 1.0, 0.8), _row("m", 0.01, 0.7)]
    rows += [_row(controls.control_label("m", s), w, 0.4) for s in (0, 1) for w in (1.0, 0.01)]
    floor = pd.DataFrame([{"model": "m", "dataset": "d", "protocol": "knn", "seed": 0,
                           "value": 0.5, "n_test": 1000}])
    ev = claims.Evidence(parts=parts, controls=controls.compare(pd.DataFrame(rows), floor),
                         pretrained=False)
    table = claims.evaluate(ev)
    assert _verdict(table, "parts-floors") == claims.HOLDS  # compute needs no weights
    ev.pretrained = True
    assert _verdict(claims.evaluate(ev), "rs-above-controls") == claims.HOLDS


def test_regime_classification():
    widths = (0.01, 0.1, 0.25, 0.5, 1.0)
    rows = []
    for w, deff, acc in zip(widths, (2, 4, 6, 8, 10), (0.5, 0.6, 0.7, 0.75, 0.8), strict=True):
        rows += [_row("m", w, acc), _row("m", w, deff, protocol="features",
                                         metric="participation_ratio")]
    assert claims.redundancy_regime(pd.DataFrame(rows)) == "monotonic"
