"""Entropy traces: the workload of the simulator. One trace = one token stream with per-token entropy.

Torch-free: reading traces needs only numpy/pandas/pyarrow; `hwsim trace extract` imports torch itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwsim.traces.catalog import catalog_names, load_trace, load_traces
    from hwsim.traces.format import Trace

#: Loaded on first use, so the command line (which imports `hwsim.traces.commands`) does not pay for
#: pandas and pyarrow in commands that never read a trace.
_LAZY = {"catalog_names": "hwsim.traces.catalog", "load_trace": "hwsim.traces.catalog",
         "load_traces": "hwsim.traces.catalog", "Trace": "hwsim.traces.format"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: The shipped traces used as the default workload (a test checks this equals the catalog).
DEFAULT_TRACE_SET = [
    "prose-pydocs",
    "prose-pydocs-types",
    "code-stdlib",
    "code-stdlib-fractions",
    "generated-greedy-essay",
    "generated-sampled-essay",
    "generated-greedy-code",
]

__all__ = ["DEFAULT_TRACE_SET", "Trace", "catalog_names", "load_trace", "load_traces"]
