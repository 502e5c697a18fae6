"""Sharded sweeps: planning, merging, the local submitit executor and a real SLURM cluster.

The ``slurm`` tests submit job arrays to the single-node cluster of
``scripts/slurm_local.sh start`` (``.ci/run`` starts it) and skip with the reason when no
SLURM controller answers. Everything runs the ``smoke`` profile (random weights, synthetic
data, tiny subsets, 1 seed): the numbers are pipeline checks, not results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from slimlib import book
from slimlib import scale as cluster
from slimlib.book import profiles, sweep_plan
from slimlib.book.runs import sweep_for
from slimlib.book.sweep_plan import plan
from slimlib.scale import VALUE_COLUMNS, MergeConflictError, Shard, SweepCall, merge
from slimlib.settings import PROCESS_ENVS, Settings
from slimlib.sweeping import KEY_COLUMNS, read_table

MODELS = ("rs-moco-tiny", "rs-mae-tiny")
KEYS = ["model", "dataset", "protocol", "metric", "seed", "width", "parts", "order", "scale"]


def _profile(**overrides):
    base = {"models": ["rs-moco-tiny"], "datasets": ["synthetic-rgb"],
            "cv_datasets": ["synthetic-rgb"]}
    return profiles.resolve("smoke", **{**base, **overrides})


def _settings(root: Path, environ: dict[str, str] | None = None) -> cluster.JobSettings:
    # environ={}: nothing from this shell (CI sets SLIMLIB_DATA) reaches the jobs
    environ = {} if environ is None else environ
    settings = Settings.from_env(environ, results=root / "results", cache=root / "cache")
    return cluster.JobSettings.resolve(settings, environ=environ)


def _in_process(profile, root: Path) -> pd.DataFrame:
    """The same sweep in this process, with its own cache (so nothing is reused)."""
    settings = _settings(root)
    return book.sweep_for(settings.for_profile(profile), profile.models)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    cols = KEYS + list(VALUE_COLUMNS)
    out = frame[cols].copy()
    out["width"] = out["width"].round(9)
    return out.sort_values(KEYS).reset_index(drop=True)


def _assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(_canonical(got), _canonical(want), check_dtype=False)


def _no_duplicate_keys(frame: pd.DataFrame) -> None:
    keys = frame[list(KEY_COLUMNS)].assign(width=frame["width"].round(9))
    assert not keys.duplicated().any()


# ============================================================================ no SLURM


def test_plan_groups_book_requests_per_model_and_dataset():
    cfg = _profile()
    shards = plan(cfg)
    by_id = {s.id: s for s in shards}
    assert len(by_id) == len(shards)
    pairs = {(s.model, s.dataset) for s in shards}
    controls = [f"rs-moco-tiny [random init {s}]" for s in cfg.init_seeds]
    assert pairs == {(m, "synthetic-rgb") for m in
                     ("rs-moco-tiny", "rs-moco-tiny-slimmable", "cv-moco-tiny", *controls)}
    first = next(s for s in shards if s.model == cfg.models[0])
    assert {c.order for c in first.calls} == {"first", "last", "random"}
    assert {c.parts for c in first.calls} >= {("attn",), ("ffn",), ("attn", "ffn")}
    chunked = plan(_profile(widths=[0.1, 0.25, 0.5, 1.0]), book=False, max_widths=3)
    assert [s.calls[0].widths for s in chunked] == [(0.1, 0.25, 0.5), (1.0,)]
    assert Shard.from_dict(first.as_dict()) == first
    with pytest.raises(ValueError, match="select nothing"):
        plan(cfg, datasets=["cifar10"])
    with pytest.raises(ValueError, match="unknown dataset 'no-such-dataset'"):
        plan(cfg, datasets=["no-such-dataset"])
    with pytest.raises(ValueError, match="max_widths"):
        plan(cfg, max_widths=0)


def test_settings_are_one_object_from_the_entry_point_to_the_job(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("SLIMLIB_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GEO_BENCH_DIR", "/inherited")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = _settings(tmp_path)
    assert settings.settings.data is None and settings.process_env == ()
    # the jobs' paths travel as an explicit Settings, not as environment variables
    job = settings.settings
    assert job.data is None and job.geobench is None
    assert job.results == tmp_path / "results" and job.cache == tmp_path / "cache"
    profile = settings.for_profile(_profile())
    assert profile.settings is job and profile.data_root is None  # the same object
    assert pickle.loads(pickle.dumps(settings)) == settings  # submitit pickles it
    # only third-party process variables reach the job, as its environment: set as given,
    # unset otherwise; slimlib's own paths are never among them
    setup = settings.setup()
    assert setup[0].startswith(f"export PYTHONPATH={settings.code_dir}")
    assert setup[1:] == [f"unset {key}" for key in PROCESS_ENVS]
    assert "HF_HUB_OFFLINE" in PROCESS_ENVS and not any("SLIMLIB_DATA" in s for s in setup)
    given = _settings(tmp_path, {"HF_HOME": "/h f", "SLIMLIB_OFFLINE": "1", "HF_HUB_OFFLINE": "",
                                 "GEO_BENCH_DIR": "/gb"})
    assert given.process_env == (("HF_HOME", "/h f"), ("SLIMLIB_OFFLINE", "1"))
    assert given.settings.geobench == Path("/gb")  # a location: a field, not a variable
    assert given.setup()[1:] == ["export HF_HOME='/h f'", "export SLIMLIB_OFFLINE=1",
                                 "unset HF_HUB_OFFLINE"]
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # this process's environment is not written
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Settings.from_env({}, data=tmp_path / "missing")
    with pytest.raises(TypeError, match="slimlib.settings.Settings"):
        cluster.JobSettings.resolve(str(tmp_path), environ={})
    with pytest.raises(ValueError, match="variable names"):
        cluster.JobSettings(job, tmp_path, tmp_path, (("A; rm -rf /", "1"),))


def _job_environment(profile, models, datasets, *, table, **call):
    """A runner that records what the job process sees instead of sweeping."""
    import torch

    seen = {"env": {key: os.environ.get(key) for key in (*PROCESS_ENVS, "PYTHONPATH")},
            "hub": torch.hub.get_dir(), "results": str(profile.settings.results)}
    profile.results_path(table).parent.mkdir(parents=True, exist_ok=True)
    profile.results_path(table).with_suffix(".json").write_text(json.dumps(seen))
    return pd.DataFrame()


def test_a_job_runs_with_the_settings_and_process_variables_it_was_given(tmp_path,
                                                                          monkeypatch):
    """A local job (whose process inherits this one's environment) sees the process
    variables of its JobSettings and nothing else of them, and torch hub's folder."""
    import cloudpickle

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # in the submitting shell, not given to the job
    monkeypatch.setenv("HF_HOME", "/not/this/one")
    settings = _settings(tmp_path, {"HF_HOME": str(tmp_path / "hf home"), "SLIMLIB_OFFLINE": "1"})
    settings = dataclasses.replace(settings, hub_dir=tmp_path / "hub")
    shard = Shard("env", "rs-moco-tiny", "synthetic-rgb", (SweepCall(),))
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the runner lives in this test module
    try:
        (record,) = cluster.submit(_profile(), [shard], runner=_job_environment,
                                   executor="local", settings=settings, time_limit="00:05")
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    (state,) = cluster.wait([record], poll_s=0.2, progress=False, timeout_s=120)
    assert state["state"] == "done", cluster.summary([state])
    seen = json.loads(Path(record.tables[0]).with_suffix(".json").read_text())
    assert seen["env"]["HF_HOME"] == str(tmp_path / "hf home")
    assert seen["env"]["SLIMLIB_OFFLINE"] == "1" and seen["env"]["HF_HUB_OFFLINE"] is None
    assert seen["env"]["PYTHONPATH"].split(":")[0] == str(settings.code_dir)
    assert seen["hub"] == str(tmp_path / "hub")
    assert seen["results"] == str(settings.settings.results)
    assert os.environ["HF_HOME"] == "/not/this/one"  # the submitting side is left alone


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The whole book plan of the smoke profile, run by the local submitit executor."""
    root = tmp_path_factory.mktemp("local")
    cfg = _profile()
    settings = _settings(root)
    records = cluster.submit(cfg, runner=sweep_for, shards=plan(cfg), executor="local", settings=settings,
                             array_parallelism=1, time_limit="00:10")
    states = cluster.wait(records, poll_s=0.5, progress=False, timeout_s=300)
    merged = cluster.merge_results(settings, cfg.name)
    return cfg, settings, states, merged


def test_local_executor_runs_every_shard(local_run, tmp_path):
    cfg, settings, states, merged = local_run
    assert [s["state"] for s in states] == ["done"], cluster.summary(states)
    logs = settings.shard_dir(cfg.name) / "logs"
    assert not (logs / "%j").exists()  # local jobs' files are named by their real ids
    assert Path(states[0]["log"]).name.startswith(f"{states[0]['job_id']}_")
    assert "1 done, 0 failed" in cluster.summary(states)
    assert Path(merged.attrs["path"]) == settings.settings.results / "smoke" / "sweep.csv"
    _no_duplicate_keys(merged)
    assert set(merged["model"]) == {"rs-moco-tiny", "rs-moco-tiny-slimmable", "cv-moco-tiny",
                                    *(f"rs-moco-tiny [random init {s}]" for s in cfg.init_seeds)}
    # the merged rows of the main curves equal an in-process sweep with its own cache
    reference = _in_process(cfg, tmp_path)
    keys = list(KEY_COLUMNS)
    got = merged.merge(reference[keys], on=keys, how="inner")
    _assert_same_rows(got, reference)


def test_chapters_compute_nothing_after_merge(local_run):
    """Replays every entry of the book's sweep plan on the merged table, as the chapters and
    the claims read them (``sweep_plan.run`` / ``run_controls``; chapters 3-6, 8 and 9 make
    the same ``sweep_for`` / ``controls_for`` calls): the shards computed all of it."""
    cfg, settings, _, merged = local_run
    path = Path(merged.attrs["path"])
    before = path.read_bytes()
    cfg = settings.for_profile(cfg)  # the jobs' settings, explicitly: their results and cache
    tables = {r.name: sweep_plan.run(cfg, r.name) for r in sweep_plan.REQUESTS
              if r.init_seeds is None}
    control_rows, _, _ = sweep_plan.run_controls(cfg)
    assert set(tables) == {"main", "slimmable", "cv_rs", "cv_own", "orders", "parts", "probes"}
    heavy = {"slim", "extract", "probe", "metrics", "flops"}
    for name, table in tables.items():
        assert len(table) > 0, name
        assert not heavy & set(table.attrs["timings"]), (name, table.attrs["timings"])
    assert set(control_rows["model"]) == {cfg.models[0], *(
        f"{cfg.models[0]} [random init {s}]" for s in cfg.init_seeds)}
    assert path.read_bytes() == before  # not a row appended


def test_merge_collapses_identical_and_refuses_disagreeing_duplicates(local_run, tmp_path):
    _, settings, _, merged = local_run
    src = Path(merged.attrs["path"])
    rows = read_table(src)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    shutil.copy(src, a)
    shutil.copy(src, b)
    out = tmp_path / "sweep.csv"
    again = merge([a, b, tmp_path / "not-there-yet.csv"], out)
    assert again.attrs["n_duplicates"] == len(rows)
    _assert_same_rows(read_table(out), rows)
    lines = b.read_text().splitlines()
    fields = lines[1].split(",")
    value_at = list(read_table(b).columns).index("value")
    fields[value_at] = repr(float(fields[value_at]) + 0.01)
    b.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    before = out.read_bytes()
    with pytest.raises(MergeConflictError, match="value="):
        merge([a, b], out)
    assert out.read_bytes() == before  # refused atomically: the old table is intact
    empty = merge([], tmp_path / "empty.csv")
    assert empty.empty and list(read_table(tmp_path / "empty.csv").columns) == list(rows.columns)


def _first_row(table: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not (table.is_file() and len(table.read_text().splitlines()) > 1):
        assert time.monotonic() < deadline, "the shard never wrote a row"
        time.sleep(0.05)


def _task_pid(root: int) -> int:
    """The submitit task process below a local job's controller (``python -m
    submitit.core._submit``)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"submitit.core._submit" in cmd:
            return pid
        todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    raise AssertionError(f"no submitit task below process {root}")


