"""Settings are arguments (#11 item 1): the environment is read in one place.

Three guards over source text (who reads the environment, who writes it, who falls back to
``current()``), each shown failing on a toy source (a guard that cannot fail guards nothing),
and the behaviour of :meth:`slimlib.settings.Settings.from_env`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from slimlib.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

#: The modules that may read (or, for a child process they start, write) the environment:
#: the settings module itself and the entry points. The cluster launcher is not among them:
#: its jobs get one pickled Settings and their process variables as submitit setup lines.
ENV_ALLOWED = {
    "slimlib/settings.py": "the one reader: Settings.from_env, env_flag, profile_name, "
                           "process_env",
    "slimlib/book/sphinxext.py": "book build entry point: writes the resolved absolute settings "
                            "into the build's environment, which the chapter kernels inherit",
    "slimlib/book/runner.py": "chapter runner entry point: builds the kernel's environment "
                              "from its own plus the resolved absolute settings",
}
#: The modules that may write this process's environment (a subset of ENV_ALLOWED).
ENV_WRITE_ALLOWED = {
    "slimlib/book/sphinxext.py": "the build's kernels inherit the build process's environment",
}
#: Parameters through which a caller can always hand the settings down explicitly; a function
#: that falls back to ``current()`` must take one of them.
EXPLICIT_PARAMS = {"settings", "cache_root", "profile"}
#: Functions that may call ``current()`` without such a parameter (and why).
CURRENT_ALLOWED = {
    "slimlib/models/download.py:weights_cache":
        "download.resolve / local_candidates called directly by user code; inside "
        "models.load the cache comes from the weights_root block",
}


def env_uses(source: str) -> list[str]:
    """``line: code`` of every read or write of the process environment in ``source``:
    ``os.environ``, ``os.getenv`` / ``putenv`` / ``unsetenv`` and the names ``environ`` /
    ``getenv`` imported from :mod:`os`."""
    tree = ast.parse(source)
    from_os = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == "os"
               for alias in node.names if alias.name in ("environ", "getenv", "putenv")}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv",
                                                             "unsetenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os" or isinstance(node, ast.Name) and node.id in from_os:
            hits.append(node)
    return [f"{n.lineno}: {ast.get_source_segment(source, n)}" for n in hits]


def env_writes(source: str) -> list[str]:
    """``line: code`` of every write of the process environment in ``source``: an item of
    ``os.environ`` (or of ``environ`` imported from :mod:`os`) assigned or deleted, a mutating
    method called on it, ``os.putenv`` / ``os.unsetenv`` (also imported from :mod:`os`)."""
    tree = ast.parse(source)
    imported = {alias.name: alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "os"
                for alias in node.names}
    mutators = ("update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__")

    def is_os(node: ast.AST, name: str) -> bool:
        """``node`` is ``os.<name>`` or the name ``<name>`` imported from :mod:`os`."""
        return (isinstance(node, ast.Attribute) and node.attr == name
                and isinstance(node.value, ast.Name) and node.value.id == "os") or \
            (isinstance(node, ast.Name) and name in imported and node.id == imported[name])

    hits = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else \
            [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
        hits += [t for t in targets if isinstance(t, ast.Subscript) and is_os(t.value, "environ")]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        mutates = isinstance(func, ast.Attribute) and func.attr in mutators \
            and is_os(func.value, "environ")
        if mutates or is_os(func, "putenv") or is_os(func, "unsetenv"):
            hits.append(node)
    return [f"{n.lineno}: {ast.get_source_segment(source, n)}"
            for n in sorted(hits, key=lambda n: (n.lineno, n.col_offset))]


def current_calls(source: str) -> list[tuple[str, int]]:
    """``(function name, line)`` of every call of ``current()`` / ``or_current(...)`` inside a
    function that takes none of :data:`EXPLICIT_PARAMS` (``"<module>"`` at top level)."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, func: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, child)
                continue
            if isinstance(child, ast.Call):
                callee = child.func
                name = callee.attr if isinstance(callee, ast.Attribute) else \
                    callee.id if isinstance(callee, ast.Name) else None
                if name in ("current", "or_current"):
                    args = func.args if func is not None else None
                    params = set() if args is None else {
                        a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
                    if not params & EXPLICIT_PARAMS:
                        label = "<module>" if func is None else getattr(func, "name", "<lambda>")
                        out.append((label, child.lineno))
            visit(child, func)

    visit(ast.parse(source), None)
    return out


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in sorted((ROOT / "slimlib").rglob("*.py"))}


