"""Write slimlib's golden outputs to a folder, to check that a refactor changes no behaviour.

Run it before and after a change and compare the two folders (``--compare OLD NEW``)::

    SLIMLIB_DATA=../shared/data SLIMLIB_WEIGHTS=../shared/weights \
        .venv/bin/python scripts/golden_outputs.py write /tmp/golden-before
    ... change the code ...
    .venv/bin/python scripts/golden_outputs.py write /tmp/golden-after
    .venv/bin/python scripts/golden_outputs.py compare /tmp/golden-before /tmp/golden-after

What it writes (smoke profile, a fresh cache and results folder under the output folder):

* ``shards-<profile>.json``: the SLURM shard plan of the smoke, default and paper profiles;
* ``compute-<model>.csv``: the cached compute table of every smoke-profile model (31 widths);
* ``sweep.csv``: every sweep row the smoke profile's claims ask for, without timing columns;
* ``claims.csv`` and ``robustness.csv``: the claims' and chapter 10's verdict tables;
* ``diagnose.csv``: the rows of :func:`slimlib.diagnose` (latency off) on EuroSAT RGB;
* ``export.json``: an export -> ``load_slimmed`` round trip (output checksum and shapes).

Every step uses the entry points a chapter or a user calls. (The outputs in
``/tmp/golden-before`` of the layout change of issue 24 were written by this script's previous
version, which imported the same functions from their old modules.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

TIMING = ("seconds", "latency", "time")


def _drop_timing(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in frame.columns
            if not (c.endswith("_s") or any(t in c.lower() for t in TIMING))]
    return frame[keep]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    os.environ.update(SLIMLIB_PROFILE="smoke", SLIMLIB_CACHE=str(work / "cache"),
                      SLIMLIB_RESULTS=str(work / "results"))
    import torch

    import slimlib
    from slimlib.book import claims, compute_table_cached, profiles
    from slimlib.book import sweep_plan as shards
    from slimlib.book.robustness import chapter as robustness
    from slimlib.book.robustness.chapter import settings as robustness_settings

    torch.manual_seed(0)
    smoke = profiles.resolve("smoke")
    for name in ("smoke", "default", "paper"):
        prof = profiles.resolve(name)
        plan = shards.plan(prof, ablation="auto" if name == "smoke" else None)
        (out / f"shards-{name}.json").write_text(
            json.dumps([s.as_dict() for s in plan], indent=1, sort_keys=True))
    for model in smoke.models:
        table = compute_table_cached(model, slimlib.WIDTHS, profile=smoke)
        table.to_csv(out / f"compute-{model}.csv", index=False)
    evidence = claims.gather(smoke)
    verdicts = claims.evaluate(evidence)
    verdicts.astype(str).to_csv(out / "claims.csv", index=False)
    tables = sorted((work / "results").rglob("*.csv"))
    rows = [pd.read_csv(p).assign(table=p.name) for p in tables
            if "width" in pd.read_csv(p, nrows=0).columns
            and "protocol" in pd.read_csv(p, nrows=0).columns]
    _sorted(_drop_timing(pd.concat(rows, ignore_index=True))).to_csv(out / "sweep.csv",
                                                                     index=False)
    rob = robustness.verdict_table(smoke, robustness_settings(smoke), progress=False)
    rob.astype(str).to_csv(out / "robustness.csv", index=False)

    with tempfile.TemporaryDirectory() as tmp:
        result = slimlib.diagnose("galileo-nano-rgb", "eurosat-rgb", out=Path(tmp) / "report",
                                  widths=(1.0, 0.5, 0.25, 0.1), latency=False,
                                  limit_per_class=12, progress=False, sensitivity=False)
        rows = result["rows"] if isinstance(result, dict) and "rows" in result else result
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        _drop_timing(frame).astype(str).to_csv(out / "diagnose.csv", index=False)
        keep = ("recommended_width", "recommended_cv_retention", "recommended_test_retention",
                "recommended_rel_compute", "scores", "curves", "n_train", "n_test",
                "gflops_full", "compute_floor")
        (out / "diagnose.json").write_text(json.dumps({k: result[k] for k in keep},
                                                      indent=1, sort_keys=True, default=str))

        model = slimlib.models.load("galileo-nano-rgb").eval()
        small = slimlib.slim(model, 0.25)
        path = Path(tmp) / "small.safetensors"
        slimlib.export(small, path, format="safetensors")
        back = slimlib.load_slimmed(path).eval()
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a, b = small(x), back(x)
        (out / "export.json").write_text(json.dumps({
            "max_abs_difference": float((a - b).abs().max()),
            "checksum": round(float(b.double().sum()), 5), "shape": list(b.shape),
            "describe": slimlib.describe(back).astype(str).to_dict("records")}, indent=1))


def compare(old: Path, new: Path) -> int:
    names = sorted(p.name for p in old.iterdir() if p.is_file())
    bad = []
    for name in names:
        a, b = old / name, new / name
        if not b.is_file():
            bad.append(f"{name}: missing after")
        elif a.read_bytes() != b.read_bytes():
            bad.append(f"{name}: differs")
        else:
            print(f"same  {name}")
    for line in bad:
        print(f"DIFF  {line}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write").add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.out)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
