"""Fig. 1a in the authors' convention (slimlib.book.plot_tables.first_row_retention)."""

import pandas as pd
import pytest

from slimlib.book import plot_tables


def _rows():
    return pd.DataFrame([
        {"model": "m", "dataset": "d", "protocol": "knn", "seed": seed, "width": w,
         "value": v, "rel_compute": w}
        for seed, full, small in ((0, 0.80, 0.60), (1, 0.82, 0.66))
        for w, v in ((1.0, full), (0.05, small))])


def test_every_row_is_divided_by_the_first_full_width_row_of_its_curve():
    rows = plot_tables.first_row_retention(_rows())
    assert set(rows["full"]) == {0.80}
    bins = plot_tables.bin_stats(rows).set_index("bin")
    assert bins.loc[1.0, "mean"] == pytest.approx((1.0 + 0.82 / 0.80) / 2)
    assert bins.loc[1.0, "sd"] > 0                       # the full-width bin is not 1 ± 0
    assert bins.loc[0.0, "mean"] == pytest.approx((0.60 + 0.66) / 2 / 0.80)
    book = plot_tables.bin_stats(plot_tables.per_run_retention(_rows())).set_index("bin")
    assert book.loc[1.0, "mean"] == 1.0 and book.loc[1.0, "sd"] == 0.0
    assert bins.loc[0.0, "mean"] > book.loc[0.0, "mean"]


def test_needs_a_full_width_row():
    with pytest.raises(ValueError, match="width-1"):
        plot_tables.first_row_retention(_rows().query("width < 1"))