def test_only_the_settings_module_and_the_entry_points_touch_the_environment():
    offenders = {path: uses for path, text in _sources().items()
                 if path not in ENV_ALLOWED and (uses := env_uses(text))}
    assert not offenders, ("read the environment through slimlib.settings (Settings.from_env "
                           f"at an entry point) and pass the values down: {offenders}")
    assert all((ROOT / path).is_file() for path in ENV_ALLOWED)  # the allowlist is not stale
    assert all(env_uses(text) for path, text in _sources().items() if path in ENV_ALLOWED)


def test_only_the_book_build_writes_its_environment():
    writers = {path: hits for path, text in _sources().items() if (hits := env_writes(text))}
    offenders = {path: hits for path, hits in writers.items() if path not in ENV_WRITE_ALLOWED}
    assert not offenders, ("pass settings as arguments, and a child process's variables as its "
                           f"environment (a mapping, or submitit's setup lines): {offenders}")
    assert set(writers) == set(ENV_WRITE_ALLOWED) <= set(ENV_ALLOWED)  # not stale


def test_current_is_only_a_fallback_of_functions_that_take_settings():
    offenders = [f"{path}:{name} (line {line})" for path, text in _sources().items()
                 for name, line in current_calls(text)
                 if f"{path}:{name}" not in CURRENT_ALLOWED]
    assert not offenders, ("a function that falls back to slimlib.settings.current() must "
                           f"accept settings= so its callers can pass them: {offenders}")
    for key in CURRENT_ALLOWED:
        path, name = key.split(":")
        assert name in {n for n, _ in current_calls(_sources()[path])}, key  # not stale


def test_the_guards_fail_on_toy_sources():
    assert env_uses("import os\nx = os.environ.get('SLIMLIB_DATA')\n") == \
        ["2: os.environ"]
    assert env_uses("import os\nos.environ['A'] = '1'\n") == ["2: os.environ"]
    assert env_uses("import os\nx = os.getenv('A')\n") == ["2: os.getenv"]
    assert env_uses("from os import environ\nx = environ.get('A')\n") == ["2: environ"]
    assert env_uses("from os import environ as e\ny = e['A']\n") == ["2: e"]
    # a parameter called environ, or prose about os.environ, is not a use
    assert env_uses("def f(environ=None):\n    '''os.environ'''\n    return environ\n") == []
    assert env_writes("import os\nos.environ['A'] = '1'\n") == ["2: os.environ['A']"]
    assert env_writes("import os\ndel os.environ['A']\n") == ["2: os.environ['A']"]
    assert env_writes("import os\nos.environ.update(A='1')\n") == \
        ["2: os.environ.update(A='1')"]
    assert env_writes("import os\nos.environ.pop('A', None)\n") == \
        ["2: os.environ.pop('A', None)"]
    assert env_writes("from os import environ as e\ne.setdefault('A', '1')\n") == \
        ["2: e.setdefault('A', '1')"]
    assert env_writes("import os\nos.putenv('A', '1')\n") == ["2: os.putenv('A', '1')"]
    assert env_writes("from os import unsetenv\nunsetenv('A')\n") == ["2: unsetenv('A')"]
    # reads are not writes; nor is a copy that is then changed
    assert env_writes("import os\nx = os.environ.get('A')\nenv = {**os.environ}\n"
                      "env['A'] = '1'\nd = dict(os.environ)\nd.update(A='1')\n") == []
    assert current_calls("from slimlib.settings import current\n"
                         "def deep(root):\n    return current().cache\n") == [("deep", 3)]
    assert current_calls("def f(x):\n    g = lambda: or_current(None)\n") == [("<lambda>", 2)]
    assert current_calls("def load(name, *, settings=None):\n"
                         "    return or_current(settings)\n") == []


