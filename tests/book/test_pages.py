"""slimlib.book.pages.start: page setup + profile + data note, the first call of every chapter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from slimlib.book import (
    pages,
    profiles,  # noqa: E402
)


def test_start_resolves_the_profile_with_the_chapter_parameters():
    cfg = pages.start("smoke", models=["rs-moco-tiny"], widths=None, seeds=[0, 1],
                      data_root=None)
    assert isinstance(cfg, profiles.Profile)
    assert cfg.name == "smoke" and cfg.models == ("rs-moco-tiny",) and cfg.seeds == (0, 1)
    assert cfg.widths == profiles.get("smoke").widths  # None keeps the profile's setting
    assert pd.get_option("display.precision") == 4  # the page setup ran
    assert plt.rcParams["figure.dpi"] == 90


def test_start_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="unknown profile setting"):
        pages.start("smoke", modles=["x"])


def test_note_names_data_profile_and_rerun_hint():
    cfg = profiles.resolve("smoke", data_root=None, datasets=["synthetic-ms"])
    text = pages.note(cfg)
    assert text.startswith(profiles.data_note(cfg))
    assert "SYNTHETIC" in text and "`smoke`" in text
    assert "python -m slimlib run" in text


def test_chapters_start_with_pages_start_and_hold_no_hand_written_idioms():
    """Chapters 2-9 keep narrative + library calls (issue 11 item 7): they start with
    pages.start after their parameters cell, and the idioms moved into the library
    (smallest-width picks, positional alignment, regexes on the reference file) stay out."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "notebooks"
    chapters = sorted(p for p in folder.glob("0[2-9]_*.py"))
    assert len(chapters) == 8
    for path in chapters:
        text = path.read_text()
        params = text.index('tags=["parameters"]')
        start = text.index("cfg = pages.start(profile, ")
        assert params < start, path.name
        for idiom in (".idxmin()", "cumcount()", 'str.contains(r"\\|")', "stat=([^;]+)",
                      "profiles.resolve(profile"):
            assert idiom not in text, f"{path.name} still writes {idiom!r} by hand"
