"""Tests of slimlib.train: configs, augmentations, switchable widths, MoCo/MAE, the loop,
checkpoints/resume, the CLI and the embedded-model contract. Tiny models, few steps."""

from __future__ import annotations

import dataclasses
import functools
import os

import pytest
import torch

from slimlib import book
from slimlib.train import (
    EMBEDDED_CONFIGS,
    EMBEDDED_SPECS,
    Augment,
    AugmentConfig,
    PretrainConfig,
    build_encoder,
    build_method,
    embedded_recipes,
    load_config,
    load_encoder,
    pretrain,
    pretrained_encoder,
    sandwich_widths,
    width,
)
from slimlib.train import embedded as emb
from slimlib.train.mae import random_masking
from slimlib.train.moco import momentum_at
from tests.tiny_models import tiny_vit


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: the tiny ops here lose far more to thread sync than they gain."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)


def tiny_config(method: str = "moco", slimmable: bool = False, **overrides) -> PretrainConfig:
    cfg = PretrainConfig.from_dict({
        "method": method, "seed": 0, "model": dict(TINY),
        "optim": {"batch_size": 16, "steps": 4, "base_lr": 1e-3, "warmup_frac": 0.0},
        "moco": {"dim": 16, "mlp_dim": 32, "temperature": 0.2},
        "mae": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
        "slimmable": {"enabled": slimmable, "min_width": 0.25, "num_widths": 3},
        "num_threads": 1,
    })
    return cfg.replace(**overrides) if overrides else cfg


