"""``python -m slimlib sweep`` fails cleanly (issue #23 item 4).

Usage errors are one line on stderr with exit status 2 and create nothing; ``--plan`` checks
names and model x dataset fit and prints without the data; Ctrl-C (SIGINT to the CLI) and
``kill -9`` of a CLI that follows local workers (``--executor local --wait``) stop the workers
and keep their rows; a killed random-weights (``smoke``) sweep reruns to the table an
uninterrupted run gives. The process tests run the real CLI on the smoke profile's
random-weight Galileo-nano on the synthetic 13-band data (no data root): pipeline checks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from slimlib import scale as cluster
from slimlib.__main__ import main
from slimlib.book import profiles, runs_on_name, sweep_plan
from slimlib.book.sweep_plan import plan
from slimlib.models import spec
from slimlib.scale import VALUE_COLUMNS, SweepCall
from slimlib.sweeping import KEY_COLUMNS, read_table
from tests.patching import default_sigint

ROOT = Path(__file__).resolve().parents[2]
#: 8 widths x 5 rows (k-NN + 4 feature metrics): long enough for a kill to land mid-run
WIDTHS = ["0.125", "0.25", "0.375", "0.5", "0.625", "0.75", "0.875", "1.0"]
FULL = len(WIDTHS) * 5
TABLE = "smoke/shards/galileo-nano__synthetic-ms.csv"


def _env() -> dict[str, str]:
    """This environment without slimlib's or the data loaders' settings (no data root: the
    smoke profile runs on the synthetic fallback), importing this checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLIMLIB_", "GEO_BENCH", "IMAGENET"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _clean_env(monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SLIMLIB_", "GEO_BENCH", "IMAGENET")):
            monkeypatch.delenv(key)


def _sweep_argv(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "slimlib", "sweep", "--profile", "smoke", "--models",
            "galileo-nano", "--main-only", "--widths", *WIDTHS, "--results", str(root / "res"),
            "--cache", str(root / "cache"), "--poll", "0.2", *extra]