# ------------------------------------------------------------------------- Settings.from_env


def test_relative_settings_become_absolute_against_the_launching_folder(tmp_path):
    (tmp_path / "data").mkdir()
    env = {"SLIMLIB_DATA": "data", "SLIMLIB_CACHE": "./cache", "SLIMLIB_RESULTS": "out/res",
           "SLIMLIB_WEIGHTS": "../weights", "GEO_BENCH_DIR": "gb"}
    s = Settings.from_env(env, cwd=tmp_path)
    base = tmp_path.resolve()
    assert s.data == base / "data" and s.cache == base / "cache"
    assert s.results == base / "out" / "res" and s.weights == base.parent / "weights"
    assert s.geobench == base / "gb" and s.imagenet is None
    assert all(p.is_absolute() for p in (s.data, s.cache, s.results, s.weights))
    # what a child process gets: absolute, so its own folder no longer matters
    assert Settings.from_env(s.as_env(), cwd=base / "data") == s
    assert env["SLIMLIB_DATA"] == "data"  # the mapping is read, never written


def test_missing_settings_take_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    s = Settings.from_env({}, cwd=outside)
    assert s.data is None and s.weights is None and s.geobench is None
    assert s.cache == (tmp_path / "home" / ".cache" / "slimlib").resolve()
    assert s.results == outside.resolve() / "results"  # not in a checkout: the launching folder
    # inside a checkout (pyproject.toml + slimlib/): the repository's results/, from any subfolder
    assert Settings.from_env({}, cwd=ROOT / "notebooks").results == ROOT / "results"
    assert Settings.from_env({"SLIMLIB_DATA": ""}, cwd=outside).data is None


def test_a_bad_data_root_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        Settings.from_env({"SLIMLIB_DATA": "no/such/folder"}, cwd=tmp_path)
    msg = str(err.value)
    assert str(tmp_path.resolve() / "no" / "such" / "folder") in msg  # the path tried
    assert "SLIMLIB_DATA" in msg and "eurosat_rgb/" in msg and "docs/data.md" in msg
    assert "unset it" in msg  # or use the synthetic fallback
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Settings.from_env({"SLIMLIB_DATA": str(tmp_path / "file")})


def test_public_functions_take_settings_instead_of_the_environment(tmp_path, monkeypatch):
    """An explicit Settings wins over the environment at every public boundary."""
    import numpy as np
    import torch

    from slimlib import features
    from slimlib.book import profiles
    from slimlib.train import embedded

    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    mine = Settings(data=None, cache=tmp_path / "cache", results=tmp_path / "results")
    assert embedded.checkpoint_path("rs-moco-tiny", settings=mine).parent == \
        tmp_path / "cache" / "checkpoints"
    assert profiles.results_path("sweep.csv", "smoke", settings=mine) == \
        tmp_path / "results" / "smoke" / "sweep.csv"
    cfg = profiles.resolve("smoke", settings=mine, datasets=["synthetic-rgb"])
    assert cfg.settings == mine and profiles.settings_of(cfg) == mine
    assert profiles.results_path("t.csv", cfg) == tmp_path / "results" / "smoke" / "t.csv"
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x, y = torch.randn(5, 3, 4, 4), torch.arange(5)
    feats, _ = features.extract(enc, (x, y), cache_key="k", progress=False, settings=mine)
    assert (tmp_path / "cache" / "features" / "k.npz").is_file()
    np.testing.assert_array_equal(features.load_cached("k", cache_root=mine.cache)[0], feats)