def rand_images(n: int = 48, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize("key, value, message", [
    ("slimmable.min_width", 0.0, "min_width"),
    ("slimmable.min_width", -0.5, "min_width"),
    ("slimmable.max_width", 1.5, "max_width"),
    ("slimmable.max_width", float("nan"), "max_width"),
    ("slimmable.num_widths", 1, "num_widths"),
    ("mae.mask_ratio", 0.0, "mask_ratio"),
    ("mae.mask_ratio", 1.0, "mask_ratio"),
    ("mae.mask_ratio", 1.2, "mask_ratio"),
    ("method", "simclr", "method"),
    ("optim.batch_size", 0, "batch_size"),
    ("augment.crop_scale", [0.9, 0.2], "crop_scale"),
    ("slimmable.distill", "kl", "distill"),
])
def test_bad_configs_raise(key, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**{key: value})


def test_min_above_max_width_raises():
    with pytest.raises(ValueError, match="must not exceed"):
        tiny_config(**{"slimmable.min_width": 0.8, "slimmable.max_width": 0.5})


def test_unknown_keys_raise():
    with pytest.raises(ValueError, match="unknown"):
        PretrainConfig.from_dict({"method": "moco", "optim": {"lr": 0.1}})
    with pytest.raises(ValueError, match="unknown"):
        PretrainConfig.from_dict({"methd": "moco"})


def test_packaged_yaml_configs_are_vitb16_100_epochs():
    for name in ("moco_vitb16", "moco_vitb16_slimmable", "mae_vitb16", "mae_vitb16_slimmable"):
        cfg = load_config(name)
        assert (cfg.model.embed_dim, cfg.model.depth, cfg.model.patch_size) == (768, 12, 16)
        assert cfg.optim.epochs == 100 and cfg.device == "auto"  # CUDA when present, else CPU
        assert cfg.method == name.split("_")[0]
        assert cfg.slimmable.enabled == name.endswith("slimmable")
        assert cfg.slimmable.num_widths == 5
    assert load_config("moco_vitb16").hash() != load_config("moco_vitb16_slimmable").hash()


def test_config_roundtrip_and_hash():
    cfg = tiny_config("mae", True)
    again = PretrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.hash() == cfg.hash()
    assert cfg.replace(seed=1).hash() != cfg.hash()


# ---------------------------------------------------------------------------- sandwich rule
def test_sandwich_yields_min_max_and_in_range_widths():
    gen = torch.Generator().manual_seed(3)
    draws = []
    for _ in range(50):
        ws = sandwich_widths(5, 0.2, 0.9, gen)
        assert len(ws) == 5 and ws[0] == 0.9 and ws[1] == 0.2
        assert all(0.2 <= w <= 0.9 for w in ws[2:])
        draws += ws[2:]
    assert max(draws) - min(draws) > 0.5  # the random widths really spread over the range
    a = sandwich_widths(5, 0.1, 1.0, torch.Generator().manual_seed(7))
    b = sandwich_widths(5, 0.1, 1.0, torch.Generator().manual_seed(7))
    c = sandwich_widths(5, 0.1, 1.0, torch.Generator().manual_seed(8))
    assert a == b and a != c
    assert sandwich_widths(2, 0.3, 1.0) == [1.0, 0.3]


@pytest.mark.parametrize("args, message", [
    ((1, 0.2, 1.0), "n must be"), ((5, 0.0, 1.0), "min_width"), ((5, 0.2, 1.1), "max_width"),
    ((5, 0.8, 0.5), "must not exceed"),
])
def test_sandwich_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        sandwich_widths(*args)


def test_training_step_uses_the_sandwich_widths():
    result = pretrain(tiny_config("moco", True), rand_images(), progress=False)
    assert (result.losses["min_width"] == 0.25).all()
    assert result.losses["loss_sub"].notna().all()


# ---------------------------------------------------------------------------- switchable width
@functools.cache
def _trained_state(method: str) -> dict:
    return pretrain(tiny_config(method, True, **{"optim.steps": 3}), rand_images(),
                    progress=False).encoder.state_dict()


def _trained_encoder(method: str):
    encoder = build_method(tiny_config(method), 3).encoder
    encoder.load_state_dict(_trained_state(method))
    return encoder


@pytest.mark.parametrize("method", ["moco", "mae"])
@pytest.mark.parametrize("parts", [("attn", "ffn"), ("attn",), ("ffn",)])
def test_switchable_width_equals_slim_on_trained_weights(method, parts):
    from slimlib.slimming import slim

    encoder = _trained_encoder(method).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        full = encoder(x)
        for s in (0.1, 0.25, 0.5, 0.77, 1.0):
            expected = slim(encoder, s, parts=parts)(x)
            with width(encoder, s, parts=parts):
                got = encoder(x)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
            if s < 1:
                assert not torch.allclose(got, full, atol=1e-4)  # the width really changed
        torch.testing.assert_close(encoder(x), full, rtol=0, atol=0)  # restored on exit


def test_width_uses_views_of_the_same_parameters():
    vit = tiny_vit()
    before = {k: (v.data_ptr(), v.clone()) for k, v in vit.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    with width(vit, 0.5):
        vit(x).pow(2).sum().backward()
    block = vit.blocks[0]
    d_h, d_k = block.mlp.fc1.out_features // 2, block.attn.head_dim // 2
    g1 = block.mlp.fc1.weight.grad
    assert g1[:d_h].abs().sum() > 0 and g1[d_h:].abs().sum() == 0  # only the kept rows learn
    g2 = block.mlp.fc2.weight.grad
    assert g2[:, :d_h].abs().sum() > 0 and g2[:, d_h:].abs().sum() == 0
    gq = block.attn.qkv.weight.grad.view(3, block.attn.num_heads, block.attn.head_dim, -1)
    assert gq[:, :, :d_k].abs().sum() > 0 and gq[:, :, d_k:].abs().sum() == 0
    for k, v in vit.state_dict().items():  # no parameter was replaced or copied
        assert v.data_ptr() == before[k][0] and torch.equal(v, before[k][1])
    assert "forward" not in block.attn.__dict__ and "forward" not in block.mlp.__dict__


def test_nested_width_contexts_restore_outer_width():
    vit = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), width(vit, 0.5):
        outer = vit(x)
        with width(vit, 0.25):
            inner = vit(x)
        again = vit(x)
    torch.testing.assert_close(again, outer)
    assert not torch.allclose(inner, outer)


def test_width_rejects_bad_input():
    vit = tiny_vit()
    with pytest.raises(ValueError, match="width"), width(vit, 0.0):
        pass
    with pytest.raises(ValueError, match="parts"), width(vit, 0.5, parts=("norm",)):
        pass
    with pytest.raises(TypeError, match="no transformer blocks"), width(torch.nn.Linear(2, 2), 0.5):
        pass
    qk = tiny_vit(qk_norm=True)
    with pytest.raises(TypeError, match="qk_norm"), width(qk, 0.5):
        pass


# ---------------------------------------------------------------------------- augment / MAE / MoCo
def test_augment_works_for_any_channel_count_and_is_seeded():
    cfg = AugmentConfig(blur_p=0.5, noise_p=0.5, vflip=0.5)
    for c in (1, 3, 13):
        aug = Augment(cfg, 24, torch.zeros(c), torch.ones(c))
        x = rand_images(8, c, 40)
        a = aug(x, torch.Generator().manual_seed(1))
        b = aug(x, torch.Generator().manual_seed(1))
        d = aug(x, torch.Generator().manual_seed(2))
        assert a.shape == (8, c, 24, 24) and torch.isfinite(a).all()
        assert torch.equal(a, b) and not torch.allclose(a, d)
    with pytest.raises(ValueError, match="channels"):
        Augment(cfg, 24, torch.zeros(3), torch.ones(3))(rand_images(2, 4, 24))


def test_identity_crop_reproduces_the_image():
    cfg = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), hflip=0.0, jitter_p=0.0)
    x = rand_images(4, 5, 16)
    out = Augment(cfg, 16, torch.zeros(5), torch.ones(5))(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_mae_masks_the_configured_share():
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    keep, restore, mask = random_masking(noise, 4)
    assert keep.shape == (3, 4) and (mask.sum(1) == 12).all()
    for b in range(3):  # kept patches are exactly the unmasked ones
        assert set(keep[b].tolist()) == set((mask[b] == 0).nonzero().flatten().tolist())
    assert torch.equal(restore.argsort(1)[:, :4], keep)


@pytest.mark.parametrize("method", ["moco", "mae"])
def test_sub_width_passes_leave_the_heads_to_the_full_width(method):
    from slimlib.train.augment import Augment
    from slimlib.train.loop import frozen_heads

    cfg = tiny_config(method, True)
    model = build_method(cfg, 3).train()
    aug = Augment(cfg.augment, 16, torch.zeros(3), torch.ones(3))
    inputs = model.make_inputs(rand_images(16), aug, torch.Generator().manual_seed(0))
    loss, targets = model.full_loss(inputs)
    loss.backward()
    enc_ids = {id(p) for p in model.encoder.parameters()}
    heads = [p for p in model.parameters() if id(p) not in enc_ids and p.requires_grad]
    encoder = [p for p in model.encoder.parameters() if p.requires_grad]
    head_grads = [p.grad.clone() for p in heads]
    enc_grads = [p.grad.clone() for p in encoder]
    with width(model.encoder, 0.5), frozen_heads(model):
        sub = model.sub_loss(inputs, targets)
    sub.backward()
    assert all(torch.equal(p.grad, g) for p, g in zip(heads, head_grads, strict=True))
    assert any(not torch.equal(p.grad, g) for p, g in zip(encoder, enc_grads, strict=True))
    assert all(p.requires_grad for p in heads)  # restored


def test_momentum_schedule():
    assert momentum_at(0.99, 0.0) == pytest.approx(0.99)
    assert momentum_at(0.99, 0.5) == pytest.approx(0.995)
    assert momentum_at(0.99, 1.0) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- the loss falls
def _first_last(losses, n=3):
    v = losses["loss_full"].to_numpy()
    return v[:n].mean(), v[-n:].mean()


@pytest.mark.parametrize("method, steps, lr", [("mae", 12, 3e-3), ("moco", 12, 3e-3)])
def test_loss_falls_on_embedded_data(data_root, method, steps, lr):
    from slimlib import data as sdata

    ds = sdata.load("eurosat-rgb", "train", limit_per_class=6)
    cfg = tiny_config(method, **{"optim.steps": steps, "optim.base_lr": lr,
                                 "optim.batch_size": 32})
    result = pretrain(cfg, ds, progress=False)
    first, last = _first_last(result.losses)
    assert last < first, (first, last)


def test_loss_falls_on_synthetic_fallback():
    from slimlib import data as sdata

    ds = sdata.load("synthetic-rgb", "train")
    assert ds.synthetic
    cfg = tiny_config("mae", True, **{"optim.steps": 12, "optim.base_lr": 3e-3,
                                      "optim.batch_size": 32})
    result = pretrain(cfg, ds, progress=False)
    first, last = _first_last(result.losses)
    assert last < first, (first, last)
    assert result.losses["loss_sub"].notna().all()


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path):
    result = pretrain(tiny_config("moco"), rand_images(), tmp_path, progress=False)
    assert {"last.pt", "encoder.pt", "loss.csv"} <= {p.name for p in tmp_path.iterdir()}
    loaded = load_encoder(tmp_path / "encoder.pt")
    from_last = load_encoder(tmp_path / "last.pt")
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        ref = result.encoder.eval()(x)
        torch.testing.assert_close(loaded(x), ref, rtol=0, atol=0)
        torch.testing.assert_close(from_last(x), ref, rtol=0, atol=0)
    import pandas as pd

    csv = pd.read_csv(tmp_path / "loss.csv")
    assert list(csv["step"]) == [1, 2, 3, 4] and csv["loss"].notna().all()


