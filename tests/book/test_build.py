"""The companion book: every chapter executes headless (smoke profile), a failing chapter
fails the build, papermill reruns land under runs/, and the built pages render in Chromium.

The book is built once per session with ``jupyter-book build`` into a temporary output path,
``SLIMLIB_PROFILE=smoke``, an isolated ``SLIMLIB_RESULTS`` and ``SLIMLIB_CACHE``. The embedded
tiny models are pretrained on demand; to save that time the temporary cache is seeded with
copies of checkpoints already in ``$SLIMLIB_TEST_CACHE`` (or the default user cache), which
are keyed by a hash of their training config and data, so a copy is only ever reused for the
identical model. Nothing is written to the user's folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from slimlib import book

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
JB = Path(sys.executable).with_name("jupyter-book")
CHECK = ROOT / "scripts" / "check_book.py"


def _toc_chapters() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    return [c["file"] for c in toc["chapters"]]


def _seed_cache(cache: Path) -> None:
    sources = [os.environ.get("SLIMLIB_TEST_CACHE"), str(Path.home() / ".cache" / "slimlib")]
    target = cache / "checkpoints"
    target.mkdir(parents=True, exist_ok=True)
    for src in filter(None, sources):
        for ckpt in Path(src, "checkpoints").glob("*.pt"):
            if not (target / ckpt.name).exists():
                shutil.copy2(ckpt, target / ckpt.name)
                csv = ckpt.with_suffix(".csv")
                if csv.is_file():
                    shutil.copy2(csv, target / csv.name)


@pytest.fixture(scope="session")
def smoke_env(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("book-env")
    _seed_cache(base / "cache")
    env = dict(os.environ)
    env.update(SLIMLIB_PROFILE="smoke", SLIMLIB_CACHE=str(base / "cache"),
               SLIMLIB_RESULTS=str(base / "results"), PYTHONHASHSEED="0",
               MPLBACKEND="Agg")  # chapters must still show figures (they force inline)
    return env


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, smoke_env) -> Path:
    """Build the whole book (smoke profile) into a temp folder; return its html folder."""
    if not JB.is_file():
        pytest.skip(f"jupyter-book not installed next to {sys.executable}")
    out = tmp_path_factory.mktemp("book-build")
    proc = subprocess.run(
        [str(JB), "build", "book", "--all", "-W", "--keep-going", "--path-output", str(out)],
        cwd=ROOT, env=smoke_env, capture_output=True, text=True, timeout=1500)
    log = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, f"book build failed:\n{log}"
    return out / "_build" / "html"


def test_toc_lists_every_chapter_and_chapters_have_parameters():
    files = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert [Path(f).name for f in _toc_chapters()] == files
    assert (ROOT / "book" / "notebooks").is_symlink()
    for path in book.list_chapters(NOTEBOOKS):
        params = book.chapter_parameters(path)
        assert {"profile", "models", "datasets", "widths", "seeds", "protocols", "device",
                "batch_size", "data_root"} <= set(params), path.name
        assert all(v == "None" for v in params.values()), f"{path.name}: defaults must be None"


def test_every_chapter_builds_with_figures(built_book):
    for chapter in _toc_chapters():
        page = built_book / f"{chapter}.html"
        assert page.is_file(), f"missing page {page}"
        html = page.read_text()
        assert "Traceback (most recent call last)" not in html, chapter
        assert 'src="../_images/' in html, f"{chapter} shows no figure"
    intro = (built_book / "notebooks" / "01_introduction.html").read_text()
    assert "smoke" in intro  # the "what this build used" table names the profile


def test_pages_use_the_data_root_the_build_was_given(built_book):
    """Chapter kernels start in book/notebooks/: a relative SLIMLIB_DATA (as in .ci/run) must
    still reach them (slimlib.book.sphinxext makes it absolute), never a silent synthetic fallback."""
    page = (built_book / "notebooks" / "03_rs_slimmability.html").read_text()
    if os.environ.get("SLIMLIB_DATA"):
        assert "SYNTHETIC" not in page and "embedded real images" in page
    else:
        assert "SYNTHETIC" in page


def test_pages_render_in_headless_chromium(built_book, tmp_path):
    sys.path.insert(0, str(CHECK.parent))
    try:
        import check_book
    finally:
        sys.path.pop(0)
    if check_book.find_chromium() is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium): browser check skipped")
    shots = tmp_path / "screenshots"
    reports = check_book.run(built_book, shots, min_images=0, timeout=90)
    assert len(reports) == len(_toc_chapters()) + 1
    failing = [r for r in reports if not r["ok"]]
    assert not failing, failing
    for r in reports:
        png = Path(r["screenshot"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    figures = {r["page"]: r["figures"] for r in reports}
    assert figures["notebooks/04_rs_vs_cv.html"] >= 2  # Fig. 1a and 1b


def test_failing_chapter_fails_the_build(tmp_path, smoke_env):
    if not JB.is_file():
        pytest.skip("jupyter-book not installed")
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "broken.py").write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        "#     name: python3\n# ---\n\n# %% [markdown]\n# # Broken\n\n# %%\n"
        "raise RuntimeError('deliberate failure')\n")
    proc = subprocess.run([str(JB), "build", "book", "--all", "-W", "--keep-going"],
                          cwd=tmp_path, env=smoke_env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0
    assert "deliberate failure" in proc.stdout + proc.stderr


def test_papermill_rerun_with_another_model_lands_under_runs(tmp_path, smoke_env, monkeypatch):
    for key in ("SLIMLIB_PROFILE", "SLIMLIB_CACHE", "SLIMLIB_RESULTS"):
        monkeypatch.setenv(key, smoke_env[key])
    out = book.run_chapter(NOTEBOOKS / "08_deployment.py",
                               {"models": ["cv-moco-tiny"], "profile": "smoke"},
                               out_dir=tmp_path / "runs", timeout=900)
    assert out.parent == tmp_path / "runs" / "08_deployment" and out.suffix == ".ipynb"
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'models = ["cv-moco-tiny"]' in injected[0].source
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    # chapter 08 asserts both exports match before it prints this line
    assert "cv-moco-tiny" in text and "max |diff| after load_slimmed" in text


def test_run_chapter_refuses_unknown_parameters_and_parses_values(tmp_path):
    with pytest.raises(ValueError, match="no parameter"):
        book.run_chapter(NOTEBOOKS / "01_introduction.py", {"modles": ["x"]}, tmp_path)
    with pytest.raises(FileNotFoundError):
        book.run_chapter(NOTEBOOKS / "99_missing.py", {}, tmp_path)
    assert book.parse_value('["a", "b"]') == ["a", "b"]
    assert book.parse_value("[a, b]") == ["a", "b"]
    assert book.parse_value("0.5") == 0.5
    assert book.parse_value("smoke") == "smoke"


def test_cli_lists_chapters_and_profiles(capsys):
    from slimlib.__main__ import main

    assert main(["profiles"]) == 0
    assert "smoke" in capsys.readouterr().out
    assert main(["chapters", "--folder", str(NOTEBOOKS)]) == 0
    out = capsys.readouterr().out
    assert "03_rs_slimmability.py" in out and "models" in out
