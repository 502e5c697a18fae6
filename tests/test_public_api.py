"""The public API is what it was before the package layout changed (issue 24), and the core
of the library runs without the book's, the cluster's or the deployment's dependencies.

``tests/snapshots/api_signatures.json`` was written before the move by the code in
:func:`signatures` (every name in ``__all__`` of ``slimlib``, ``slimlib.models``,
``slimlib.data`` and ``slimlib.sweeping``, with its signature or value).
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_name("snapshots") / "api_signatures.json"
PACKAGES = ("slimlib", "slimlib.models", "slimlib.data", "slimlib.sweeping")

#: Sub-modules ``slimlib.__all__`` listed before the move, and where their code lives now
#: (the old module names are gone: no re-export shims).
MOVED_MODULES = {
    "chapters": "slimlib.book",
    "compute": "slimlib.measure",
    "config": "slimlib.settings",
    "exporting": "slimlib.deploy",
    "fast": "slimlib.deploy",
    "inputs": "slimlib.diagnosis",
    "plotting": "slimlib.book.plotting",
    "profiles": "slimlib.book.profiles",
    "reference": "slimlib.book.reference",
    "report": "slimlib.diagnosis",
}


def describe_name(obj) -> str:
    """What the snapshot records of one public name."""
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        try:
            return "class" + str(inspect.signature(obj))
        except (TypeError, ValueError):
            return "class"
    if callable(obj):
        return "def" + str(inspect.signature(obj))
    text = repr(obj)
    return f"value {type(obj).__name__} " + (text if len(text) < 400 else f"len={len(obj)}")


def signatures() -> dict[str, dict[str, str]]:
    out = {}
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        out[pkg] = {name: describe_name(getattr(mod, name)) for name in mod.__all__}
    return out


def test_every_public_name_keeps_its_signature():
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    now = signatures()
    for pkg in PACKAGES:
        for name, text in before[pkg].items():
            if pkg == "slimlib" and name in MOVED_MODULES:
                continue
            assert name in now[pkg], f"{pkg}.{name} is gone"
            assert now[pkg][name] == text, f"{pkg}.{name} changed:\n{text}\n{now[pkg][name]}"


@pytest.mark.parametrize("old,new", sorted(MOVED_MODULES.items()))
def test_moved_modules_are_gone_and_their_new_home_imports(old, new):
    import slimlib

    assert old not in slimlib.__all__
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"slimlib.{old}")
    importlib.import_module(new)


def test_the_documented_calls_still_work():
    import timm
    import torch

    import slimlib

    model = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=32,
                              patch_size=8, depth=2).eval()
    small = slimlib.slim(model, 0.25)
    assert slimlib.describe(small)["d_k"].tolist() == [16, 16]  # 64 // 4 per head
    x = torch.randn(1, 3, 32, 32)
    ratio = slimlib.flops(small, x) / slimlib.flops(model, x)
    assert ratio == pytest.approx(slimlib.relative_compute(model, [0.25], x)[0])
    assert len(slimlib.WIDTHS) == 31 and slimlib.WIDTHS[-1] == 1.0
    for name in ("sweep", "retention", "read_table", "diagnose", "export", "load_slimmed"):
        assert callable(getattr(slimlib, name))
    assert callable(slimlib.models.load) and callable(slimlib.data.load)


#: The optional extras' packages (``[book]``, ``[scale]``, ``[deploy]`` in pyproject.toml).
EXTRAS = ("papermill", "jupyter_book", "jupytext", "nbformat", "nbclient", "ipykernel",
          "sphinx", "myst_nb", "seaborn", "submitit", "onnx", "onnxruntime", "onnxscript")

_CORE_ONLY = '''
import importlib.abc, importlib.machinery, sys
EXTRAS = set({extras!r})
tried = []
class Absent(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes the extras' packages look uninstalled (an import of one fails as it would)."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRAS:
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        tried.append(spec.name)
        raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, Absent())
import slimlib
from slimlib import (slim, describe, flops, relative_compute, WIDTHS, sweep, retention,
                     read_table, diagnose, export, load_slimmed)
import slimlib.models, slimlib.data, slimlib.features, slimlib.probes, slimlib.metrics
import slimlib.sweeping, slimlib.diagnosis, slimlib.dense, slimlib.train, slimlib.deploy
print("TRIED", sorted(set(tried)))
'''


def test_core_imports_none_of_the_extras():
    code = _CORE_ONLY.format(extras=EXTRAS)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "TRIED []"


def test_the_core_only_check_can_fail():
    code = _CORE_ONLY.format(extras=EXTRAS) + "import slimlib.scale\n"  # needs submitit
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "pip install 'slimlib[scale]'" in proc.stderr
