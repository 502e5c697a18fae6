"""Page setup every chapter shares (figures inline, quiet warnings, table precision)."""

from __future__ import annotations

__all__ = ["setup_page"]


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
