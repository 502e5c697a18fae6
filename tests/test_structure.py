"""Structure guards for slimlib: the library never imports the book, no module imports another
sub-package's private ``_x`` module, no import cycle (between modules or between stages), no
hidden string imports.

Each guard is a function over source text, so the tests below also show it failing on a toy
package (a guard that cannot fail guards nothing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "slimlib"
#: The companion book's code: a client of the library (issue 24).
CLIENT = "slimlib.book"
#: Modules outside the book that may import it: the command line's entry point, which
#: dispatches ``python -m slimlib run`` / ``sweep`` (the book's commands) to it.
CLIENT_IMPORT_ALLOWED = {"slimlib.__main__"}
#: The package's own PEP 562 hook: ``slimlib.<name>`` is imported on first attribute access,
#: so ``import slimlib`` stays free of torch. It is the one dynamic import of slimlib code.
DYNAMIC_IMPORT_ALLOWED = {"slimlib/__init__.py"}


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` of every module under ``root/package``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (never run)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports, at top level or inside functions (a lazy
    import inside a function is still a dependency). Edges to a module's own parent packages
    are implicit in Python and left out."""
    mods = _modules(root, package)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            for target in targets:
                dep = resolve(target) if target.split(".")[0] == package else None
                if dep and dep != mod and not mod.startswith(dep + "."):
                    graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def string_imports(root: Path, package: str, allowed: set[str] = frozenset()) -> list[str]:
    """``file:line`` of every ``import_module("<package>...")`` / ``__import__`` call whose
    module name is a literal (or f-string) naming the package: a hidden import."""
    out = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = ast.unparse(node.func)
            if not (func.endswith("import_module") or func == "__import__"):
                continue
            arg = node.args[0]
            text = (arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                    else ast.unparse(arg).lstrip("f").strip("'\"")
                    if isinstance(arg, ast.JoinedStr) else "")
            if text.split(".")[0] == package or (isinstance(arg, ast.Name)
                                                 and arg.id.isupper()):
                out.append(f"{rel}:{node.lineno}")
    return out


def stage_of(module: str, package: str) -> str:
    """The stage a module belongs to: ``slimlib.sweeping._run`` -> ``slimlib.sweeping``; a
    top-level module is its own stage."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[0] == package else module


def stage_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The import graph between stages (sub-packages and top-level modules)."""
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        here = stage_of(mod, package)
        out.setdefault(here, set())
        out[here] |= {stage_of(d, package) for d in deps} - {here}
    return out


