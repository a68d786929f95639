"""Unit conversions, in one place. Simulation time is nanoseconds throughout; these turn it (and the
datasheet units) into rates and display units. `_GBps` is bytes per ns already (10^9 B/s)."""

from __future__ import annotations

S_PER_NS = 1e-9
NS_PER_US, NS_PER_MS = 1e3, 1e6
FLOPS_PER_NS_PER_TFLOPS = 1e3      # 1 TFLOP/s = 10^12 / 10^9 operations per ns
BYTES_PER_MB = 1e6
PJ_PER_MJ = 1e9


def per_second(count, time_ns):
    """A count over a time in ns, as a rate per second (tokens/s, ...)."""
    return count / (time_ns * S_PER_NS)


def flops_per_ns(tflops: float) -> float:
    return tflops * FLOPS_PER_NS_PER_TFLOPS
