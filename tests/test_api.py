"""Public-API conventions: options are keyword-only, metadata comes back as objects."""

from __future__ import annotations

import inspect

import pytest

from slimlib import data, features, models, probes, sweeping
from slimlib.train import embedded as train_embedded

#: function -> the parameters that may be passed by position (the data, not options)
POSITIONAL = {
    probes.knn_score: ("train_x", "train_y", "test_x", "test_y"),
    probes.linear_probe_score: ("train_x", "train_y", "test_x", "test_y"),
    probes.score: ("protocol", "train_x", "train_y", "test_x", "test_y"),
    sweeping.sweep: ("models", "datasets"),
    models.load: ("name",),
    data.load: ("name", "split"),
    train_embedded.build_encoder: ("name",),
    train_embedded.pretrained_encoder: ("name",),
    train_embedded.pretrain_missing: ("names",),
}


@pytest.mark.parametrize("fn", list(POSITIONAL), ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_options_are_keyword_only(fn):
    params = inspect.signature(fn).parameters.values()
    positional = tuple(p.name for p in params
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    assert positional == POSITIONAL[fn]


def test_positional_option_is_refused():
    x, y = [[0.0, 1.0], [1.0, 0.0]], [0, 1]
    with pytest.raises(TypeError):
        probes.knn_score(x, y, x, y, 1)
    assert probes.knn_score(x, y, x, y, k=1) == 1.0
    with pytest.raises(TypeError):
        models.load("ssl4eo-vits16-moco", False)


def test_info_returns_the_dataset_info_object():
    meta = data.info("synthetic-ms")
    assert isinstance(meta, data.DatasetInfo)
    assert meta.num_classes == len(meta.classes) and isinstance(meta.classes, tuple)
    assert meta.display_name.endswith("(synthetic)") and meta.kind == "synthetic"
    # the dict view the old info() returned, key for key
    assert meta["num_classes"] == meta.num_classes and "citation" in meta
    assert meta.as_dict()["root"] == meta.root == meta.root_setting
    assert set(meta.keys()) >= {"classes", "bands", "units", "splits", "kind"}
    with pytest.raises(KeyError, match="DatasetInfo has"):
        meta["no-such-key"]
    assert models.spec("galileo-nano").name == "galileo-nano"  # the same convention


def test_features_exports_what_users_call():
    assert set(features.__all__) == {"extract", "data_fingerprint", "module_fingerprint",
                                     "feature_key", "preprocessing_id", "precision",
                                     "resolve_device"}
    assert all(callable(getattr(features, n)) for n in features.__all__)


def test_read_table_is_public():
    import slimlib

    assert "read_table" in sweeping.__all__ and slimlib.read_table is sweeping.read_table


def test_readme_layout_names_real_folders_and_modules():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    rows = [line for line in (root / "README.md").read_text().splitlines()
            if line.startswith("| `slimlib/")]
    folders = [re.match(r"\| `(slimlib/[a-z_]+)/` \|", r) for r in rows]
    folders = [m.group(1) for m in folders if m]
    assert len(folders) >= 13
    for folder in folders:
        assert (root / folder / "__init__.py").is_file(), folder
    stages = {p.name for p in (root / "slimlib").iterdir() if (p / "__init__.py").is_file()}
    assert stages == {f.split("/")[1] for f in folders}  # every stage is in the table
    shared = next(r for r in rows if r.startswith("| `slimlib/*.py` |"))
    for name in re.findall(r"`([a-z_]+)`", shared.split("|")[2]):
        assert (root / "slimlib" / f"{name}.py").is_file(), name
    book = next(r for r in rows if r.startswith("| `slimlib/book/` |"))
    for name in re.findall(r"`([a-z_]+)`", book.split("|")[2]):
        assert (root / "slimlib" / "book" / f"{name}.py").is_file() or \
            (root / "slimlib" / "book" / name).is_dir(), name
