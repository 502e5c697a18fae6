"""Geographic-shift proxy on the georeferenced EuroSAT 13-band tiles (chapter 10).

The paper compares GEO-Bench m-so2sat's Cultural-10 split (train and test cities disjoint)
with a random split of the same sizes. The embedded EuroSAT MS GeoTIFFs carry their position
(UTM tie point and EPSG code), so the same contrast can be built here:

* :func:`tile_locations`: longitude/latitude of every tile centre, read from the GeoTIFF tags
  (``ModelTiepointTag``, ``ModelPixelScaleTag``, ``ProjectedCSTypeGeoKey``);
* :func:`spatial_blocks`: a block id per tile (a ``block_deg`` × ``block_deg`` grid cell);
* :func:`disjoint_split`: whole blocks go to the test split, in a seeded random order, until
  the test split holds ``test_fraction`` of the tiles, so no block (location) is in both;
* :func:`random_split`: a seeded random split with exactly the same test size;
* :func:`shared_blocks`: the blocks present in both splits (empty for a disjoint split).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["read_geotiff_position", "tile_locations", "spatial_blocks", "disjoint_split",
           "random_split", "shared_blocks", "split_scores"]

_TIEPOINT, _SCALE, _GEOKEYS = 33922, 33550, 34735
_PROJECTED_CS = 3072


def read_geotiff_position(path: str | os.PathLike) -> tuple[int, float, float]:
    """``(epsg, x, y)`` of a GeoTIFF's centre in its projected coordinates (metres).

    Raises:
        ValueError: the file has no tie point or no projected EPSG code.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tags = {t.code: t.value for t in page.tags.values()}
        height, width = int(page.imagelength), int(page.imagewidth)
    if _TIEPOINT not in tags or _GEOKEYS not in tags:
        raise ValueError(f"{path}: no GeoTIFF tie point / geokeys; not a georeferenced tile")
    keys = tags[_GEOKEYS]
    epsg = next((int(keys[i + 3]) for i in range(4, len(keys), 4)
                 if keys[i] == _PROJECTED_CS), None)
    if epsg is None:
        raise ValueError(f"{path}: no ProjectedCSTypeGeoKey (EPSG code) in the geokeys")
    tie = tags[_TIEPOINT]
    scale = tags.get(_SCALE, (10.0, 10.0, 0.0))
    x = float(tie[3]) + (width / 2 - float(tie[0])) * float(scale[0])
    y = float(tie[4]) - (height / 2 - float(tie[1])) * float(scale[1])
    return epsg, x, y


def tile_locations(root: str | os.PathLike | None = None, folder: str = "eurosat_ms"
                   ) -> pd.DataFrame:
    """Position of every tile of the embedded EuroSAT MS data, in manifest order.

    Returns ``path, label, source_split, epsg, lon, lat`` (``path`` as in the dataset's
    ``ImageDataset.paths``: ``<folder>/<class>/<file>``).
    """
    from pyproj import Transformer

    from slimlib._paths import data_root

    base = Path(data_root(root)) / folder
    with open(base / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    transformers: dict[int, Any] = {}
    for row in rows:
        epsg, x, y = read_geotiff_position(base / row["path"])
        if epsg not in transformers:
            transformers[epsg] = Transformer.from_crs(epsg, 4326, always_xy=True)
        lon, lat = transformers[epsg].transform(x, y)
        out.append({"path": f"{folder}/{row['path']}", "label": int(row["label"]),
                    "source_split": row.get("source_split", ""), "epsg": epsg,
                    "lon": float(lon), "lat": float(lat)})
    return pd.DataFrame(out)


def spatial_blocks(lon: Any, lat: Any, *, block_deg: float = 1.0) -> np.ndarray:
    """Integer block id ``(N,)`` of each position: its ``block_deg``-degree grid cell."""
    if not block_deg > 0:
        raise ValueError(f"block_deg must be > 0; got {block_deg!r}")
    ix = np.floor(np.asarray(lon, float) / block_deg).astype(np.int64)
    iy = np.floor(np.asarray(lat, float) / block_deg).astype(np.int64)
    _, ids = np.unique(np.stack([ix, iy], axis=1), axis=0, return_inverse=True)
    return ids.reshape(-1)


def disjoint_split(blocks: Any, *, test_fraction: float = 0.2, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices with no block in both: blocks are drawn in a seeded
    random order into the test split while it stays at or below ``test_fraction`` of the
    tiles (a block that would overshoot is skipped)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    b = np.asarray(blocks)
    ids, counts = np.unique(b, return_counts=True)
    if ids.size < 2:
        raise ValueError("a spatially disjoint split needs at least two blocks; use a "
                         "smaller block_deg")
    target = test_fraction * b.size
    rng = np.random.default_rng(int(seed))
    chosen, total = [], 0
    for j in rng.permutation(ids.size):
        if total + counts[j] <= target or not chosen:
            chosen.append(ids[j])
            total += counts[j]
        if total >= target:
            break
    test = np.isin(b, chosen)
    if test.all():
        raise ValueError("one block holds every tile; use a smaller block_deg")
    return np.flatnonzero(~test), np.flatnonzero(test)


def random_split(n: int, n_test: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices of a seeded random split with ``n_test`` test tiles."""
    if not 0 < n_test < n:
        raise ValueError(f"n_test must be in (0, {n}); got {n_test}")
    perm = np.random.default_rng(int(seed)).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def shared_blocks(blocks: Any, train: Any, test: Any) -> set[int]:
    """Block ids that occur in both ``train`` and ``test`` (index arrays into ``blocks``)."""
    b = np.asarray(blocks)
    return set(b[np.asarray(train)].tolist()) & set(b[np.asarray(test)].tolist())


def split_scores(feats: dict[float, np.ndarray], labels: Any, blocks: Any, *,
                 seeds: Any = (0, 1, 2, 3, 4), test_fraction: float = 0.2, k: int = 5
                 ) -> pd.DataFrame:
    """k-NN macro accuracy per width, split kind and seed.

    ``feats``: ``{width: features (N, D)}`` of all tiles; ``labels`` ``(N,)``; ``blocks``
    ``(N,)``. Each seed draws one disjoint split and one random split of the same test size.
    Returns ``width, split, seed, value, n_train, n_test, n_test_classes``.
    """
    from slimlib.probes import knn_score

    y = np.asarray(labels)
    rows = []
    for seed in seeds:
        tr_d, te_d = disjoint_split(blocks, test_fraction=test_fraction, seed=int(seed))
        tr_r, te_r = random_split(y.size, te_d.size, seed=int(seed))
        for split, (tr, te) in (("disjoint", (tr_d, te_d)), ("random", (tr_r, te_r))):
            for w, x in feats.items():
                with np.errstate(all="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        value = knn_score(x[tr], y[tr], x[te], y[te], k=k)
                rows.append({"width": float(w), "split": split, "seed": int(seed),
                             "value": float(value), "n_train": int(tr.size),
                             "n_test": int(te.size),
                             "n_test_classes": int(np.unique(y[te]).size)})
    return pd.DataFrame(rows)


def _check_finite(values: Any) -> bool:  # pragma: no cover - tiny helper
    return all(math.isfinite(v) for v in values)