def test_local_preemption_checkpoints_requeues_and_resumes(tmp_path):
    """USR2 (what submitit/SLURM send before a time limit or preemption) mid-run: the job
    checkpoints, is requeued by submitit and finishes from the rows already written."""
    widths = [round(0.1 * k, 1) for k in range(1, 11)]
    cfg = _profile(models=[MODELS[0]], widths=widths)
    settings = _settings(tmp_path)
    (record,) = cluster.submit(cfg, runner=sweep_for, shards=plan(cfg, book=False), executor="local",
                               settings=settings, time_limit="00:10")
    table = Path(record.tables[0])
    _first_row(table)
    os.kill(_task_pid(int(record.job_id)), signal.SIGUSR2)
    (state,) = cluster.wait([record], poll_s=0.5, progress=False, timeout_s=300)
    assert state["state"] == "done", cluster.summary([state])
    assert state["requeues"] == 1 and "1 requeued" in cluster.summary([state])
    rows = read_table(table)
    assert len(rows) == len(widths) * 5
    _no_duplicate_keys(rows)


# ============================================================================ real SLURM


def _slurm_up() -> str | None:
    if shutil.which("srun") is None:
        return "no srun on PATH: install slurm-wlm and run `bash scripts/slurm_local.sh start`"
    try:
        done = subprocess.run(["srun", "-N1", "-t", "1", "hostname"], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"SLURM does not answer `srun -N1 hostname` ({err})"
    if done.returncode:
        return (f"SLURM does not answer `srun -N1 hostname`: {done.stderr.decode()[-200:]} "
                "(start it with `bash scripts/slurm_local.sh start` as root)")
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)


