"""Tests of slimlib.features: batched extraction, cache keys, the atomic cache, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from slimlib._paths import cache_dir
from slimlib.features import _cache as feature_cache
from slimlib.features import _extract as features
from slimlib.specs import ImageDataset, ModelSpec
from tests.patching import patch_features
from tests.tiny_models import tiny_vit

# ----------------------------------------------------------------------------- shared helpers
# (test_sweep.py imports these)


def tiny_spec(name: str = "tiny-vit", input_size: int = 32) -> ModelSpec:
    return ModelSpec(name=name, family="embedded", architecture="tiny ViT (test)",
                     bands=("R", "G", "B"), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                     units="synthetic", input_size=input_size, patch_size=8, embed_dim=48)


class TinyEncoder(nn.Module):
    """A tiny timm ViT with a ModelSpec: forward (B, 3, 32, 32) -> (B, 48)."""

    def __init__(self, name: str = "tiny-vit", seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.vit = tiny_vit()
        self.spec = tiny_spec(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)


def make_split(split: str, per_class: int, n_classes: int = 3, size: int = 16, seed: int = 0,
               classes_present: tuple[int, ...] | None = None) -> ImageDataset:
    """Synthetic 3-band images whose class sets the mean colour and a stripe pattern."""
    gen = torch.Generator().manual_seed(seed + (0 if split == "train" else 1000))
    present = classes_present if classes_present is not None else tuple(range(n_classes))
    labels = torch.tensor([c for c in present for _ in range(per_class)], dtype=torch.int64)
    n = labels.numel()
    images = 0.2 * torch.rand(n, 3, size, size, generator=gen)
    colour = torch.rand(n_classes, 3, generator=torch.Generator().manual_seed(7))
    stripes = torch.arange(size).float().div(size).mul(torch.pi * 2)
    for i, c in enumerate(labels.tolist()):
        images[i] += 0.6 * colour[c][:, None, None]
        images[i] += 0.2 * torch.sin(stripes * (c + 1))[None, :, None]
    return ImageDataset(name="toy", split=split, images=images.clamp(0, 1), labels=labels,
                        classes=tuple(f"c{i}" for i in range(n_classes)), bands=("R", "G", "B"),
                        units="synthetic", synthetic=True)


def simple_prepare(dataset: ImageDataset, spec: ModelSpec) -> torch.Tensor:
    """Stand-in for slimlib.data.prepare: band select, bilinear resize, normalise."""
    idx = [dataset.bands.index(b) for b in spec.bands]
    x = dataset.images[:, idx].float()
    x = F.interpolate(x, size=(spec.input_size, spec.input_size), mode="bilinear",
                      align_corners=False)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (x - mean) / std


class EncodeCounter:
    """Wraps features._encode and counts real forward passes over a dataset."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._orig = features._encode
        patch_features(monkeypatch, "_encode", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._orig(*args, **kwargs)


@pytest.fixture
def stand_in_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)


# ----------------------------------------------------------------------------- extraction


def test_extract_prepared_pair_matches_forward():
    enc = TinyEncoder()
    x = torch.randn(10, 3, 32, 32)
    y = torch.arange(10) % 3
    feats, labels = features.extract(enc, (x, y), batch_size=4, cache=False, progress=False)
    with torch.no_grad():
        expected = enc.eval()(x).numpy()
    assert feats.dtype == np.float32 and feats.shape == (10, 48)
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, y.numpy())


