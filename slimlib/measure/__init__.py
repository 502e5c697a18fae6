"""Stage 2 — measure: FLOPs, parameters, relative compute and wall time.

FLOPs are forward FLOPs (2 x multiply-accumulates of every matrix product, attention's
included unless told otherwise), counted by ``torch.utils.flop_counter``; relative compute is
FLOPs(s) / FLOPs(1) of the same model and input. :func:`time_forward` and
:func:`time_alternated` time models with :func:`timed_rounds`, the one timing loop. See ``docs/compute.md``.
"""

from slimlib.measure._compute import (
    WIDTHS,
    compute_table,
    flops,
    params,
    relative_compute,
    time_alternated,
    time_forward,
    timed_rounds,
)

__all__ = ["WIDTHS", "flops", "params", "relative_compute", "compute_table", "time_forward",
           "time_alternated", "timed_rounds"]
