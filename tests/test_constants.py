"""One source for every shared fact: the copies other modules expose are the same objects."""

from __future__ import annotations

import pytest

from slimlib import bands, constants


def test_one_width_list():
    from slimlib.book import profiles
    from slimlib.measure import _compute as compute

    assert compute.WIDTHS is constants.WIDTHS
    assert profiles.get("paper").widths == constants.WIDTHS
    assert len(constants.WIDTHS) == 31 and constants.WIDTHS[-1] == 1.0
    assert list(constants.WIDTHS) == sorted(set(constants.WIDTHS))


def test_one_set_of_slimming_choices_and_protocols():
    from slimlib import probes, slimming, sweeping
    from slimlib.train import slimmable

    assert slimming.PARTS is constants.PARTS is slimmable.PARTS
    assert slimming.ORDERS is constants.ORDERS and slimming.SCALES is constants.SCALES
    assert probes.PROTOCOLS is constants.PROTOCOLS
    assert sweeping.FEATURE_METRICS is constants.FEATURE_METRICS


def test_feature_metric_names_are_distinct_from_describe_keys():
    from slimlib import metrics

    assert metrics.DESCRIBE_KEYS is constants.DESCRIBE_KEYS
    assert "cka_full" in constants.FEATURE_METRICS
    assert "cka_full" not in constants.DESCRIBE_KEYS
    assert not hasattr(metrics, "FEATURE_METRICS")  # the old alias is gone (issue 24)


def test_one_sentinel2_wavelength_table():
    from slimlib.data import bands as data_bands
    from slimlib.models import bands as model_bands

    assert data_bands.S2_BANDS is bands.S2_BANDS is model_bands.S2_BANDS
    assert data_bands.S2_WAVELENGTHS_UM is bands.S2_WAVELENGTHS_UM
    assert model_bands.S2_WAVELENGTHS_NM is bands.S2_WAVELENGTHS_NM
    for band, nm in bands.S2_WAVELENGTHS_NM.items():
        assert bands.S2_WAVELENGTHS_UM[band] == pytest.approx(nm / 1000)
    assert model_bands.s2_wavelengths_um(("B01", "B8A")) == (0.443, 0.865)
    # ESA's central wavelengths (MSI User Handbook), not Copernicus-Bench's rounded copy
    assert (bands.S2_WAVELENGTHS_NM["B01"], bands.S2_WAVELENGTHS_NM["B8A"],
            bands.S2_WAVELENGTHS_NM["B09"], bands.S2_WAVELENGTHS_NM["B10"]) == (443, 865, 945, 1375)


def test_one_list_of_embedded_models():
    from slimlib.models import embedded as model_embedded
    from slimlib.train import embedded as train_embedded

    assert model_embedded.NAMES == constants.EMBEDDED_MODEL_NAMES
    assert tuple(train_embedded.EMBEDDED_SPECS) == constants.EMBEDDED_MODEL_NAMES


def test_one_set_of_data_root_folders(tmp_path, monkeypatch):
    from slimlib import data
    from slimlib._paths import DATA_ENV
    from slimlib.train import embedded as train_embedded

    assert data.EMBEDDED_FOLDERS is constants.EMBEDDED_FOLDERS
    for domain in ("rs", "cv"):
        info = train_embedded.EMBEDDED_DATA[domain]
        assert info["folder"] in constants.EMBEDDED_FOLDERS[info["dataset"]]
    # one default-data rule: a given root that lacks the data raises in both places
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="eurosat_rgb"):
        data.default_dataset()
    with pytest.raises(FileNotFoundError, match="eurosat_rgb"):
        train_embedded.checkpoint_path("rs-moco-tiny")
    monkeypatch.delenv(DATA_ENV)
    assert data.default_dataset() == constants.RS_FALLBACK
    assert train_embedded.training_data("rs-moco-tiny").name == constants.CV_FALLBACK


def test_one_imagenet_normalisation():
    import inspect

    from slimlib.diagnosis import _inputs as inputs
    from slimlib.models import bands as model_bands

    assert "0.485" not in inspect.getsource(inputs)
    assert model_bands.IMAGENET_MEAN == (0.485, 0.456, 0.406)
