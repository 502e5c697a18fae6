"""The first call of every chapter: page setup, profile, and what data the page ran on.

Each chapter keeps its own papermill ``parameters`` cell (so ``python -m slimlib run ... -p
NAME VALUE`` and the book extension can set them) and then calls::

    cfg = pages.start(profile, models=models, datasets=datasets, ...)

in a cell whose output is shown (tag ``remove-input``), so the data note appears on the page.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RERUN_HINT", "setup_page", "start", "note"]

#: How to rerun a chapter with other settings (shown under the data note).
RERUN_HINT = ("Rerun this page with other settings with `python -m slimlib run "
              "notebooks/<this chapter>.py -p models '[\"rs-mae-tiny\"]'` (any parameter of "
              "the chapter's parameters cell).")


def note(cfg: Any) -> str:
    """The Markdown a page shows first: which data and profile it ran on, and how to rerun it
    (:func:`slimlib.book.profiles.data_note` plus :data:`RERUN_HINT`)."""
    from slimlib.book.profiles import data_note

    return f"{data_note(cfg)}\n\n{RERUN_HINT}"


def start(profile: Any = None, *, show: bool = True, **params: Any):
    """Set up the page, resolve the profile with the chapter's parameters, show the data note.

    Args:
        profile: the chapter's ``profile`` parameter (a name, a
            :class:`slimlib.book.profiles.Profile`, or ``None`` for ``$SLIMLIB_PROFILE`` /
            ``"default"``).
        show: display the note (:func:`note`) as Markdown when running under IPython; off,
            nothing is displayed (the note is still in ``cfg``'s :func:`note`).
        **params: the chapter's parameters (``models, datasets, widths, seeds, protocols,
            device, batch_size, data_root``); ``None`` values keep the profile's setting.

    Returns:
        The resolved :class:`slimlib.book.profiles.Profile`.

    Raises:
        ValueError: an unknown parameter or a bad value (from
            :func:`slimlib.book.profiles.resolve`, which names the allowed settings).
    """
    from slimlib.book import setup_page
    from slimlib.book.profiles import resolve

    cfg = resolve(profile, **params)
    setup_page()
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import Markdown, display
        except ImportError:  # pragma: no cover - IPython ships with the book extras
            return cfg
        if get_ipython() is not None:
            display(Markdown(note(cfg)))
    return cfg


def setup_page(dpi: int = 90, figsize: tuple[float, float] = (6.4, 4.0)) -> None:
    """Display settings every chapter shares: inline figures (also under ``MPLBACKEND=Agg``),
    no tqdm-widget or library ``UserWarning`` noise, 4-digit pandas tables."""
    import warnings

    import matplotlib.pyplot as plt
    import pandas as pd

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without widgets
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book extras
        get_ipython = None  # noqa: N806
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    pd.set_option("display.precision", 4)
    pd.set_option("display.max_colwidth", None)  # never cut a cell mid-word
    pd.set_option("display.max_columns", None)  # never elide columns with "…"
    plt.rcParams.update({"figure.dpi": dpi, "figure.figsize": figsize})