@pytest.mark.parametrize("method", ["moco", "mae"])
def test_resume_continues_from_saved_step(tmp_path, method):
    cfg = tiny_config(method, True, **{"optim.steps": 4, "checkpoint_every": 1})
    data = rand_images()
    straight = pretrain(cfg, data, tmp_path / "a", progress=False)
    part = pretrain(cfg, data, tmp_path / "b", progress=False, max_steps=2)
    assert part.step == 2 and not (tmp_path / "b" / "encoder.pt").exists()
    resumed = pretrain(cfg, data, tmp_path / "b", progress=False)
    assert resumed.step == 4 and list(resumed.losses["step"]) == [1, 2, 3, 4]
    for (k, a), (_, b) in zip(straight.method.state_dict().items(),
                              resumed.method.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    torch.testing.assert_close(torch.tensor(straight.losses["loss"].to_numpy()),
                               torch.tensor(resumed.losses["loss"].to_numpy()), rtol=0, atol=0)


def test_resume_refuses_a_different_config(tmp_path):
    pretrain(tiny_config("moco", **{"optim.steps": 2}), rand_images(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different config"):
        pretrain(tiny_config("moco", **{"optim.steps": 2, "seed": 1}), rand_images(), tmp_path,
                 progress=False)


def test_cli_trains_and_resumes(tmp_path, capsys):
    import json

    import yaml

    from slimlib.train.__main__ import main

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config("mae").to_dict()))
    out = tmp_path / "run"
    assert main(["--config", str(path), "--data", "synthetic-rgb", "--out", str(out),
                 "--set", "optim.steps=3", "--max-steps", "2", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 2
    assert main(["--config", str(path), "--data", "synthetic-rgb", "--out", str(out),
                 "--set", "optim.steps=3", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert (out / "encoder.pt").exists()


# ---------------------------------------------------------------------------- embedded models
def test_embedded_specs_and_random_encoders():
    assert set(EMBEDDED_SPECS) == {"rs-moco-tiny", "rs-moco-tiny-slimmable", "rs-mae-tiny",
                                   "rs-mae-tiny-slimmable", "cv-moco-tiny", "cv-mae-tiny"}
    from slimlib.slimming import slim

    x = torch.randn(2, 3, 32, 32)
    for name, spec in EMBEDDED_SPECS.items():
        enc = build_encoder(name)
        assert enc.spec == spec and spec.family == "embedded" and spec.in_chans == 3
        assert spec.feature == ("cls" if "moco" in name else "mean")
        cfg = EMBEDDED_CONFIGS[name]
        assert cfg.slimmable.enabled == name.endswith("slimmable")
        with torch.no_grad():
            y = enc(x)
            assert y.shape == (2, spec.embed_dim)
            assert enc(torch.randn(2, 3, 64, 64)).shape == (2, spec.embed_dim)  # resized
            assert slim(enc, 0.5)(x).shape == (2, spec.embed_dim)
        torch.testing.assert_close(build_encoder(name)(x), y)  # seeded init
    # RS and CV models share the architecture; the recipes differ only in the documented
    # per-domain overrides (plus data and normalisation).
    for method in ("moco", "mae"):
        rs, cv = EMBEDDED_CONFIGS[f"rs-{method}-tiny"], EMBEDDED_CONFIGS[f"cv-{method}-tiny"]
        assert rs.model == cv.model
        overrides = embedded_recipes._DOMAIN_RECIPES[("cv", method)]
        assert rs.replace(mean=cv.mean, std=cv.std, **overrides) == cv
        assert cv.optim.steps > rs.optim.steps
    # the pool schedules the most expensive run first; slimmable costs more than regular
    assert emb.estimated_cost("rs-moco-tiny-slimmable") > emb.estimated_cost("rs-moco-tiny")
    assert emb.estimated_cost("rs-mae-tiny-slimmable") > emb.estimated_cost("rs-mae-tiny")
    with pytest.raises(ValueError, match="unknown embedded model"):
        build_encoder("rs-dino-tiny")


def _shrink_embedded(monkeypatch, name: str):
    """Make embedded model ``name`` a 2-block, 3-step recipe on 64 synthetic images."""
    tiny = EMBEDDED_CONFIGS[name].replace(**{
        "model.embed_dim": 32, "model.depth": 2, "model.num_heads": 2, "optim.steps": 3,
        "optim.batch_size": 16, "mae.decoder_dim": 16, "moco.dim": 16, "moco.mlp_dim": 32,
        "checkpoint_every": 0})
    monkeypatch.setitem(emb.EMBEDDED_CONFIGS, name, tiny)
    monkeypatch.setitem(emb.EMBEDDED_SPECS, name, dataclasses.replace(
        emb.EMBEDDED_SPECS[name], embed_dim=32))
    monkeypatch.setattr(emb, "training_data", lambda n, **kw: _small_training_data(n))
    return tiny


def test_pretrained_encoder_trains_once_then_loads_from_cache(monkeypatch):
    name = "rs-mae-tiny-slimmable"
    tiny = _shrink_embedded(monkeypatch, name)
    path = emb.checkpoint_path(name)
    assert path.name.startswith(f"{name}-") and not path.exists()
    with pytest.raises(FileNotFoundError, match="no cached checkpoint"):
        pretrained_encoder(name, train_if_missing=False)
    with pytest.raises(ValueError, match="processes"):
        emb.pretrain_missing([name], processes=0)
    assert emb.pretrain_missing([name], processes=1) == {name: path}
    first = pretrained_encoder(name, progress=False)
    assert path.exists() and path.with_suffix(".csv").exists()
    assert not path.with_suffix(".run").exists()
    assert str(path) in first.spec.source
    second = pretrained_encoder(name, train_if_missing=False)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(second(x), first(x), rtol=0, atol=0)
        assert not torch.allclose(build_encoder(name)(x), first(x))
    # a different recipe gets a different cache entry
    monkeypatch.setitem(emb.EMBEDDED_CONFIGS, name, tiny.replace(seed=1))
    assert emb.checkpoint_path(name) != path


def _small_training_data(name):
    from slimlib import data as sdata

    ds = sdata.load("synthetic-rgb", "train")
    return dataclasses.replace(ds, images=ds.images[:64], labels=ds.labels[:64])


def test_fingerprint_changes_with_the_data():
    from slimlib.train.loop import data_fingerprint

    a, b = rand_images(seed=0), rand_images(seed=1)
    assert data_fingerprint(a) == data_fingerprint(a.clone()) != data_fingerprint(b)
    assert len(data_fingerprint(a)) == 16 and int(data_fingerprint(a), 16) >= 0


def test_chapters_pretrain_models_trains_what_a_profile_needs(monkeypatch):
    from slimlib.book import profiles

    assert book.embedded_models_of(profiles.get("default")) == [
        "cv-moco-tiny", "cv-mae-tiny", "rs-moco-tiny", "rs-moco-tiny-slimmable", "rs-mae-tiny",
        "rs-mae-tiny-slimmable"]  # the RS side of the default book is Galileo-nano
    assert book.embedded_models_of(profiles.get("paper")) == [
        "rs-moco-tiny", "rs-moco-tiny-slimmable", "rs-mae-tiny", "rs-mae-tiny-slimmable"]
    assert book.pretrain_models(profiles.get("smoke")).empty  # random weights: no training

    name = "cv-moco-tiny"
    _shrink_embedded(monkeypatch, name)
    profile = profiles.resolve("default", models=[name], cv_models=["dinov2-vitb14"],
                               slimmable_pairs=[])
    first = book.pretrain_models(profile, processes=1)
    assert list(first["model"]) == [name] and not first["cached"].any()
    assert first["steps"].tolist() == [3] and first["checkpoint"].iloc[0].startswith(name)
    assert emb.checkpoint_path(name).exists()
    again = book.pretrain_models(profile, processes=1)
    assert again["cached"].all() and again["train_s"].equals(first["train_s"])


def test_profile_data_root_reaches_pretraining_through_its_settings(monkeypatch, tmp_path):
    """The profile's explicit data root is folded into ``profile.settings`` (what the chapter
    helpers pass down); the environment is neither read for it nor changed."""
    from slimlib._paths import DATA_ENV
    from slimlib.book import profiles

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv(DATA_ENV, str(elsewhere))
    # explicit datasets: an empty data root cannot supply the default real ones
    profile = profiles.resolve("smoke", data_root=str(tmp_path), datasets=["synthetic-rgb"],
                               cv_datasets=["synthetic-rgb"])
    assert profile.settings.data == tmp_path.resolve()
    assert profiles.settings_of(profile).data == tmp_path.resolve()
    assert os.environ[DATA_ENV] == str(elsewhere)
    monkeypatch.delenv(DATA_ENV)
    assert profiles.settings_of(profiles.get("smoke")).data is None  # no root anywhere
    assert DATA_ENV not in os.environ
