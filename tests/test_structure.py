"""Structure guards for slimlib: no import cycles, no hidden string imports, small modules.

Each guard is a function over source text, so the tests below also show it failing on a toy
package (a guard that cannot fail guards nothing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "slimlib"
#: A module longer than this is doing more than one job (#11).
MAX_LINES = 450
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


def long_modules(root: Path, package: str, limit: int = MAX_LINES) -> dict[str, int]:
    """Modules over ``limit`` lines."""
    return {p.relative_to(root).as_posix(): n
            for p in sorted((root / package).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit}


# ------------------------------------------------------------------------- slimlib itself
def test_no_import_cycle_in_slimlib():
    assert cycles(import_graph(ROOT, PACKAGE)) == []


def test_no_string_import_of_slimlib_code():
    assert string_imports(ROOT, PACKAGE, DYNAMIC_IMPORT_ALLOWED) == []


def test_no_slimlib_module_over_the_line_limit():
    assert long_modules(ROOT, PACKAGE) == {}


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


def test_length_guard_fails_on_a_toy_long_module(tmp_path):
    root = _toy(tmp_path, {"__init__.py": "", "long.py": "x = 1\n" * (MAX_LINES + 1),
                           "short.py": "x = 1\n" * MAX_LINES})
    assert long_modules(root, "toy") == {"toy/long.py": MAX_LINES + 1}


@pytest.mark.parametrize("name", ["slimlib.models.embedded", "slimlib.models.registry"])
def test_embedded_bridge_imports_training_code_normally(name):
    graph = import_graph(ROOT, PACKAGE)
    if name == "slimlib.models.embedded":
        assert "slimlib.train.embedded" in graph[name]
    assert cycles({k: v for k, v in graph.items() if k.startswith("slimlib.models")}) == []
