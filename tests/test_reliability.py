"""Regression tests of issue 13: paths that used to give silently wrong or misleading results.

Fault tests use real processes and real files: a chapter run stopped with SIGINT and by its
timeout, two sweep processes writing one table, a read-only cache folder, a training process
killed with SIGKILL. A full filesystem cannot be made without root, so that one is a
simulated ``ENOSPC`` write error. See ``docs/reliability.md`` for the guarantee each proves.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from slimlib import book, metrics, probes
from slimlib import data as D
from slimlib import sweeping as sweep_mod
from slimlib.book import profiles
from slimlib.features import _cache as feature_cache
from slimlib.features import _extract as features
from tests.features.test_extract import EncodeCounter, TinyEncoder, make_split, simple_prepare
from tests.patching import default_sigint, patch_features

REPO = Path(sys.modules["slimlib"].__file__).resolve().parents[1]  # the slimlib under test
TESTS = Path(__file__).resolve().parent
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    return env


@pytest.fixture
def stand_in_prepare(monkeypatch):
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)
    patch_features(monkeypatch, "preparation_notes", lambda dataset, spec: [])


@pytest.fixture
def toy():
    return make_split("train", per_class=8), make_split("test", per_class=4)


def _sweep(toy, out, **kw):
    args = dict(widths=(0.5, 1.0), seeds=(0, 1), protocols=("knn",), out=out, progress=False)
    args.update(kw)
    return sweep_mod.sweep({"tiny": TinyEncoder()}, [toy], **args)


# ============================================================ 1 + 10: interrupted chapter runs

CHAPTER = '''\
# %% tags=["parameters"]
profile = None
seeds = None
sleep = 0
mark = ""

# %%
import pathlib
import time

if mark:
    pathlib.Path(mark).write_text("started")
time.sleep(sleep)

# %%
after = "this cell ran"
'''


@pytest.fixture
def chapter(tmp_path) -> Path:
    path = tmp_path / "nb" / "01_tiny.py"
    path.parent.mkdir()
    path.write_text(CHAPTER)
    return path


def _papermill_meta(nb_path: Path) -> tuple[dict, list[str]]:
    nb = json.loads(nb_path.read_text())
    return nb["metadata"], [c["metadata"].get("papermill", {}).get("status")
                            for c in nb["cells"]]


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.ipynb"))


def test_timed_out_run_is_marked_failed_and_never_looks_finished(chapter, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(TimeoutError) as info:
        book.run_chapter(chapter, {"sleep": 60}, runs, timeout=2)
    [nb] = _notebooks(runs)
    assert nb.name.endswith(".failed.ipynb") and nb == info.value.notebook_path
    meta, status = _papermill_meta(nb)
    assert meta["papermill"]["exception"] is True
    assert meta["slimlib"]["run"]["status"] == "failed"
    assert "timed out" in meta["slimlib"]["run"]["reason"]
    assert status[-1] == "pending"  # the cell after the sleep never ran
    assert "failed" in status and status.count("completed") < len(status) - 2


def test_ctrl_c_of_the_cli_exits_nonzero_and_marks_the_notebook(chapter, tmp_path):
    runs, mark = tmp_path / "runs", tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "slimlib", "run", str(chapter), "-p", "sleep", "120",
         "-p", "mark", str(mark), "--out", str(runs)],
        env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the chapter's cell never started"
            time.sleep(0.2)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (1, 130), err
    [nb] = _notebooks(runs)
    assert nb.name.endswith((".interrupted.ipynb", ".failed.ipynb")), nb.name
    meta, status = _papermill_meta(nb)
    assert meta["papermill"]["exception"] is True
    assert status[-1] != "completed"  # the last cell never ran
    assert str(nb.name) in err.decode()


def test_identical_runs_in_the_same_second_keep_both_notebooks(chapter, tmp_path, monkeypatch):
    class Frozen:
        @staticmethod
        def now(tz=None):
            from datetime import datetime

            return datetime(2026, 1, 1, 12, 0, 0, tzinfo=tz)

    from slimlib.book import runner

    monkeypatch.setattr(runner, "datetime", Frozen)  # where _reserve stamps the run name
    runs = tmp_path / "runs"
    first = book.run_chapter(chapter, {}, runs, timeout=60)
    second = book.run_chapter(chapter, {}, runs, timeout=60)
    assert first != second and first.is_file() and second.is_file()
    assert [p.name for p in _notebooks(runs)] == sorted([first.name, second.name])
    for nb in (first, second):
        meta, status = _papermill_meta(nb)
        assert meta["papermill"]["exception"] is None and set(status) == {"completed"}


# ============================================================ 8: chapter parameters

@pytest.mark.parametrize(("name", "text", "match"), [
    ("seeds", "[1.7]", "seeds must be an integer"),
    ("seeds", "yes", "seeds must be a list"),
    ("profile", "yes", "profile must be one of"),
    ("seeds", "[1, 2", "neither JSON nor YAML"),
])
def test_bad_parameters_are_refused_before_any_kernel_starts(chapter, tmp_path, name, text,
                                                            match):
    runs = tmp_path / "runs"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "slimlib", "run", str(chapter), "-p", name, text, "--out",
         str(runs)], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr
    assert not runs.exists() or not _notebooks(runs)  # no kernel, no notebook
    assert time.perf_counter() - start < 60


def test_profile_settings_are_type_and_range_checked():
    with pytest.raises(ValueError, match="seeds must be an integer >= 0"):
        profiles.resolve("smoke", seeds=[1.7])
    with pytest.raises(ValueError, match="seeds must be an integer"):
        profiles.resolve("smoke", seeds=[True])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        profiles.resolve("smoke", batch_size=0)
    with pytest.raises(ValueError, match="protocols must be 'knn' and/or 'linear'"):
        profiles.resolve("smoke", protocols=["knnn"])
    with pytest.raises(ValueError, match="models must be a name"):
        profiles.resolve("smoke", models=[1])
    assert profiles.resolve("smoke", seeds=[2.0, 3]).seeds == (2, 3)
    with pytest.raises(ValueError, match="neither JSON nor YAML"):
        book.parse_value("[1, 2")
    assert book.parse_value("rs-mae-tiny") == "rs-mae-tiny"


# ============================================================ 2: data roots

def _fake_dataset(root: Path, folder: str) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "manifest.csv").write_text("path,class,label,split\n")


@pytest.mark.parametrize("how", ["env", "argument"])
def test_a_given_data_root_without_the_datasets_raises_everywhere(tmp_path, monkeypatch, how):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    too_deep = tmp_path / "data" / "eurosat_rgb"
    _fake_dataset(tmp_path / "data", "eurosat_rgb")
    for root in (empty, too_deep):
        kwargs = {}
        if how == "env":
            monkeypatch.setenv("SLIMLIB_DATA", str(root))
        else:
            kwargs = {"data_root": str(root)}
        with pytest.raises(FileNotFoundError, match="eurosat_rgb/manifest.csv"):
            profiles.resolve("smoke", **kwargs)
        with pytest.raises(FileNotFoundError, match="eurosat_rgb/manifest.csv"):
            D.default_dataset(None if how == "env" else root)
    monkeypatch.setenv("SLIMLIB_DATA", str(too_deep))
    with pytest.raises(FileNotFoundError, match="set the data root to its parent"):
        profiles.resolve("smoke")


def test_synthetic_only_without_any_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    assert D.default_dataset() == "synthetic-ms"
    cfg = profiles.resolve("smoke")
    assert cfg.datasets == (profiles.RS_FALLBACK,) and cfg.cv_datasets == ("synthetic-rgb",)
    for folder in ("eurosat_rgb", "eurosat_ms", "ucmerced", "cifar10_train", "cifar10_test"):
        _fake_dataset(tmp_path, folder)
    assert D.default_dataset(tmp_path) == "eurosat-rgb"
    cfg = profiles.resolve("smoke", data_root=str(tmp_path))
    assert cfg.datasets == profiles.EMBEDDED_RS_DATASETS and cfg.cv_datasets == ("cifar10",)
    (tmp_path / "cifar10_test" / "manifest.csv").unlink()  # half of CIFAR-10 is missing
    with pytest.raises(FileNotFoundError, match="cifar10_test/manifest.csv"):
        profiles.resolve("smoke", data_root=str(tmp_path))


# ============================================================ 3: concurrent sweep writers

WRITER = '''\
import sys, time
from pathlib import Path
from tests.features.test_extract import TinyEncoder, make_split, simple_prepare
from slimlib import sweeping
from slimlib.features import _extract as features
import slimlib.features as features_pkg
features.prepare_dataset = features_pkg.prepare_dataset = simple_prepare
features.preparation_notes = features_pkg.preparation_notes = lambda dataset, spec: []
out, go = Path(sys.argv[1]), Path(sys.argv[2])
toy = make_split("train", per_class=8), make_split("test", per_class=4)
model = TinyEncoder()
while not go.exists():
    time.sleep(0.02)
sweeping.sweep({"tiny": model}, [toy], widths=(0.25, 0.5, 0.75, 1.0), seeds=(0, 1),
               protocols=("knn",), out=out, progress=False)
'''


def test_two_sweep_processes_writing_one_table_lose_and_duplicate_nothing(tmp_path):
    script, out, go = tmp_path / "writer.py", tmp_path / "shared.csv", tmp_path / "go"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(out), str(go)],
                              env=_env(SLIMLIB_CACHE=str(tmp_path / f"cache{i}")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    time.sleep(1.0)
    go.touch()  # both start their sweeps at the same moment
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate or broken rows to report
        table = sweep_mod.read_table(out, repair=False)
    keys = sweep_mod._table._frame_keys(table)
    assert len(keys) == len(set(keys)) == 4 * (2 + 4)  # 4 widths x (2 seeds + 4 metrics)


def test_read_table_drops_duplicate_keys_with_a_warning(toy, tmp_path, stand_in_prepare):
    out = tmp_path / "s.csv"
    full = _sweep(toy, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines + lines[1:4]))  # three rows written twice
    with pytest.warns(RuntimeWarning, match="dropped 3 row.s. whose key repeats"):
        table = sweep_mod.read_table(out)
    assert len(table) == len(full)
    assert len(out.read_text().splitlines()) == len(full) + 1  # repaired on disk
    ret = sweep_mod.retention(table)
    assert set(ret["n_seeds"]) == {2}


def test_a_table_in_a_read_only_folder_is_read_without_repair(toy, tmp_path, stand_in_prepare):
    src = tmp_path / "s.csv"
    full = _sweep(toy, src)
    lines = src.read_text().splitlines(keepends=True)
    text = "".join(lines + lines[1:2])  # one duplicated row to report
    folder = tmp_path / "shared-results"
    with _tmpfs(folder, "size=1m") as mounted:
        (folder / "s.csv").write_text(text)
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            os.chmod(folder, 0o555)
        try:
            with pytest.warns(RuntimeWarning, match="whose key repeats"):
                table = sweep_mod.read_table(folder / "s.csv")
            assert len(table) == len(full)
            assert (folder / "s.csv").read_text() == text  # left as it was
        finally:
            if not mounted:
                os.chmod(folder, 0o755)


# ============================================================ 4: huge finite features

def _blobs(scale: float, dtype=np.float32):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 2
    ytr, yte = np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 10)
    xtr = centres[ytr] + rng.normal(size=(60, 16))
    xte = centres[yte] + rng.normal(size=(30, 16))
    return (xtr * scale).astype(dtype), ytr, (xte * scale).astype(dtype), yte


@pytest.mark.parametrize("scale", [1e19, 1e30, 1e-30])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_is_scale_free_on_huge_and_tiny_float32_features(scale, metric):
    reference = probes.knn_score(*_blobs(1.0), metric=metric)
    assert reference > 0.9
    assert probes.knn_score(*_blobs(scale), metric=metric) == reference
    xtr, ytr, xte, _ = _blobs(scale)
    np.testing.assert_array_equal(probes.knn_predict(xtr, ytr, xte, metric=metric),
                                  probes.knn_predict(*_blobs(1.0)[:3], metric=metric))


def test_linear_probe_survives_huge_float64_features():
    reference = probes.linear_probe_score(*_blobs(1.0, np.float64))
    assert probes.linear_probe_score(*_blobs(1e200, np.float64)) == pytest.approx(reference)


def test_redundancy_metrics_are_scale_free_on_huge_and_tiny_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12))
    x[:, 1] += x[:, 0]
    y = x @ rng.normal(size=(12, 5)) + 0.1 * rng.normal(size=(64, 5))
    for s in (1e200, 1e-300):
        assert metrics.mean_feature_correlation(x * s) == pytest.approx(
            metrics.mean_feature_correlation(x), rel=1e-12)
        assert metrics.evr_slope(x * s) == pytest.approx(metrics.evr_slope(x), rel=1e-9)
        assert metrics.participation_ratio(x * s) == pytest.approx(
            metrics.participation_ratio(x), rel=1e-9)
        assert metrics.linear_cka(x * s, y) == pytest.approx(metrics.linear_cka(x, y), rel=1e-9)
    assert metrics.linear_cka(1e100 * x, 1e-100 * y) == pytest.approx(metrics.linear_cka(x, y))
    # fp32 features near float32's limit, as an encoder can emit them
    big = (x * 1e37).astype(np.float32)
    assert np.isfinite(metrics.describe_features(big)["mean_feature_correlation"])
    assert metrics.mean_feature_correlation(big) == pytest.approx(
        metrics.mean_feature_correlation(x.astype(np.float32)), rel=1e-5)


# ============================================================ 5: feature cache trust

def test_a_cache_entry_with_the_wrong_rows_is_recomputed(tmp_path, monkeypatch):
    enc = TinyEncoder()
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 3
    key = features.feature_key(model="tiny", test="rows")
    feats, _ = features.extract(enc, (x, y), cache_key=key, progress=False)
    path = features.cache_path(key)
    # a valid .npz of the wrong size under the right name (a copied or stale entry)
    np.savez(path, features=feats[:5], labels=y[:5].numpy(), meta=np.array("{}"))
    encodes = EncodeCounter(monkeypatch)
    with pytest.warns(RuntimeWarning, match="5 rows, the dataset has 12"):
        again, labels = features.extract(enc, (x, y), cache_key=key, progress=False)
    assert encodes.calls == 1 and again.shape == (12, 48)
    np.testing.assert_array_equal(again, feats)
    # the recomputed entry is trusted again, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = features.load_cached(key, labels=y)
    assert hit is not None and hit[0].shape == (12, 48)


@pytest.mark.parametrize("change", ["labels", "dtype", "key", "checksum"])
def test_cache_entries_are_checked_against_what_the_key_promises(tmp_path, change):
    feats = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    labels = np.arange(6) % 2
    key = features.feature_key(model="m", change=change)
    assert features.save_cached(key, feats, labels)
    path = features.cache_path(key)
    with np.load(path) as npz:
        meta = json.loads(str(npz["meta"]))
    stored_f, stored_l, want = feats, labels, labels
    if change == "labels":
        want = labels[::-1].copy()
    elif change == "dtype":
        stored_f = feats.astype(np.float16)
    elif change == "key":
        meta["key"] = "another-key"
    else:
        stored_l = 1 - labels
    np.savez(path, features=stored_f, labels=stored_l, meta=np.array(json.dumps(meta)))
    with pytest.warns(RuntimeWarning, match="Ignoring feature cache entry"):
        assert features.load_cached(key, labels=want) is None


def _one_unusable_warning(record) -> list:
    return [w for w in record if "is not usable" in str(w.message)]


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    """Mount a small tmpfs on ``path`` (root only); yields whether it worked."""
    path.mkdir(parents=True, exist_ok=True)
    if not IS_ROOT:
        yield False
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)


@contextlib.contextmanager
def _read_only_folder(path: Path):
    """``path`` as a real read-only folder: mode 0555 for a normal user, a read-only tmpfs
    for root (whom permissions do not stop)."""
    if not IS_ROOT:
        path.mkdir(parents=True)
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    with _tmpfs(path, "ro,size=1m") as mounted:
        if not mounted:
            pytest.skip("running as root without permission to mount a read-only tmpfs")
        yield


def test_a_read_only_cache_degrades_to_uncached_with_one_warning(toy, tmp_path, monkeypatch,
                                                                 stand_in_prepare):
    monkeypatch.setattr(feature_cache, "_UNUSABLE_CACHE", set())
    reference = _sweep(toy, tmp_path / "ref.csv")
    cache = tmp_path / "ro-cache"
    monkeypatch.setenv("SLIMLIB_CACHE", str(cache))
    with _read_only_folder(cache / "features"), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        table = _sweep(toy, tmp_path / "s.csv")
        assert not list((cache / "features").iterdir())
    assert len(_one_unusable_warning(record)) == 1
    pd.testing.assert_series_equal(table["value"], reference["value"])


def test_a_full_cache_disk_degrades_to_uncached_with_one_warning(toy, tmp_path, monkeypatch,
                                                                 stand_in_prepare):
    """A real full tmpfs where mounting is allowed (root), else a simulated ENOSPC write."""
    monkeypatch.setattr(feature_cache, "_UNUSABLE_CACHE", set())
    reference = _sweep(toy, tmp_path / "ref.csv")
    cache = tmp_path / "full-cache"
    monkeypatch.setenv("SLIMLIB_CACHE", str(cache))
    with _tmpfs(cache, "size=64k") as mounted:
        if mounted:  # fill the filesystem to the last byte
            (cache / "features").mkdir()
            with contextlib.suppress(OSError), open(cache / "ballast", "wb") as f:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
        else:
            def no_space(*args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(np, "savez", no_space)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            table = _sweep(toy, tmp_path / "s.csv")
        assert not list((cache / "features").glob("*"))  # no entries, no temporaries left
    [warning] = _one_unusable_warning(record)
    assert "No space left" in str(warning.message)
    pd.testing.assert_series_equal(table["value"], reference["value"])


# ============================================================ 6: a bad field in the table

def test_a_bad_field_names_file_and_line_and_the_sweep_recomputes_it(toy, tmp_path,
                                                                     stand_in_prepare):
    out = tmp_path / "s.csv"
    reference = _sweep(toy, out)
    lines = out.read_text().splitlines(keepends=True)
    col = sweep_mod.COLUMNS.index("value")
    fields = lines[3].rstrip("\n").split(",")
    fields[col] = "abc"
    lines[3] = ",".join(fields) + "\n"
    out.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"s\.csv, line 4, column 'value': 'abc'"):
        sweep_mod.read_table(out)
    with pytest.warns(RuntimeWarning, match="line 4"):
        resumed = _sweep(toy, out)
    side = sweep_mod.quarantine_path(out)
    assert side.is_file() and "abc" in side.read_text()
    pd.testing.assert_frame_equal(resumed.drop(columns=["runtime_s", "extract_s"]),
                                  reference.drop(columns=["runtime_s", "extract_s"]))
    assert len(sweep_mod.read_table(out)) == len(reference)


# ============================================================ 9: supported settings

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_extract_on_half_precision_slimmed_models(dtype):
    from slimlib.slimming import slim

    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6) % 2
    full = slim(TinyEncoder().vit, 0.5)
    half = slim(TinyEncoder().vit, 0.5).to(dtype)
    f32, _ = features.extract(full, (x, y), cache=False, progress=False)
    f16, _ = features.extract(half, (x, y), cache=False, progress=False)
    assert f16.dtype == np.float32 and f16.shape == f32.shape
    assert np.abs(f16 - f32).max() < 0.1 * np.abs(f32).max()


def test_packaged_vitb_configs_use_device_auto():
    from slimlib.train import loop
    from slimlib.train.configs import load_config

    for name in ("moco_vitb16", "moco_vitb16_slimmable", "mae_vitb16", "mae_vitb16_slimmable"):
        assert load_config(name).device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert loop.resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="set device: auto"):
            loop.resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        load_config("moco_vitb16", device="gpu-please")


def test_auto_device_config_trains_on_this_machine(tmp_path):
    from slimlib.train import pretrain
    from tests.train.test_train import rand_images, tiny_config

    result = pretrain(tiny_config(device="auto", **{"optim.steps": 1}), rand_images(),
                      tmp_path / "run", progress=False)
    assert result.step == 1


def test_garbage_and_truncated_checkpoints_get_a_clear_message(tmp_path):
    from slimlib.models.download import read_state_dict

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.pth"
    torch.save({"w": torch.randn(64, 64)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    fake_st = tmp_path / "fake.safetensors"
    fake_st.write_bytes(b"not safetensors at all")
    for path in (garbage, truncated, fake_st):
        with pytest.raises(ValueError, match="is not a readable checkpoint") as info:
            read_state_dict(path)
        assert "weights_only=False" not in str(info.value)
        assert "download it again" in str(info.value)


# ============================================================ 10: smaller silent issues

def test_results_and_cache_files_respect_the_umask(toy, tmp_path, stand_in_prepare):
    from slimlib.train.loop import save_atomic

    old = os.umask(0o022)
    try:
        out = tmp_path / "results" / "s.csv"
        _sweep(toy, out, widths=(1.0,))
        save_atomic({"x": 1}, tmp_path / "ckpt" / "last.pt")
        entries = list((Path(os.environ["SLIMLIB_CACHE"]) / "features").glob("*.npz"))
        assert entries
        for path in [out, tmp_path / "ckpt" / "last.pt", *entries]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        os.umask(0o077)  # a private umask still gives private files
        save_atomic({"x": 1}, tmp_path / "ckpt" / "private.pt")
        assert stat.S_IMODE((tmp_path / "ckpt" / "private.pt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_float32_widths_keep_the_decimal_number_of_dims():
    from slimlib._validation import check_width, slimmed_dim

    assert slimmed_dim(check_width(np.float32(0.7)), 10) == 7  # float64 0.699999988...
    assert slimmed_dim(float(np.float32(0.7)), 10) == 7
    assert slimmed_dim(np.float32(0.7), 10) == 7
    assert slimmed_dim(np.float32(0.3), 10) == 3
    assert slimmed_dim(0.3, 10) == 3
    assert slimmed_dim(np.float32(0.1), 384) == 38
    assert slimmed_dim(0.069999, 100) == 6  # a genuinely smaller width is still floored
    assert slimmed_dim(0.001, 64) == 1


def test_dataset_name_typos_get_did_you_mean():
    with pytest.raises(ValueError, match="did you mean 'eurosat-rgb'"):
        D.load("eurosat-rbg")
    with pytest.raises(ValueError, match="did you mean 'cifar10'"):
        D.info("cifar-10")


TRAINER = '''\
import sys
from pathlib import Path
from tests.train.test_train import rand_images, tiny_config
from slimlib.train import pretrain
pretrain(tiny_config(checkpoint_every=1, **{"optim.steps": 100000}), rand_images(),
         Path(sys.argv[1]), progress=False)
'''


def test_a_killed_training_run_leaves_no_temporaries_after_resume(tmp_path):
    from slimlib.train import pretrain
    from tests.train.test_train import rand_images, tiny_config

    run_dir, script = tmp_path / "run", tmp_path / "trainer.py"
    script.write_text(TRAINER)
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "loss.csv").exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    # what a kill in the middle of a write leaves behind (the timing above may miss one)
    (run_dir / ".loss.csv.killed.tmp").write_text("step,loss\n1,")
    (run_dir / ".last.pt.killed.tmp").write_bytes(b"partial")
    cfg = tiny_config(checkpoint_every=1, **{"optim.steps": 100000})
    result = pretrain(cfg, rand_images(), run_dir, progress=False,
                      max_steps=_resumed_steps(run_dir) + 1)
    assert result.step >= 1
    assert not list(run_dir.glob(".*.tmp")), list(run_dir.glob(".*.tmp"))


def _resumed_steps(run_dir: Path) -> int:
    return len(pd.read_csv(run_dir / "loss.csv"))


# ============================================================ diagnose report folders


def _diagnose_cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "slimlib", "diagnose", "--model", "tests.tiny_models:build",
            "--data", str(data), "--out", str(out), "--widths", "1", "0.5", "--folds", "3",
            "--no-control", "--no-latency", "--no-progress"]


def test_two_concurrent_diagnose_runs_into_one_folder_never_replace_a_report(tmp_path):
    """Before: both exited 0 and the second silently replaced the first report. Now one run
    writes the report; the other exits 2 with one line (locked, or the report is there)."""
    from tests.diagnosis.test_diagnose import _folder

    data = _folder(tmp_path / "imgs")
    out = tmp_path / "rep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen(_diagnose_cmd(data, out), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1 and "Traceback" not in loser
    assert "another diagnosis is writing to" in loser or "already holds a report" in loser
    saved = json.loads((out / "report.json").read_text())
    assert [r["width"] for r in saved["rows"]] == [1.0, 0.5]
    winner = next(o for code, o, _ in results if code == 0)
    assert str(out / "report.html") in winner


def test_a_read_only_report_folder_is_a_one_line_error(tmp_path, capsys):
    from slimlib.__main__ import main
    from tests.diagnosis.test_diagnose import _folder

    data = _folder(tmp_path / "imgs")
    folder = tmp_path / "ro"
    with _read_only_folder(folder):
        code = main(_diagnose_cmd(data, folder / "rep")[3:])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot write the report folder" in err and "pass out= a folder you can write" in err
