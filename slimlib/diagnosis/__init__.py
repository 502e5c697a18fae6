"""Diagnose your own model on your own data: :func:`diagnose` and its report.

``_inputs`` resolves a model and a dataset from strings (registry, timm, ``module:function``,
image folders), ``_diagnose`` slims, probes and picks a width by cross-validation, ``_report``
writes the HTML/Markdown/JSON report, ``_sensitivity`` slims one block at a time (which blocks
tolerate narrowing) and tabulates what slimming did, ``_aligned`` checks whether the
hardware-aligned recommended width is faster at the target retention. See ``docs/deploy.md``.
"""

from slimlib.diagnosis._aligned import DEFAULT_ALIGN, aligned_check
from slimlib.diagnosis._answer import summary_lines
from slimlib.diagnosis._diagnose import (
    DEFAULT_WIDTHS,
    cv_retention,
    diagnose,
    recommend_width,
    slimmability_score,
)
from slimlib.diagnosis._inputs import ResolvedModel, resolve_data, resolve_model
from slimlib.diagnosis._report import write_report
from slimlib.diagnosis._sensitivity import (
    SENSITIVITY_WIDTHS,
    Verification,
    block_sensitivity,
    sensitivity_html,
    sensitivity_markdown,
    sensitivity_png,
    sensitivity_section,
    slim_block,
    verify_slimming,
)

__all__ = ["diagnose", "DEFAULT_WIDTHS", "cv_retention", "recommend_width",
           "slimmability_score", "ResolvedModel", "resolve_model", "resolve_data", "write_report",
           "SENSITIVITY_WIDTHS", "slim_block", "block_sensitivity", "Verification",
           "verify_slimming", "sensitivity_section", "sensitivity_markdown", "sensitivity_html",
           "sensitivity_png",
           "summary_lines", "DEFAULT_ALIGN", "aligned_check"]