def _start(root: Path) -> subprocess.Popen:
    return subprocess.Popen(_sweep_argv(root, "--executor", "local", "--wait"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)


def _rows(table: Path) -> int:
    try:
        return max(len(table.read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


def _worker_after_first_row(root: Path, cli: subprocess.Popen, timeout_s: float = 240) -> int:
    """The local job's pid (from the manifest) once its shard table holds a row."""
    table = root / "res" / TABLE
    deadline = time.monotonic() + timeout_s
    while _rows(table) < 1:
        assert cli.poll() is None, cli.communicate()
        assert time.monotonic() < deadline, "the worker never wrote a row"
        time.sleep(0.05)
    manifest = json.loads((root / "res/smoke/shards/manifest.json").read_text())
    (job,) = manifest["submissions"][-1]["jobs"]
    return int(job["job_id"])


def _gone(pid: int, timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while cluster.process_start(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    keys = list(KEY_COLUMNS)
    out = frame[keys + list(VALUE_COLUMNS)].assign(width=frame["width"].round(9))
    return out.sort_values(keys).reset_index(drop=True)


# ============================================================================ usage errors


@pytest.mark.parametrize("args, says", [
    (["--profile", "nope", "--plan"], "unknown profile 'nope'"),
    (["--profile", "smoke", "--datasets", "eurosatt", "--plan"], "unknown dataset 'eurosatt'"),
    (["--profile", "smoke", "--models", "galileo-nan", "--plan"], "Unknown model 'galileo-nan'"),
    (["--profile", "smoke", "--widths", "2", "--plan"], "widths must be in the range (0, 1]"),
    (["--profile", "smoke", "--models", "galileo-nano", "--datasets", "eurosat-rgb", "--plan"],
     "'galileo-nano' (bands"),
    (["--profile", "smoke", "--merge"], "no submission recorded"),
    (["--profile", "smoke", "--status"], "no submission recorded"),
    (["--profile", "smoke", "--plan", "--merge"], "give exactly one of"),
    (["--profile", "smoke", "--plan", "--wait"], "--wait follows a submission"),
    (["--profile", "smoke", "--main-only", "--executor", "local", "--time", "4h"],
     "time must be HH:MM"),
    (["--profile", "smoke", "--main-only", "--executor", "local", "--array-parallelism", "0"],
     "array_parallelism"),
    (["--profile", "smoke", "--plan", "--data-root", "no/such/folder"],
     "(given as 'no/such/folder', relative paths are taken against"),
])
def test_usage_error_is_one_line_exit_2_and_creates_nothing(args, says, tmp_path, monkeypatch,
                                                            capsys):
    _clean_env(monkeypatch)
    results = tmp_path / "results"
    code = main(["sweep", *args, "--results", str(results), "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("slimlib sweep: error: ") and err.count("\n") == 1, err
    assert says in err
    assert not results.exists()  # checked before anything was created


def test_unwritable_results_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """A results folder that cannot be created (below a file; root ignores permission bits,
    so a mode-0500 folder would not test it): one line, nothing submitted."""
    _clean_env(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["sweep", "--profile", "smoke", "--models", "galileo-nano", "--main-only",
                 "--executor", "local", "--results", str(blocker / "results"),
                 "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot write the results folder" in err and str(blocker) in err


def test_usage_error_in_a_real_process_has_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "slimlib", "sweep", "--profile", "smoke",
                           "--widths", "2", "--plan", "--results", str(tmp_path)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "slimlib sweep: error: widths must be in the range (0, 1]; got 2.0"]


# ============================================================================ settings


def test_the_cli_builds_one_settings_object_and_hands_it_to_the_jobs(tmp_path, monkeypatch,
                                                                     capsys):
    """Flags and environment are read once (one ``Settings.from_env``); the profile the jobs
    run and the JobSettings they get hold that very object."""
    from slimlib.settings import Settings

    _clean_env(monkeypatch)
    monkeypatch.setenv("SLIMLIB_CACHE", str(tmp_path / "from-env"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    built, submitted = [], {}
    from_env = Settings.from_env

    def counted(cls, *args, **kwargs):
        built.append(from_env(*args, **kwargs))
        return built[-1]

    def fake_submit(profile, shards, **kwargs):
        submitted.update(profile=profile, shards=shards, **kwargs)
        return []

    monkeypatch.setattr(Settings, "from_env", classmethod(counted))
    monkeypatch.setattr(cluster, "submit", fake_submit)
    code = main(["sweep", "--profile", "smoke", "--models", "galileo-nano", "--main-only",
                 "--executor", "local", "--results", str(tmp_path / "res"),
                 "--hub-dir", str(tmp_path / "hub")])
    assert code == 0, capsys.readouterr().err
    (settings,) = built  # resolved once
    job = submitted["settings"]
    assert job.settings is settings and submitted["profile"].settings is settings
    assert settings.results == tmp_path / "res"  # the flag
    assert settings.cache == tmp_path / "from-env"  # the environment
    assert job.hub_dir == tmp_path / "hub"
    assert dict(job.process_env) == {"HF_HOME": str(tmp_path / "hf")}


# ============================================================================ plans


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
@pytest.mark.parametrize("book", [True, False])
def test_builtin_plans_hold_only_runnable_shards(name, book, monkeypatch):
    """Each profile with its real datasets (the embedded ones for smoke/default, GEO-Bench
    for paper): every shard's model can be fed its dataset (the default plan used to hold
    galileo-nano x eurosat-rgb / ucmerced, which fail inside the job)."""
    _clean_env(monkeypatch)
    datasets = (("eurosat-ms", "eurosat-rgb", "ucmerced") if name != "paper" else None)
    cfg = profiles.resolve(name, datasets=datasets,
                           cv_datasets=["cifar10"] if name != "paper" else None)
    shards = plan(cfg, book=book, ablation=None)
    assert shards
    for shard in shards:
        base = shard.model.split(" [random init")[0]
        assert runs_on_name(spec(base), shard.dataset), shard.id
    if name == "default":
        pairs = {(s.model, s.dataset) for s in shards}
        assert ("galileo-nano", "eurosat-ms") in pairs
        assert not {("galileo-nano", "eurosat-rgb"), ("galileo-nano", "ucmerced")} & pairs


def _recorded_plan_calls(monkeypatch, cfg, pair):
    """``{entry: [(function, models, datasets, keywords)]}``: the ``sweep_for`` /
    ``controls_for`` calls ``sweep_plan.run`` / ``run_controls`` make for each entry of the
    plan (recorded, nothing run), with ``pair`` as chapter 7's (model, dataset)."""
    from slimlib.book import runs

    calls: list[tuple[str, tuple, tuple | None, dict]] = []

    def recorder(kind):
        def fake(profile, models, datasets=None, **kwargs):
            assert profile is cfg
            calls.append((kind, tuple(models), None if datasets is None else tuple(datasets),
                          kwargs))
            frame = pd.DataFrame({"model": list(models), "protocol": "knn"})
            frame.attrs.update(timings={}, path="sweep.csv")
            return (frame, frame, frame) if kind == "controls_for" else frame
        return fake

    monkeypatch.setattr(runs, "sweep_for", recorder("sweep_for"))
    monkeypatch.setattr(runs, "controls_for", recorder("controls_for"))
    monkeypatch.setattr(sweep_plan, "ablation_model", lambda profile: pair)
    out = {}
    for request in sweep_plan.REQUESTS:
        start = len(calls)
        if request.init_seeds is None:
            sweep_plan.run(cfg, request.name)
        else:
            sweep_plan.run_controls(cfg, request.name)
        out[request.name] = calls[start:]
    return out


def test_plan_runs_and_shards_one_table(monkeypatch):
    """The plan's table is read three ways and they agree: ``run`` makes exactly the calls
    the chapters make (``main`` is ``sweep_for(cfg, cfg.models)``, ...), and every call
    ``run`` makes is in the shards ``plan`` builds, so a planned sweep leaves the chapters
    and the claims nothing to compute."""
    _clean_env(monkeypatch)
    cfg = profiles.resolve("smoke", datasets=["synthetic-rgb", "synthetic-ms"],
                           cv_datasets=["synthetic-rgb"])
    pair = next((m, d) for m in cfg.models for d in cfg.datasets if runs_on_name(spec(m), d))
    names = [r.name for r in sweep_plan.REQUESTS]
    assert len(set(names)) == len(names) and all(r.readers for r in sweep_plan.REQUESTS)
    by_name = _recorded_plan_calls(monkeypatch, cfg, pair)
    aw = (0.25, 1.0)
    assert by_name["main"] == [("sweep_for", tuple(cfg.models), None, {})]
    slimmable = tuple(dict.fromkeys(m for pair in cfg.slimmable_pairs for m in pair))
    assert slimmable and by_name["slimmable"] == [("sweep_for", slimmable, None, {})]
    assert by_name["cv_rs"] == [("sweep_for", tuple(cfg.cv_models), None, {})]
    assert by_name["cv_own"] == [("sweep_for", tuple(cfg.cv_models), tuple(cfg.cv_datasets),
                                  {})]
    assert by_name["controls"] == [("controls_for", tuple(cfg.models), None, {
        "widths": tuple(cfg.control_widths), "init_seeds": tuple(cfg.init_seeds)})]
    assert [c[3]["order"] for c in by_name["orders"]] == ["first", "last", "random"]
    assert {c[1:3] for c in by_name["parts"]} == {((pair[0],), (pair[1],))}
    assert [c[3] for c in by_name["probes"]] == [{"widths": aw, "protocols": ("knn", "linear"),
                                                 "metrics": False}]
    shards = {(s.model, s.dataset): s.calls for s in plan(cfg, ablation=pair)}
    calls = [(name, *c) for name, entry in by_name.items() for c in entry]
    for name, _, models, datasets, kwargs in calls:
        checked = 0
        kwargs = dict(kwargs)
        seeds = kwargs.pop("init_seeds", ())
        call = SweepCall(**kwargs)
        for model in models:
            labels = [model, *(f"{model} [random init {s}]" for s in seeds)]
            for dataset in datasets or cfg.datasets:
                if not runs_on_name(spec(model), dataset):
                    continue
                for label in labels:
                    assert call in shards[(label, dataset)], (name, label, dataset, call)
                    checked += 1
        assert checked, (name, models, datasets)
    no_ablation = [c for s in plan(cfg, ablation=None) for c in s.calls]
    assert not any(c.order != "first" or not c.metrics for c in no_ablation)


def test_plan_entries_are_named_in_errors():
    cfg = profiles.resolve("smoke")
    with pytest.raises(ValueError, match=r"no entry 'ablations'.*'main'.*'probes'"):
        sweep_plan.run(cfg, "ablations")
    with pytest.raises(ValueError, match=r"entry 'main' has no random-init controls.*"
                                          r"\['controls'\]"):
        sweep_plan.run_controls(cfg, "main")


def test_paper_plan_prints_without_the_data(tmp_path, monkeypatch, capsys):
    """No GEO-Bench on disk: the plan is printed (exit 0) and says what it could not plan."""
    _clean_env(monkeypatch)
    code = main(["sweep", "--profile", "paper", "--plan", "--results", str(tmp_path),
                 "--data-root", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert any(line.startswith("dofa-base__m-eurosat: ") for line in lines)
    n = int(re.search(r"^(\d+) shard\(s\) -> ", out.out, re.M)[1])
    assert n == sum(bool(re.match(r"\S+: .+ x \S+: ", line)) for line in lines) > 0
    assert "not planned: chapter 7's ablation calls" in out.out and "m-eurosat" in out.out
    assert not (tmp_path / "paper").exists()


# ============================================================================ processes


def test_kill_9_of_the_cli_stops_its_worker_and_a_rerun_resumes_to_the_same_table(tmp_path):
    """``kill -9`` of ``sweep --executor local --wait``: its worker stops too (no orphan that
    finishes unmerged); ``--status`` says so; rerunning the command resumes from the rows kept
    and gives the table of an uninterrupted run in a fresh cache (the random weights are
    seeded per model name, so both processes build the same Galileo-nano)."""
    cli = _start(tmp_path)
    worker = _worker_after_first_row(tmp_path, cli)
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait(timeout=60)  # not communicate(): an orphaned worker would hold the pipes open
    assert _gone(worker), "the local worker outlived the killed CLI by 5 s"
    cli.stdout.close()
    cli.stderr.close()
    table = tmp_path / "res" / TABLE
    kept = len(read_table(table, repair=False))
    assert 0 < kept < FULL, f"the kill came too late ({kept} of {FULL} rows)"
    status = subprocess.run([*_sweep_argv(tmp_path), "--status"], env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 1 and "failed" in status.stdout, status.stdout
    again = subprocess.run([*_sweep_argv(tmp_path), "--executor", "local", "--wait"],
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    merged = read_table(tmp_path / "res" / "smoke" / "sweep.csv")
    assert len(merged) == FULL
    reference = subprocess.run([*_sweep_argv(tmp_path / "ref"), "--executor", "local",
                                "--wait"], env=_env(), capture_output=True, text=True,
                               timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    want = read_table(tmp_path / "ref" / "res" / "smoke" / "sweep.csv")
    pd.testing.assert_frame_equal(_canonical(merged), _canonical(want), check_dtype=False)


def test_ctrl_c_stops_the_workers_and_says_how_many_rows_were_kept(tmp_path):
    cli = _start(tmp_path)
    worker = _worker_after_first_row(tmp_path, cli)
    os.kill(cli.pid, signal.SIGINT)  # what Ctrl-C sends the CLI
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert cluster.process_start(worker) is None  # stopped before the CLI returned
    found = re.search(r"stopped 1 local worker\(s\); (\d+) rows kept; rerun to resume$",
                      err.strip())
    assert found, err[-2000:]
    assert int(found[1]) == _rows(tmp_path / "res" / TABLE) > 0
