"""The rules of evidence (slimlib.book.claims.rules): one vocabulary, one policy."""

import math

import pytest

from slimlib.book.claims import rules as er

BAND = er.Criterion(0.10, 0.33, er.MEETS, "10–33 %")
AT_MOST = er.Criterion(-math.inf, 0.028, er.WITHIN, "≤ 2.8 points")


def test_imagenet_claim_on_miniature_cv_models_is_not_testable_with_an_indication():
    scope = er.Scope(er.CV_FM, er.IMAGENET_DATA, budget=0.029)
    ruling = er.judge(0.95, 0.75, 1.15, BAND, scope=scope, models=["cv-moco-tiny"],
                      datasets=["cifar10"], reached=0.04)
    assert ruling.verdict == er.NOT_TESTABLE and not ruling.counted
    assert "cv-moco-tiny" in ruling.why and er.SLIMLIB in ruling.why
    assert ruling.indication.startswith("indication only") and "0.950" in ruling.indication
    assert "does not meet the criterion" in ruling.indication


def test_registered_models_say_who_pretrained_them():
    assert er.pretrained_by("galileo-nano") == er.AUTHORS
    assert er.pretrained_by("mae-vitb16-imagenet") == er.AUTHORS
    assert er.pretrained_by("cv-moco-tiny") == er.SLIMLIB
    assert er.pretrained_by("galileo-nano", pretrained=False) == er.NOBODY


def test_scope_checks_kind_data_and_budget():
    rs = er.Scope(er.RS_FM, er.RS_DATA, budget=0.064)
    ok = dict(models=["galileo-nano"], datasets=["eurosat-rgb"])
    assert er.out_of_scope(rs, **ok, reached=0.05) is None
    assert "6.4%" in er.out_of_scope(rs, **ok, reached=0.08)
    assert "random weights" in er.out_of_scope(rs, **ok, reached=0.05, pretrained=False)
    assert "cifar" in er.out_of_scope(rs, models=["galileo-nano"], datasets=["cifar10"],
                                      reached=0.05)
    assert "stand-ins" in er.out_of_scope(rs, models=["rs-moco-tiny"], datasets=["eurosat-rgb"],
                                          reached=0.05)
    pair = er.Scope(er.PAIR, er.RS_DATA)
    assert er.out_of_scope(pair, models=["rs-moco-tiny", "rs-moco-tiny-slimmable"],
                           datasets=["eurosat-rgb"]) is None


@pytest.mark.parametrize("value,lo,hi", [(0.034, 0.0, 0.09), (0.05, 0.03, 0.07),
                                         (0.03, 0.029, 0.031)])
def test_a_verdict_cannot_hold_when_the_statistic_fails_the_criterion(value, lo, hi):
    assert not AT_MOST.passes(value)
    assert er.judge(value, lo, hi, AT_MOST).verdict != er.HOLDS


def test_within_needs_the_whole_interval_meets_needs_the_point():
    assert er.decide(0.01, 0.0, 0.02, AT_MOST)[0] == er.HOLDS
    assert er.decide(0.02, 0.0, 0.05, AT_MOST)[0] == er.NOT_TESTABLE     # straddles: no +tolerance
    assert er.decide(0.06, 0.04, 0.08, AT_MOST)[0] == er.FAILS
    assert er.decide(0.20, 0.15, 0.25, BAND)[0] == er.HOLDS
    assert er.decide(0.40, 0.30, 0.50, BAND)[0] == er.NOT_TESTABLE       # point outside, meets
    assert er.decide(0.50, 0.40, 0.60, BAND)[0] == er.FAILS
    wide = er.Criterion(0.1, 0.33, er.MEETS, max_width=0.2)
    assert er.decide(0.2, 0.0, 0.5, wide)[0] == er.NOT_TESTABLE
    assert er.decide(0.2, 0.1, 0.25, er.Criterion(0.1, 0.33))[0] == er.HOLDS
    assert er.decide(0.2, math.nan, math.nan, BAND)[0] == er.NOT_TESTABLE
    assert er.decide(0.339, 0.339, 0.339, er.Criterion(0.34, 0.37)) == (
        er.FAILS, "0.339 (exact) is outside 0.34–0.37")


def test_undecided_interval_is_an_indication_not_a_verdict():
    ruling = er.judge(0.02, 0.0, 0.05, AT_MOST, detail="galileo-nano on eurosat")
    assert ruling.verdict == er.NOT_TESTABLE
    assert "straddles" in ruling.why and "galileo-nano" in ruling.indication


def test_scoreboard_counts_verdicts_only():
    board = er.scoreboard([er.HOLDS, er.FAILS, er.NOT_TESTABLE, er.NOT_TESTABLE])
    assert board == {er.HOLDS: 1, er.FAILS: 1, er.NOT_TESTABLE: 2}
    with pytest.raises(ValueError, match="not verdicts"):
        er.scoreboard(["inconclusive"])
    with pytest.raises(ValueError):
        er.Ruling("inconclusive", "x")


def test_a_strict_bound_is_not_met_by_the_bound_itself():
    above_zero = er.Criterion(0.0, math.inf, er.WITHIN, "> 0", strict=True)
    assert er.decide(0.0, 0.0, 0.0, above_zero)[0] == er.FAILS
    assert er.decide(0.0, -0.1, 0.0, above_zero)[0] == er.FAILS
    assert er.decide(0.05, 0.0, 0.1, above_zero)[0] == er.NOT_TESTABLE
    assert er.decide(0.05, 0.01, 0.1, above_zero)[0] == er.HOLDS