def test_batch_size_does_not_change_features():
    enc = TinyEncoder()
    x = torch.randn(13, 3, 32, 32)
    y = torch.zeros(13, dtype=torch.int64)
    a, _ = features.extract(enc, (x, y), batch_size=3, cache=False, progress=False)
    b, _ = features.extract(enc, (x, y), batch_size=64, cache=False, progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_image_dataset_is_prepared_with_the_spec(stand_in_prepare):
    enc = TinyEncoder()
    ds = make_split("train", per_class=4)
    feats, labels = features.extract(enc, ds, cache=False, progress=False)
    direct, _ = features.extract(enc, (simple_prepare(ds, enc.spec), ds.labels), cache=False,
                                 progress=False)
    np.testing.assert_array_equal(feats, direct)
    np.testing.assert_array_equal(labels, ds.labels.numpy())


def test_image_dataset_needs_a_spec():
    vit = tiny_vit()
    with pytest.raises(ValueError, match="spec"):
        features.extract(vit, make_split("train", 2), cache=False, progress=False)


def test_length_mismatch_is_an_error():
    enc = TinyEncoder()
    with pytest.raises(ValueError, match="length mismatch"):
        features.extract(enc, (torch.randn(5, 3, 32, 32), torch.zeros(4)), progress=False)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        features.extract(TinyEncoder(), (torch.randn(2, 3, 32, 32), torch.zeros(2)),
                         batch_size=bad, progress=False)


class _NaNAfter(nn.Module):
    def __init__(self, inner: nn.Module, value: float) -> None:
        super().__init__()
        self.inner, self.value, self.spec = inner, value, inner.spec

    def forward(self, x):
        f = self.inner(x).clone()
        f[0, 0] = self.value
        return f


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_features_name_model_and_width(value):
    enc = _NaNAfter(TinyEncoder(name="nan-vit"), value)
    with pytest.raises(ValueError, match=r"nan-vit.*width 0\.25"):
        features.extract(enc, (torch.randn(3, 3, 32, 32), torch.zeros(3)), width=0.25,
                         progress=False)
    assert not list(cache_dir("features").glob("*.npz"))


class _Linear(nn.Module):
    """A linear encoder with a buffer whose features do not depend on where the input is
    (a meta-device input gives real CPU features)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("offset", torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 2)


def test_extract_leaves_the_callers_model_where_it_was():
    """The forward passes run on ``device`` (the meta device here: a CPU-only machine has no
    second real one); the caller's module keeps its tensors, on its device, and its mode.
    Before, ``extract`` moved the caller's module to ``device`` and left it there."""
    enc = _Linear().train()
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    seen = []
    enc.register_forward_hook(lambda m, i, o: seen.append((m is enc, m.lin.weight.device.type)))
    pair = (torch.randn(5, 3, 8, 8), torch.zeros(5))
    feats, _ = features.extract(enc, pair, batch_size=2, device="meta", cache=False,
                                progress=False)
    for key, value in enc.state_dict().items():
        assert value.device.type == "cpu" and torch.equal(value, state[key]), key
    assert enc.training
    assert feats.shape == (5, 2) and seen == [(False, "meta")] * 3  # a moved copy ran
    # already on the device: the module itself runs, nothing is copied
    seen.clear()
    features.extract(enc, pair, batch_size=5, device="cpu", cache=False, progress=False)
    assert seen == [(True, "cpu")]


# ----------------------------------------------------------------------------- keys


def test_feature_key_covers_every_component():
    base = dict(model="m", weights="abc", width=0.5, parts=("attn", "ffn"), order="first",
                seed=None, scale="slimmed", dataset="d", split="test", data="fp",
                preprocessing={"bands": ["R"], "input_size": 32}, precision="fp32")
    key = features.feature_key(**base)
    assert key == features.feature_key(**dict(reversed(list(base.items()))))
    changed = dict(model="m2", weights="abd", width=0.25, parts=("ffn",), order="last", seed=1,
                   scale="original", dataset="d2", split="train", data="fp2",
                   preprocessing={"bands": ["G"], "input_size": 32}, precision="bf16")
    keys = {features.feature_key(**{**base, name: value}) for name, value in changed.items()}
    assert len(keys) == len(changed) and key not in keys


def test_module_fingerprint_sees_weights_and_attributes():
    from slimlib.slimming import slim

    enc = TinyEncoder()
    fp = features.module_fingerprint(enc)
    assert fp == features.module_fingerprint(TinyEncoder())  # same seed, same weights
    assert fp != features.module_fingerprint(TinyEncoder(seed=1))
    a = slim(enc, 0.5, scale="slimmed")
    b = slim(enc, 0.5, scale="original")  # equal weights, different softmax scale
    # the softmax scale is part of the state (SlimAttention's extra state), so even the
    # state-only fingerprint tells the two apart
    assert features.module_fingerprint(a, structure=False) != \
        features.module_fingerprint(b, structure=False)
    assert features.module_fingerprint(a) != features.module_fingerprint(b)
    assert features.module_fingerprint(a) == features.module_fingerprint(
        slim(TinyEncoder(), 0.5, scale="slimmed"))


def test_data_fingerprint_sees_content():
    a = make_split("train", 3)
    b = make_split("train", 3)
    assert features.data_fingerprint(a) == features.data_fingerprint(b)
    b.images[0, 0, 0, 0] += 1e-3
    assert features.data_fingerprint(a) != features.data_fingerprint(b)
    x = torch.randn(4, 3, 8, 8)
    assert features.data_fingerprint((x, torch.zeros(4))) != \
        features.data_fingerprint((x, torch.ones(4)))


# ----------------------------------------------------------------------------- cache


def test_cache_hit_skips_the_forward(monkeypatch):
    counter = EncodeCounter(monkeypatch)
    enc = TinyEncoder()
    x, y = torch.randn(6, 3, 32, 32), torch.arange(6)
    key = features.feature_key(model="tiny", width=1.0, data=features.data_fingerprint((x, y)))
    a, la = features.extract(enc, (x, y), cache_key=key, progress=False)
    b, lb = features.extract(enc, (x, y), cache_key=key, progress=False)
    assert counter.calls == 1
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert features.cache_path(key).is_file()
    # automatic key: the same module and data hit, other weights miss
    features.extract(enc, (x, y), progress=False)
    features.extract(enc, (x, y), progress=False)
    assert counter.calls == 2
    features.extract(TinyEncoder(seed=3), (x, y), progress=False)
    assert counter.calls == 3
    features.extract(enc, (x, y), cache=False, progress=False)
    assert counter.calls == 4


def test_crash_mid_write_leaves_no_entry(monkeypatch):
    enc = TinyEncoder()
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(feature_cache.np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        features.extract(enc, (x, y), cache_key="k1", progress=False)
    assert list(cache_dir("features").iterdir()) == []  # neither entry nor temp file
    assert features.load_cached("k1") is None
    monkeypatch.undo()
    feats, _ = features.extract(enc, (x, y), cache_key="k1", progress=False)
    np.testing.assert_array_equal(features.load_cached("k1")[0], feats)


def test_unreadable_entry_is_recomputed(monkeypatch):
    counter = EncodeCounter(monkeypatch)
    enc = TinyEncoder()
    x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
    features.cache_path("bad").write_bytes(b"not an npz")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        feats, _ = features.extract(enc, (x, y), cache_key="bad", progress=False)
    assert counter.calls == 1 and feats.shape == (4, 48)
    assert features.load_cached("bad") is not None


def test_cache_key_must_be_a_file_name():
    with pytest.raises(ValueError, match="file name"):
        features.cache_path("../escape")


# ----------------------------------------------------------------------------- large data


def test_large_datasets_are_prepared_batch_by_batch(stand_in_prepare, monkeypatch):
    calls = []

    def batches(dataset, spec, batch_size):
        calls.append(batch_size)
        yield from simple_prepare(dataset, spec).split(batch_size)

    patch_features(monkeypatch, "prepared_batches", batches)
    enc = TinyEncoder()
    ds = make_split("train", per_class=5)
    whole, _ = features.extract(enc, ds, cache=False, progress=False)
    patch_features(monkeypatch, "MAX_PREPARED_GIB", 0.0)
    streamed, labels = features.extract(enc, ds, batch_size=4, cache=False, progress=False)
    assert calls == [4]
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, ds.labels.numpy())


@pytest.mark.data
def test_prepared_batches_match_prepare_on_real_data(data_root):
    import dataclasses

    data = pytest.importorskip("slimlib.data", reason="slimlib.data is not available")
    ds = data.load("eurosat-rgb", "test", root=data_root, limit_per_class=2)
    spec = dataclasses.replace(tiny_spec(), units="rgb01")
    streamed = torch.cat(list(features.prepared_batches(ds, spec, 7)))
    torch.testing.assert_close(streamed, data.prepare(ds, spec))
    assert features.prepared_gib(ds, spec) == pytest.approx(20 * 3 * 32 * 32 * 4 / 2**30)