BAD = Shard("broken", "no-such-model", "synthetic-rgb", (SweepCall(),))


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """2 models x 1 dataset x 3 widths as a job array, plus a shard that raises."""
    root = tmp_path_factory.mktemp("slurm")
    cfg = _profile(models=list(MODELS))
    settings = _settings(root / "job")
    shards = [*plan(cfg, book=False), BAD]
    records = cluster.submit(cfg, runner=sweep_for, shards=shards, executor="slurm", settings=settings,
                             time_limit="00:10")
    states = cluster.wait(records, poll_s=1, progress=False, timeout_s=300)
    return cfg, settings, records, states, cluster.merge_results(settings, cfg.name), root


@pytest.mark.slurm
def test_slurm_array_equals_in_process(slurm_run):
    cfg, settings, records, states, merged, root = slurm_run
    logs = settings.shard_dir(cfg.name) / "logs"
    assert not (logs / "%j").exists()  # every job's folder is named by its real id
    assert [Path(r.stderr).parent.name for r in records] == [r.job_id for r in records]
    assert len({r.job_id.split("_")[0] for r in records}) == 1  # one job array
    assert [s["state"] for s in states[:2]] == ["done", "done"], cluster.summary(states)
    assert set(merged["model"]) == set(MODELS) and merged["width"].nunique() == 3
    _no_duplicate_keys(merged)
    _assert_same_rows(merged, _in_process(cfg, root / "ref"))


