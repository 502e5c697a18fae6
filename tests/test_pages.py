"""slimlib.pages.start: page setup + profile + data note, the first call of every chapter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from slimlib import pages, profiles  # noqa: E402


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
