"""Entropy traces: the workload of the simulator. One trace = one token stream with per-token entropy.

Torch-free: reading traces needs only numpy/pandas/pyarrow; `hwsim trace extract` imports torch itself.
"""

from hwsim.traces.catalog import catalog_names, load_trace, load_traces
from hwsim.traces.format import Trace

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