def client_imports(graph: dict[str, set[str]], client: str,
                   allowed: set[str] = frozenset()) -> list[str]:
    """``module -> client module`` for every module outside ``client`` that imports it."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                  if (d == client or d.startswith(client + "."))
                  and not (m == client or m.startswith(client + ".")) and m not in allowed)


def private_imports(root: Path, package: str) -> list[str]:
    """``file:line module`` for every import of another stage's private module: a module
    ``<package>.<stage>. ... ._x`` (or ``from <package>.<stage> import _x`` naming one),
    imported from outside ``<package>.<stage>``. The package's own top-level private helpers
    (``<package>._io``) are shared by every stage and allowed."""
    mods = _modules(root, package)
    out = []
    for mod, (path, _) in mods.items():
        here = stage_of(mod, package)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                           if f"{node.module}.{a.name}" in mods]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                if parts[0] != package or len(parts) < 3:
                    continue
                if stage_of(target, package) == here:
                    continue
                if any(p.startswith("_") and not p.startswith("__") for p in parts[2:]):
                    out.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {target}")
    return sorted(out)


# ------------------------------------------------------------------------- slimlib itself
def test_no_import_cycle_in_slimlib():
    assert cycles(import_graph(ROOT, PACKAGE)) == []


def test_no_import_cycle_between_stages():
    # a package's __init__ imports its modules, so a cycle between two stages would be an
    # import-order accident waiting to happen even where no two modules form one
    assert cycles(stage_graph(import_graph(ROOT, PACKAGE), PACKAGE)) == []


def test_the_library_never_imports_the_book():
    assert client_imports(import_graph(ROOT, PACKAGE), CLIENT, CLIENT_IMPORT_ALLOWED) == []


def test_no_module_imports_another_stages_private_module():
    assert private_imports(ROOT, PACKAGE) == []


def test_slimlib_top_level_is_the_stages_and_a_few_shared_modules():
    top = sorted(p.name for p in (ROOT / PACKAGE).glob("*.py"))
    assert len(top) <= 10, top
    stages = {p.name for p in (ROOT / PACKAGE).iterdir() if (p / "__init__.py").is_file()}
    assert {"slimming", "measure", "features", "probes", "metrics", "sweeping", "models", "data",
            "train", "dense", "diagnosis", "deploy", "scale", "book"} <= stages


def test_no_string_import_of_slimlib_code():
    assert string_imports(ROOT, PACKAGE, DYNAMIC_IMPORT_ALLOWED) == []


def test_the_guards_see_slimlib():
    graph = import_graph(ROOT, PACKAGE)
    assert "slimlib.models.entry" in graph["slimlib.models.registry"]
    assert "slimlib.models.entry" in graph["slimlib.models.timm_models"]
    # the package hook is the one allowed dynamic import, and the guard does see it
    found = string_imports(ROOT, PACKAGE)
    assert found and {f.split(":")[0] for f in found} == DYNAMIC_IMPORT_ALLOWED


# ------------------------------------------------------------------ each guard can fail
def _toy(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "toy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_cycle_guard_fails_on_a_toy_cycle(tmp_path):
    root = _toy(tmp_path, {
        "__init__.py": "",
        "a.py": "from toy import b\n",
        "b.py": "def f():\n    from toy.c import g\n",   # a lazy import still counts
        "c.py": "import toy.a\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy import a\n",
        "sub/__init__.py": "from .e import x\n",
        "sub/e.py": "from toy.sub import helper\nx = 1\n",  # child -> own package: implicit
        "sub/helper.py": "",
    })
    graph = import_graph(root, "toy")
    assert cycles(graph) == [["toy.a", "toy.b", "toy.c"]]
    assert graph["toy.d"] == set()  # TYPE_CHECKING imports never run
    graph["toy.c"].clear()
    assert cycles(graph) == []


def test_string_import_guard_fails_on_a_toy_hidden_import(tmp_path):
    root = _toy(tmp_path, {
        "__init__.py": "",
        "a.py": "import importlib\nm = importlib.import_module('toy.b')\n",
        "b.py": "from importlib import import_module\nname = 'x'\nimport_module(f'toy.{name}')\n",
        "c.py": "import importlib\nMODULE = 'toy.a'\nimportlib.import_module(MODULE)\n",
        "d.py": "import importlib\ndef load(user):\n    return importlib.import_module(user)\n",
    })
    assert string_imports(root, "toy") == ["toy/a.py:2", "toy/b.py:3", "toy/c.py:3"]
    assert string_imports(root, "toy", {"toy/a.py", "toy/b.py", "toy/c.py"}) == []


def test_stage_guards_fail_on_a_toy_package(tmp_path):
    root = _toy(tmp_path, {
        "__init__.py": "",
        "_io.py": "",                                    # a shared top-level helper: allowed
        "core/__init__.py": "from toy.core._impl import f\n",
        "core/_impl.py": "from toy import _io\ndef f(): pass\n",
        "core/_uses_app.py": "def h():\n    import toy.app._pages\n",
        "app/__init__.py": "",
        "app/_pages.py": "from toy.core._impl import f\n",
        "other/__init__.py": "from toy.core import _impl\nimport toy.core\n",
        "__main__.py": "import toy.app\n",
    })
    graph = import_graph(root, "toy")
    assert client_imports(graph, "toy.app") == ["toy.__main__ -> toy.app",
                                                 "toy.core._uses_app -> toy.app._pages"]
    assert client_imports(graph, "toy.app", {"toy.__main__", "toy.core._uses_app"}) == []
    assert private_imports(root, "toy") == ["toy/app/_pages.py:1 toy.core._impl",
                                            "toy/core/_uses_app.py:2 toy.app._pages",
                                            "toy/other/__init__.py:1 toy.core._impl"]
    assert cycles(graph) == []  # no two modules form a cycle ...
    assert cycles(stage_graph(graph, "toy")) == [["toy.app", "toy.core"]]  # ... two stages do


@pytest.mark.parametrize("name", ["slimlib.models.embedded", "slimlib.models.registry"])
def test_embedded_bridge_imports_training_code_normally(name):
    graph = import_graph(ROOT, PACKAGE)
    if name == "slimlib.models.embedded":
        assert "slimlib.train.embedded" in graph[name]
    assert cycles({k: v for k, v in graph.items() if k.startswith("slimlib.models")}) == []
