"""The findings page's text (slimlib.book.findings): every number comes from the computed tables."""

import re

import pandas as pd

from slimlib.book import claims, findings
from slimlib.book.claims import rules as er
from slimlib.sweeping.controls import control_label
from tests.book.test_claims import REAL_RS, _row, _rs

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _numbers(text):
    return set(NUMBER.findall(text))


def test_claim_paragraphs_carry_only_numbers_of_their_row():
    ev = claims.Evidence(rs=_rs(0.68), kinds=REAL_RS,
                         cv_own=pd.DataFrame([_row("c", 1.0, 0.25, dataset="cifar10"),
                                              _row("c", 0.01, 0.24, dataset="cifar10", rel=0.04)]))
    verdicts = claims.evaluate(ev)
    sections = findings.paragraphs(verdicts)
    assert [h for h, _ in sections] == [h for h, _ in findings.CENTRAL]
    rows = verdicts.set_index("key")
    for key in ("rs-85", "cv-10-33", "order"):
        row = rows.loc[key]
        text = findings.claim_paragraph({**row, "key": key})
        source = " ".join(str(v) for v in row.to_dict().values()) + f" {row['this build']:.3f} 95"
        assert _numbers(text) <= _numbers(source), key
        assert findings.SETTLE[key].split(":")[0] in text
    assert "holds" in findings.claim_paragraph({**rows.loc["rs-85"], "key": "rs-85"})
    assert "indication only" not in findings.claim_paragraph({**rows.loc["cv-10-33"],
                                                               "key": "cv-10-33"})
    assert "No verdict" in findings.claim_paragraph({**rows.loc["cv-10-33"], "key": "cv-10-33"})


def _floor_ev(small, floor_value, n_per_class):
    ctrl = pd.DataFrame([_row("m", 1.0, 0.8, rel=1.0, n_per_class=n_per_class),
                         _row("m", 0.01, small, rel=0.05, n_per_class=n_per_class),
                         _row(control_label("m", 0), 0.01, 0.3, rel=0.05,
                              n_per_class=n_per_class)])
    floor = pd.DataFrame([_row("m", 1.0, floor_value, shift=3, n_per_class=n_per_class)])
    return claims.Evidence(control_rows=ctrl, floor=floor, kinds=REAL_RS)


def test_floor_paragraph_says_when_the_model_cannot_be_told_from_its_floor():
    close = claims.embedding_floor(_floor_ev(0.6, 0.58, 10))
    far = claims.embedding_floor(_floor_ev(0.7, 0.3, 100))
    assert close.attrs["above floor"].lo <= 0 <= close.attrs["above floor"].hi
    assert "cannot tell the slimmed model from its embedding alone" in \
        findings.floor_paragraph(close)
    text = findings.floor_paragraph(far)
    assert "is above its embedding alone" in text and "+0.400" in text
    assert "untested offline" in text
    assert "no embedding-only floor" in findings.floor_paragraph(pd.DataFrame())
    assert er.NOT_TESTABLE not in text


def test_floor_paragraph_on_random_weights_is_a_pipeline_check():
    far = claims.embedding_floor(_floor_ev(0.7, 0.3, 100))
    text = findings.floor_paragraph(far, pretrained=False)
    assert text.startswith("This profile uses random weights")
    assert "Indication only: the interval excludes 0" in text
