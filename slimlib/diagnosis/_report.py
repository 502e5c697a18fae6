"""Write the slimmability report of :func:`slimlib.diagnose`: HTML, Markdown, JSON and a PNG.

All files are written atomically (temporary file + ``os.replace``); the HTML page embeds the
PNG as a data URI, so it is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from slimlib import _io
from slimlib.diagnosis._sensitivity import sensitivity_html, sensitivity_markdown, sensitivity_png

__all__ = ["write_report", "render_markdown", "render_html", "curve_png"]




def curve_png(result: dict[str, Any]) -> bytes:
    """Retention vs relative compute (log x) of the model and its random-init control."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    styles = {"model": ("-o", result["model"]), "control": ("--s", "random-init control")}
    for key, points in result["curves"].items():
        who, protocol = key.split("/")
        style, label = styles[who]
        xs = [p["rel_compute"] for p in points]
        ys = [p["retention"] for p in points]
        ax.plot(xs, ys, style, label=f"{label} ({protocol})", ms=4)
    ax.axvline(result["compute_floor"], color="grey", lw=0.8, ls=":",
               label=f"compute floor {result['compute_floor']:.3f}")
    ax.axhline(result["keep"], color="tab:red", lw=0.8, ls=":",
               label=f"target {result['keep']:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("relative compute FLOPs(s) / FLOPs(1)")
    ax.set_ylabel("retention (test score / full-width score)")
    title = f"{result['model']} on {result['dataset']}"
    if result["random_weights"]:
        title += " — RANDOM WEIGHTS"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _summary(result: dict[str, Any]) -> list[tuple[str, str]]:
    weights = result["weights"] + (" (RANDOM WEIGHTS: the curve says nothing about a trained "
                                   "model)" if result["random_weights"] else "")
    ctrl = result.get("control_score")
    return [
        ("model", f"{result['model']} ({result['model_kind']}, {result['architecture']})"),
        ("weights", weights),
        ("data", f"{result['dataset']}{' (SYNTHETIC)' if result['synthetic'] else ''}: "
                 f"{result['n_train']} train / {result['n_test']} test images, "
                 f"{len(result['classes'])} classes, bands {', '.join(result['bands'])}, "
                 f"{result['input_size']} px input"),
        ("metric", f"k-NN (k=5, cosine) {result['metric']}; retention = score(s) / score(1)"),
        ("slimmability score S", f"{_f(result['score'])} (random-init control: {_f(ctrl)}); "
                                 "area under retention vs log relative compute, normalised"),
        ("compute floor", f"{_f(result['compute_floor'], 4)} of {result['gflops_full']:.4g} "
                          "GFLOPs/img (d_k' = d_h' = 1)"),
        (f"smallest width keeping >= {result['keep']:.0%}",
         f"s = {result['recommended_width']:g} (relative compute "
         f"{_f(result['recommended_rel_compute'])}), chosen by {result['folds']}-fold CV on the "
         f"training split, this and every larger width (CV retention "
         f"{_f(result['recommended_cv_retention'])}); held-out test "
         f"retention {_f(result['recommended_test_retention'])}"),
        ("timing", f"{result['threads']} torch thread(s), {result['device']}, torch "
                   f"{result['torch']}"),
    ]


_COLUMNS = (("width", "s", 3), ("rel_compute", "rel. compute", 4), ("score", "test score", 4),
            ("retention", "retention", 3), ("control_retention", "control retention", 3),
            ("cv_retention", "CV retention (train)", 3), ("latency_ms", "latency b1 ms", 1),
            ("throughput_img_s", "throughput img/s", 1))


def _table_rows(result: dict[str, Any]) -> list[list[str]]:
    return [[_f(row.get(key), digits) for key, _, digits in _COLUMNS] for row in result["rows"]]


def render_markdown(result: dict[str, Any], png_name: str = "curve.png") -> str:
    lines = [f"# Slimmability report: {result['model']} on {result['dataset']}", ""]
    if result["random_weights"]:
        lines += ["> **Random weights.** This model was not loaded with trained weights.", ""]
    lines += [f"- **{k}**: {v}" for k, v in _summary(result)]
    lines += ["", f"![retention vs compute]({png_name})", ""]
    lines += ["| " + " | ".join(h for _, h, _ in _COLUMNS) + " |",
              "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in _table_rows(result)]
    batch = result["rows"][0].get("batch")
    if batch:
        lines += ["", f"Latency: median of {result['rows'][0]['repeats']} alternated rounds at "
                      f"batch 1; throughput at batch {batch}."]
    if result.get("sensitivity"):
        lines += ["", sensitivity_markdown(result["sensitivity"])]
    lines += ["", "Reproduce:", "", "```", result["command"] or
              "(called from Python with objects; no command-line equivalent)", "```", ""]
    return "\n".join(lines)


def render_html(result: dict[str, Any], png: bytes) -> str:
    esc = html.escape
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    summary = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary(result))
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in _COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                   for r in _table_rows(result))
    warn = ("<p class='warn'><b>Random weights.</b> This model was not loaded with trained "
            "weights.</p>" if result["random_weights"] else "")
    command = esc(result["command"] or "(called from Python with objects)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Slimmability report: {esc(result['model'])} on {esc(result['dataset'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}
.warn{{background:#fee;padding:.5em}}code{{background:#eee;padding:.2em}}</style></head>
<body><h1>Slimmability report: {esc(result['model'])} on {esc(result['dataset'])}</h1>
{warn}<table>{summary}</table>
<p><img alt="retention vs relative compute" src="{uri}"></p>
<table><tr>{head}</tr>{body}</table>
{sensitivity_html(result["sensitivity"]) if result.get("sensitivity") else ""}
<p>Reproduce: <code>{command}</code></p>
<p>Definitions: docs/deploy.md of slimlib.</p></body></html>
"""


def write_report(result: dict[str, Any], out: str | os.PathLike) -> dict[str, str]:
    """Write ``report.html``, ``report.md``, ``report.json`` and ``curve.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = curve_png(result)
    paths = {k: str(out / f) for k, f in (("html", "report.html"), ("markdown", "report.md"),
                                          ("json", "report.json"), ("png", "curve.png"),
                                          ("sweep", "sweep.csv"))}
    _io.atomic_write(out / "curve.png", png)
    if result.get("sensitivity"):
        paths["sensitivity_png"] = str(out / "sensitivity.png")
        _io.atomic_write(out / "sensitivity.png", sensitivity_png(result["sensitivity"]))
    _io.atomic_write(out / "report.md", render_markdown(result).encode())
    _io.atomic_write(out / "report.html", render_html(result, png).encode())
    payload = {**result, "paths": paths}
    _io.atomic_write(out / "report.json", json.dumps(payload, indent=2, default=str).encode())
    return paths
