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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimlib import _io
from slimlib.diagnosis import _answer
from slimlib.diagnosis._sensitivity import sensitivity_html, sensitivity_markdown, sensitivity_png

__all__ = ["write_report", "render_markdown", "render_html", "curve_png", "Section", "SECTIONS",
           "sections", "aligned_section", "comparison_section"]


def curve_png(result: dict[str, Any]) -> bytes:
    """Retention vs relative compute (log x) of the model and its random-init control."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    styles = {"model": ("-o", result["model"]), "control": ("--s", "random-init control"),
              "compare": ("-.^", f"compared: {result.get('compare_weights')}")}
    for key, points in result["curves"].items():
        who, protocol = key.split("/")
        style, label = styles[who]
        xs = [p["rel_compute"] for p in points]
        ys = [p["retention"] for p in points]
        ax.plot(xs, ys, style, label=f"{label} ({protocol})", ms=4)
    al = result.get("aligned")
    if al and not al["same_model"]:
        ax.plot([al["rel_compute"]], [al["test_retention"]["value"]], "*", ms=11,
                color="tab:green", label=f"s = {al['width']:g} aligned to {al['align']}"
                + (" (recommended)" if al["recommended"] else ""))
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


@dataclass
class Section:
    """One part of the report, rendered to Markdown and HTML alike.

    ``blocks`` are ``("p", text)``, ``("warn", text)``, ``("kv", [(key, value), ...])``,
    ``("table", header, rows)``, ``("img", alt)`` (the curve), ``("code", text)``,
    ``("dl", [(term, definition), ...])`` or ``("raw", markdown, html)`` (a section rendered
    elsewhere, e.g. the per-block sensitivity).
    """

    title: str | None
    blocks: list[tuple] = field(default_factory=list)


def _ev(result: dict[str, Any]) -> dict[str, Any]:
    return result.get("evidence") or {}


def answer_section(result: dict[str, Any]) -> Section:
    """The plain answer, then every warning."""
    ev = _ev(result)
    blocks: list[tuple] = []
    if result["random_weights"] and not ev:  # with evidence it is the first of its warnings
        blocks.append(("warn", "Random weights: this model was not loaded with trained weights; "
                               "the curve says nothing about a trained model."))
    if ev:
        blocks.insert(0, ("answer", _answer.answer(result, ev)))
        blocks += [("warn", w) for w in ev["warnings"]]
    return Section(None, blocks)


def evidence_section(result: dict[str, Any]) -> Section | None:
    """Absolute scores at full width with intervals, the control and chance."""
    ev = _ev(result)
    if not ev:
        return None
    full, ctrl = ev["full"], ev.get("control_full")
    pairs = [(f"model at full width ({result['n_test']} test images)", _answer.fmt(**full))]
    if ctrl is not None:
        pairs.append(("random-init control at full width", _answer.fmt(**ctrl)))
        if "gain_over_control" in ev:
            pairs.append(("model − control (paired)", _answer.fmt(**ev["gain_over_control"])))
    pairs.append((f"chance ({ev['n_classes']} classes)", f"{ev['chance']:.3g}"))
    blocks: list[tuple] = [("kv", pairs)]
    if ctrl is not None:
        blocks.append(("p", "The control is the same architecture with random weights, slimmed "
                            "and probed the same way: its score is what the architecture and "
                            "the probe give without learned weights. What the model scores "
                            "above it is what its training contributes."))
    blocks.append(("p", "Brackets: 95 % intervals from a bootstrap over the test images; "
                        "numbers are rounded to what the interval supports."))
    return Section("Evidence", blocks)


def summary_section(result: dict[str, Any]) -> Section:
    return Section("Setup", [("kv", _summary(result))])


def curve_section(result: dict[str, Any]) -> Section:
    blocks: list[tuple] = [("img", "retention vs relative compute")]
    ev = _ev(result)
    if ev.get("control_full") is not None:
        blocks.append(("p", "Each curve is relative to its own full-width score: the model's "
                            f"{_answer.fmt(**ev['full'])}, the control's "
                            f"{_answer.fmt(**ev['control_full'])}. A control curve near 1 means "
                            "the control's score does not depend on width, not that the control "
                            "is the better model."))
    return Section("Retention vs compute", blocks)


def widths_section(result: dict[str, Any]) -> Section:
    """One row per width: compute, scores and retention with intervals, CV, timing."""
    ev = _ev(result)
    batch = result["rows"][0].get("batch")
    header = ["s", "rel. compute", "test score", "retention", "control score",
              "control retention", "CV retention (train)", "latency b1 ms",
              f"throughput b{batch} img/s" if batch else "throughput img/s"]
    rows = []
    for row in result["rows"]:
        e = ev.get("widths", {}).get(row["width"], {})

        def est(key, fallback, e=e):
            return _answer.fmt(**e[key]) if key in e else _f(fallback)

        rows.append([f"{row['width']:g}", f"{row['rel_compute']:.3g}",
                     est("model_score", row.get("score")),
                     "1" if row["width"] == 1.0 else est("model_retention", row.get("retention")),
                     est("control_score", None),
                     ("1" if row["width"] == 1.0 and "control_score" in e
                      else est("control_retention", row.get("control_retention"))),
                     _f(row.get("cv_retention")),
                     _f(row.get("latency_ms"), 1) if row.get("latency_ms") else "–",
                     _f(row.get("throughput_img_s"), 1) if row.get("throughput_img_s") else "–"])
    blocks: list[tuple] = [("table", header, rows)]
    if batch:
        blocks.append(("p", f"Latency: median of {result['rows'][0]['repeats']} alternated rounds "
                            f"at batch 1; throughput at batch {batch}; {result['threads']} "
                            f"torch thread(s) on {result['device']}."))
    blocks += [("p", n) for n in ev.get("notes", [])]
    return Section("Per width", blocks)


def aligned_section(result: dict[str, Any]) -> Section | None:
    """The hardware-aligned width at the recommended s: its dims, compute, retention, speed."""
    al = result.get("aligned")
    if not al:
        return None
    s, a = al["width"], al["align"]
    verdict = (f"Recommended: slimlib.slim(model, {s:g}, align={a})" if al["recommended"]
               else f"Not recommended; keep slimlib.slim(model, {s:g})")
    pairs = [("kept dims at s = " + f"{s:g}", al["kept"]),
             (f"aligned to multiples of {a}", al["kept_aligned"])]
    if not al["same_model"]:
        pairs += [("relative compute (aligned)", f"{al['rel_compute']:.3g}"),
                  ("CV retention (train, aligned)", f"{al['cv_retention']:.3f}"),
                  ("test retention (aligned)", _answer.fmt(**al["test_retention"])),
                  ("aligned − unaligned test score (paired)",
                   _answer.fmt(**al["minus_unaligned"]))]
        if al.get("speedup"):
            sp = al["speedup"]
            pairs += [(f"throughput at batch {al['batch']} (unaligned → aligned)",
                       f"{al['unaligned_throughput_img_s']:.1f} → "
                       f"{al['throughput_img_s']:.1f} img/s"),
                      ("aligned speed-up over unaligned (min / median / max of "
                       f"{sp['rounds']} alternated rounds)",
                       f"{sp['min']:.2f} / {sp['median']:.2f} / {sp['max']:.2f}×")]
    blocks: list[tuple] = [("p", f"{verdict}: {al['why']}."), ("kv", pairs)]
    blocks.append(("p", f"Aligned widths round the kept FFN units and per-head Q/K/V dims up to a "
                        f"multiple of {a} (a departure from the paper's floor rule, recorded in "
                        "the export metadata): matrix kernels run odd sizes slowly, so the "
                        "aligned model can be faster although it does more FLOPs. It is "
                        "recommended only when its CV retention still reaches the target and it "
                        "ran faster than the unaligned model in every timed round here."))
    return Section("Hardware-aligned width", blocks)


def comparison_section(result: dict[str, Any]) -> Section | None:
    """The compared checkpoint minus the model, per width, with paired intervals."""
    if not result.get("compare_model"):
        return None
    ev = _ev(result)
    header = ["s", "rel. compute", "model score", "compared score", "compared − model",
              "model retention", "compared retention", "compared − model retention",
              "compared CV retention (train)"]
    rows = []
    for row in result["rows"]:
        w = row["width"]
        e = ev.get("widths", {}).get(w, {})

        def est(key, e=e):
            return _answer.fmt(**e[key]) if key in e else "–"

        rows.append([f"{w:g}", f"{row['rel_compute']:.3g}", est("model_score"),
                     est("compare_score"), est("compare_minus_model"),
                     "1" if w == 1.0 else est("model_retention"),
                     "1" if w == 1.0 else est("compare_retention"),
                     "0" if w == 1.0 else est("compare_minus_model_retention"),
                     _f(result["compare_cv"].get(w))])
    mine, theirs = result["recommended_width"], result["compare_recommended_width"]
    pairs = [("model", f"{result['model']}, {result['weights']}"),
             ("compared checkpoint", f"same architecture, {result['compare_weights']}"),
             (f"smallest width keeping >= {result['keep']:.0%} (CV, train)",
              f"model s = {mine:g}; compared s = {theirs:g}")]
    blocks: list[tuple] = [("kv", pairs), ("table", header, rows),
                           ("p", "Both checkpoints went through the same slimming, probe, images "
                                 "and widths. Differences are compared minus model; their 95 % "
                                 "intervals are paired (both resampled on the same test images), "
                                 "so an interval that excludes 0 is a difference these test "
                                 "images support.")]
    return Section("Comparison with a second checkpoint", blocks)


def definitions_section(result: dict[str, Any]) -> Section:
    return Section("Definitions", [("dl", list(_answer.DEFINITIONS))])


def reproduce_section(result: dict[str, Any]) -> Section:
    return Section("Reproduce", [("code", result["command"] or
                                  "(called from Python with objects; no command-line "
                                  "equivalent)")])


def sensitivity_report_section(result: dict[str, Any]) -> Section | None:
    """Which blocks tolerate narrowing, and what slimming did (:mod:`._sensitivity`)."""
    sens = result.get("sensitivity")
    if not sens:
        return None
    return Section(None, [("raw", sensitivity_markdown(sens), sensitivity_html(sens))])


#: The report's sections in order; a new section is one more function here.
SECTIONS: list[Callable[[dict[str, Any]], Section | None]] = [
    answer_section, evidence_section, curve_section, widths_section, aligned_section,
    comparison_section, sensitivity_report_section, summary_section, definitions_section, reproduce_section]


def sections(result: dict[str, Any]) -> list[Section]:
    """The rendered-to-be sections of ``result`` (sections with nothing to show left out)."""
    return [s for s in (f(result) for f in SECTIONS) if s is not None]


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
        ("slimmability score S", f"{_f(result['score'], 2)} (random-init control: "
                                 f"{_f(ctrl, 2)}); area under retention vs log relative "
                                 "compute, normalised"),
        ("compute floor", f"{result['compute_floor']:.2g} of {result['gflops_full']:.3g} "
                          "GFLOPs/img (d_k' = d_h' = 1)"),
        (f"smallest width keeping >= {result['keep']:.0%}",
         f"s = {result['recommended_width']:g} (relative compute "
         f"{result['recommended_rel_compute']:.3g}), chosen by {result['folds']}-fold CV on the "
         f"training split, this and every larger width (CV retention "
         f"{_f(result['recommended_cv_retention'], 2)}); held-out test "
         f"retention {_f(result['recommended_test_retention'], 2)}"),
        ("run", f"{result['threads']} torch thread(s), {result['device']}, torch "
                f"{result['torch']}, {result['runtime_s']:.0f} s"),
    ]


def _md_block(block: tuple, png_name: str) -> list[str]:
    kind = block[0]
    if kind == "raw":
        return [block[1], ""]
    if kind == "answer":
        return [f"**{block[1]}**", ""]
    if kind == "p":
        return [block[1], ""]
    if kind == "warn":
        return [f"> **Warning.** {block[1]}", ""]
    if kind == "kv":
        return [f"- **{k}**: {v}" for k, v in block[1]] + [""]
    if kind == "dl":
        return [f"- **{k}**: {v}" for k, v in block[1]] + [""]
    if kind == "img":
        return [f"![{block[1]}]({png_name})", ""]
    if kind == "code":
        return ["```", block[1], "```", ""]
    if kind == "table":
        _, header, rows = block
        return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(r) + " |" for r in rows] + [""])
    raise ValueError(f"unknown report block {kind!r}")


def render_markdown(result: dict[str, Any], png_name: str = "curve.png") -> str:
    lines = [f"# Slimmability report: {result['model']} on {result['dataset']}", ""]
    for section in sections(result):
        if section.title:
            lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _md_block(block, png_name)
    return "\n".join(lines)


def _html_block(block: tuple, uri: str) -> str:
    esc = html.escape
    kind = block[0]
    if kind == "raw":
        return block[2]
    if kind == "answer":
        return f"<p class='answer'>{esc(block[1])}</p>"
    if kind == "p":
        return f"<p>{esc(block[1])}</p>"
    if kind == "warn":
        return f"<p class='warn'><b>Warning.</b> {esc(block[1])}</p>"
    if kind == "kv":
        return ("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                                    for k, v in block[1]) + "</table>")
    if kind == "dl":
        return ("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in block[1])
                + "</dl>")
    if kind == "img":
        return f"<p><img alt=\"{esc(block[1])}\" src=\"{uri}\"></p>"
    if kind == "code":
        return f"<p><code>{esc(block[1])}</code></p>"
    if kind == "table":
        _, header, rows = block
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    raise ValueError(f"unknown report block {kind!r}")


def render_html(result: dict[str, Any], png: bytes) -> str:
    esc = html.escape
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    parts = []
    for section in sections(result):
        if section.title:
            parts.append(f"<h2>{esc(section.title)}</h2>")
        parts += [_html_block(b, uri) for b in section.blocks]
    body = "\n".join(parts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Slimmability report: {esc(result['model'])} on {esc(result['dataset'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}
.answer{{font-size:1.25em;font-weight:bold;background:#eef6ee;padding:.6em}}
.warn{{background:#fee;padding:.5em}}code{{background:#eee;padding:.2em}}
dt{{font-weight:bold}}dd{{margin:0 0 .5em 1.5em}}</style></head>
<body><h1>Slimmability report: {esc(result['model'])} on {esc(result['dataset'])}</h1>
{body}
</body></html>
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
