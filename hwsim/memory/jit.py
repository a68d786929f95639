"""numba's `njit` and `prange` when numba is installed; plain-Python stand-ins that run the same code else.

One home for the fallback, so every compiled loop of memory/ (trace parsing, address decoding, the
controller) and the engine's recurrence import it from here."""

from __future__ import annotations

import os

try:  # numba makes the loops ~100x faster; without it the same code runs as plain Python
    import numba
    from numba import get_num_threads, njit, prange, set_num_threads

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's own pool: GNU OpenMP (numba's first choice when TBB is absent) is not fork-safe,
        # and hwsim's loops run from one thread at a time, which is all the workqueue layer asks
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:  # pragma: no cover - exercised only where numba is missing
    def njit(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda f: f)

    prange = range

    def get_num_threads() -> int:
        return 1

    def set_num_threads(n: int) -> None:
        pass

__all__ = ["get_num_threads", "njit", "prange", "set_num_threads"]
