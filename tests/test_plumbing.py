"""The shared plumbing: one atomic-write recipe, one data fingerprint, shared validators."""

from __future__ import annotations

import stat
import threading

import numpy as np
import pytest
import torch

from slimlib import _io, _validation, book


def test_atomic_path_moves_into_place_with_umask_mode(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    with _io.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".table.csv.")
        tmp.write_text("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"
    assert stat.S_IMODE(target.stat().st_mode) == _io.default_mode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_atomic_path_keeps_old_content_and_no_temporary_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), _io.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_path_gives_concurrent_writers_distinct_temporaries(tmp_path):
    target = tmp_path / "same.txt"
    seen, barrier = [], threading.Barrier(4)

    def write(i):
        with _io.atomic_path(target) as tmp:
            seen.append(tmp)
            barrier.wait(timeout=10)  # all four temporaries exist at once
            tmp.write_text(str(i))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    assert target.read_text() in {"0", "1", "2", "3"}
    assert [p.name for p in tmp_path.iterdir()] == ["same.txt"]


def test_atomic_write_text_and_bytes(tmp_path):
    _io.atomic_write(tmp_path / "t.txt", "a\r\nb")
    assert (tmp_path / "t.txt").read_bytes() == b"a\r\nb"  # no newline translation
    _io.atomic_write(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_compute_cache_writes_through_a_unique_temporary():
    """book.compute_table_cached used a fixed ``<name>.tmp``; it now uses atomic_path."""
    import inspect


    source = inspect.getsource(book.compute_table_cached)
    assert "atomic_path" in source and 'with_suffix(".tmp")' not in source


def test_one_data_fingerprint_algorithm():
    from slimlib import data as sdata
    from slimlib.features import data_fingerprint
    from slimlib.train import loop

    ds = sdata.load("synthetic-rgb", "train")
    full = data_fingerprint(ds)
    assert len(full) == 32
    assert loop.data_fingerprint(ds) == full[:16] == data_fingerprint(ds, digits=16)
    images = ds.images[:8]
    assert loop.data_fingerprint(images) == data_fingerprint(images)[:16]
    assert data_fingerprint(images) != data_fingerprint(ds.images[1:9])
    with pytest.raises(ValueError, match="digits"):
        data_fingerprint(ds, digits=7)


def test_fingerprint_of_a_folder_dataset(tmp_path):
    from slimlib.features import data_fingerprint

    class Folder:
        def __init__(self, paths):
            self.paths = paths

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"12")
    b.write_bytes(b"123")
    one = data_fingerprint(Folder([str(b), str(a)]))
    assert one == data_fingerprint(Folder([str(a), str(b)]))  # order does not matter
    b.write_bytes(b"1234")
    assert data_fingerprint(Folder([str(a), str(b)])) != one  # sizes do


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "3", None])
def test_check_int_refuses(value):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        _validation.check_int(value, "n")


def test_check_int_accepts_and_bounds():
    assert _validation.check_int(np.int64(3), "n") == 3
    assert _validation.check_int(0, "seed", low=0) == 0
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        _validation.check_int(-1, "seed", low=0)
    with pytest.raises(ValueError, match="folds must be an int >= 2"):
        _validation.check_int(1, "folds", low=2)


def test_check_interval():
    _validation.check_interval("crop", [0.2, 1.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="a pair"):
        _validation.check_interval("crop", 0.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="low <= high"):
        _validation.check_interval("crop", (0.9, 0.2), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"a number in \[0.0, 1.0\]"):
        _validation.check_interval("crop", (0.2, 2.0), 0.0, 1.0)


def test_check_paired_samples_and_splits():
    with pytest.raises(ValueError, match="train_x has 3 samples but train_y has 2"):
        _validation.check_paired_samples(torch.zeros(3, 2), np.zeros(2), "train")

    class Split:
        def __init__(self, task, classes):
            self.task, self.classes, self.name, self.split = task, classes, "d", "s"

    _validation.check_splits_of_one_task(Split("seg", ("a",)), Split("seg", ("a",)), Split)
    with pytest.raises(ValueError, match="not splits of one task"):
        _validation.check_splits_of_one_task(Split("seg", ("a",)), Split("cd", ("a",)), Split)
    with pytest.raises(TypeError, match="must be Split"):
        _validation.check_splits_of_one_task(Split("seg", ()), object(), Split)


def test_sweep_scores_through_probes_score_outcomes(monkeypatch):
    """The sweep scores through the probes' one dispatch (with the per-image outcomes)."""
    from slimlib import probes, sweeping

    calls = []

    def fake(protocol, train_x, train_y, test_x, test_y, **kwargs):
        calls.append(protocol)
        return 0.25, np.asarray(test_y), np.zeros_like(test_y)

    monkeypatch.setattr(probes, "score_outcomes", fake)
    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    assert sweeping._run._score("linear", (x, y), (x, y), 0, 1.0) == (0.25, [], "1:0101:0000")
    assert calls == ["linear"]


def test_no_writer_rolls_its_own_temporary_file():
    """Every atomic write goes through slimlib._io (one recipe, unique temporary names): no
    module outside it makes a temporary *file* (mkstemp / NamedTemporaryFile) or a fixed
    ``<name>.tmp`` path. Renaming a finished file or folder with os.replace is not a write."""
    import pathlib
    import re

    pattern = re.compile(r"mkstemp\(|NamedTemporaryFile|with_suffix\(\"\.tmp\"\)")
    root = pathlib.Path(__file__).resolve().parents[1] / "slimlib"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "_io.py" and pattern.search(p.read_text())]
    assert not offenders, offenders
    assert pattern.search('fd, tmp = tempfile.mkstemp(dir=d)')  # the guard can fail
    assert pattern.search('tmp = path.with_suffix(".tmp")')
