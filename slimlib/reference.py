"""The paper's published numbers, for side-by-side comparison.

Source: the project page of Hackel, Burgert, Demir (2026), repository
``hackelle/slimmable-rsfms``, file ``static/js/data.js`` at commit ``5a868ec0``, reshaped
into one row per published y-value (``slimlib/reference_data/paper_results.csv``).
Licence of that content: CC BY-SA 4.0 (see ``slimlib/reference_data/README.md``).
Cite the paper (:data:`CITATION`) when you use these numbers.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

__all__ = ["CITATION", "LICENCE", "load", "posthoc", "paper_compute", "SERIES_TO_MODEL"]

CITATION = (
    "Hackel, L., Burgert, T., Demir, B. (2026). How Much of a Model Do We Need? Redundancy and "
    "Slimmability in Remote Sensing Foundation Models. NeurIPS 2026. arXiv:2601.22841."
)
LICENCE = "CC BY-SA 4.0 (project page https://hackelle.github.io/slimmable-rsfms/)"

#: Paper series label -> slimlib registry name of the same model.
SERIES_TO_MODEL = {
    "DOFA (base)": "dofa-base",
    "DOFA (large)": "dofa-large",
    "TerraMind-1.0 (base)": "terramind-v1-base",
    "TerraMind-1.0 (large)": "terramind-v1-large",
    "Prithvi-EO-2.0 (300M)": "prithvi-eo-2-300m",
    "Prithvi-EO-2.0 (600M)": "prithvi-eo-2-600m",
    "SSL4EO ViT-S (MoCo)": "ssl4eo-vits16-moco",
    "SSL4EO ViT-S (Dino)": "ssl4eo-vits16-dino",
    "Panopticon": "panopticon-vitb14",
    "Copernicus-FM": "copernicusfm-base",
}


def _parse_extra(text: object) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


@lru_cache(maxsize=1)
def _load_cached() -> pd.DataFrame:
    path = resources.files("slimlib") / "reference_data" / "paper_results.csv"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, dtype={"extra": str})
    extras = table["extra"].map(_parse_extra)
    table["s"] = extras.map(lambda e: e.get("s") or e.get("s_derived"))
    return table


def load() -> pd.DataFrame:
    """All 2,932 published values: ``section, dataset, series, protocol, variable, x_name, x,
    y, extra`` plus ``s`` (the width, stated or derived by order; ``"0.002|0.0025"`` where two
    widths gave identical FLOPs)."""
    return _load_cached().copy()


def posthoc(section: str = "posthoc") -> pd.DataFrame:
    """Post-hoc (or ``"native"``) curves with retention = y / y(x = 1) per series and dataset."""
    table = load()
    table = table[table["section"] == section].copy()
    table["x"] = table["x"].astype(float)
    full = (table[table["x"] == 1.0].groupby(["dataset", "series", "protocol"])["y"].mean()
            .rename("y_full"))
    table = table.join(full, on=["dataset", "series", "protocol"])
    table["retention"] = table["y"] / table["y_full"]
    return table.drop(columns=["y_full"])


def paper_compute() -> pd.DataFrame:
    """The paper's measured relative compute per model and width (from the m-eurosat curves).

    Returns columns ``series, model, s, rel_compute``; SSL4EO's merged point appears with
    ``s = "0.002|0.0025"``.
    """
    table = posthoc()
    table = table[table["dataset"] == "m-eurosat"]
    out = table[["series", "s", "x"]].rename(columns={"x": "rel_compute"}).drop_duplicates()
    out["model"] = out["series"].map(SERIES_TO_MODEL)
    return out[["series", "model", "s", "rel_compute"]].reset_index(drop=True)