@pytest.mark.slurm
def test_slurm_failed_shard_is_reported_with_its_log(slurm_run):
    _, settings, records, states, merged, _ = slurm_run
    bad = states[2]
    assert bad["state"] == "failed" and bad["shards"] == ["broken"]
    assert "no-such-model" in Path(bad["log"]).read_text()
    text = cluster.summary(states)
    assert "2 done, 1 failed" in text and bad["log"] in text
    assert "no-such-model" not in set(merged["model"])


@pytest.mark.slurm
def test_slurm_scancel_then_resubmit_gives_identical_table(slurm, tmp_path):
    # one shard with enough widths that it is still running KillWait seconds after its
    # first row: scancel sends SIGTERM (which submitit jobs ignore, since SLURM also sends it
    # before a preemption's USR2), then SIGKILL after KillWait (2 s on the test cluster; the
    # kill lands ~4 s after the scancel)
    widths = [round(0.0125 * k, 4) for k in range(1, 81)]
    cfg = _profile(models=[MODELS[0]], widths=widths, limit_per_class=40,
                   test_limit_per_class=20)
    settings = _settings(tmp_path / "job")
    shards = plan(cfg, book=False)
    records = cluster.submit(cfg, runner=sweep_for, shards=shards, executor="slurm", settings=settings,
                             time_limit="00:10")
    table = Path(records[0].tables[0])
    full = len(widths) * 5  # 1 k-NN row + 4 feature-metric rows per width
    _first_row(table)
    subprocess.run(["scancel", records[0].job_id], check=True)
    # within the KillWait window SLURM still lists the job as COMPLETING (--status used to
    # say "running"); it reads "cancelled" as soon as slurmstepd has logged the cancel
    seen = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1][0] == "running":
        assert time.monotonic() < deadline, seen
        (state,) = cluster.status(records)
        seen.append((state["state"], state.get("slurm")))
        time.sleep(0.1)
    assert seen[-1][0] == "cancelled", seen
    states = cluster.wait(records, poll_s=1, progress=False, timeout_s=300)
    assert states[0]["state"] == "cancelled", cluster.summary(states)
    assert "(scancel); resubmit to resume" in states[0]["error"]
    assert "0 failed" in cluster.summary(states) and "1 cancelled" in cluster.summary(states)
    partial = len(read_table(table, repair=False))
    assert 0 < partial < full, f"the cancel came too late ({partial} of {full} rows)"
    again = cluster.submit(cfg, runner=sweep_for, shards=shards, executor="slurm", settings=settings,
                           time_limit="00:10")
    states = cluster.wait(again, poll_s=1, progress=False, timeout_s=300)
    assert [s["state"] for s in states] == ["done"], cluster.summary(states)
    assert cluster.latest_jobs(settings, cfg.name) == again
    merged = cluster.merge_results(settings, cfg.name)
    assert merged.attrs["n_duplicates"] == 0 and len(merged) == full
    _no_duplicate_keys(merged)
    # the uninterrupted in-process sweep, on the jobs' feature cache (so it only re-probes;
    # independent extraction is compared in test_slurm_array_equals_in_process)
    # the jobs' settings, explicitly: their cache and results
    reference = book.sweep_for(settings.for_profile(cfg), cfg.models, table="reference.csv")
    assert "extract" not in reference.attrs["timings"]  # the features came from the cache
    _assert_same_rows(merged, reference)
