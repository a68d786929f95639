"""`run.fidelity: detailed`: the engine's DRAM queue backed by the request-level controller.

Same interface as `hwsim.engine.DramQueue`. Each transfer's tag (kind, step, layer) and byte count are
split into parts (weights, SSM state per stream, conv state per stream, LM head, embeddings) by the
`AddressLayout`; their accesses go to one persistent `DetailedDram`, arriving when the engine issues the
transfer; the transfer completes when its last access does. A transfer is scheduled when it is issued:
later transfers queue behind it on every channel, as in the fast model's FIFO.
"""

from __future__ import annotations

import numpy as np

from hwsim.address_layout import AddressLayout
from hwsim.memory.detailed import DetailedDram
from hwsim.sizing import state_bytes


class TransferRequests:
    """Turns engine transfers of one chunk of steps into access addresses."""

    def __init__(self, layout: AddressLayout, *, fp, traffic, policy, batch: int, first_step: int):
        """The bytes of each part come from `traffic` (what the fast level charged), so both levels move
        the same bytes; only where they lie is decided here."""
        self.layout, self.fp, self.batch, self.first_step = layout, fp, batch, first_step
        ds = traffic.dram_side
        self.weights, self.ssm_read, self.ssm_write = ds.weights, ds.ssm_read, ds.ssm_write    # (steps, layers)
        self.read_run = np.maximum(traffic.ssm_read_per_layer / batch, 1.0)                    # mean per stream
        self.write_run = np.maximum(traffic.ssm_write_per_layer / batch, 1.0)
        self.high_run = float(state_bytes(fp.layer.ssm_state_elements, policy.high_bits, policy.group_size,
                                          policy.scale_bits))
        self.embed = ds.embeddings

    def addresses(self, tag: tuple, nbytes: float) -> np.ndarray:
        lay = self.layout
        kind, t = tag[0], tag[1]
        layer = tag[2] if len(tag) > 2 else 0
        parts = []
        if kind == "layer_read":
            w = min(nbytes, self.weights[t, layer])
            s = min(nbytes - w, self.ssm_read[t, layer])
            parts = [lay.stream("weights", layer * lay.weight_bytes_per_layer, w),
                     lay.per_stream("ssm_state", layer, s, self.read_run[t]),
                     lay.per_stream("conv_state", layer, nbytes - w - s, (nbytes - w - s) / self.batch)]
        elif kind == "layer_write":
            s = min(nbytes, self.ssm_write[t, layer])
            parts = [lay.per_stream("ssm_state", layer, s, self.write_run[t]),
                     lay.per_stream("conv_state", layer, nbytes - s, (nbytes - s) / self.batch)]
        elif kind == "lm_read":
            e = min(nbytes, self.embed)
            parts = [lay.stream("lm_head", 0.0, nbytes - e),
                     lay.embedding_rows(self.first_step + t, self.batch) if e > 0 else np.zeros(0, np.int64)]
        else:  # deferred / replay traffic: high-precision state slots in the spill region
            parts = [lay.per_stream("spill", layer, nbytes, self.high_run)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class DetailedDramQueue:
    """Drop-in for `DramQueue` that serves each transfer request by request."""

    def __init__(self, env, controller: DetailedDram):
        self.env = env
        self.controller = controller
        self.requests: TransferRequests | None = None
        self.free_at_ns = 0.0
        self.served_bytes = {"read": 0.0, "write": 0.0}
        self.busy_ns = 0.0
        self.accesses = 0

    def bind(self, requests: TransferRequests) -> None:
        """Attach the chunk of steps the engine is about to run."""
        self.requests = requests

    def transfer(self, nbytes: float, service_ns: float, direction: str, tag: tuple = ()) -> float:
        if nbytes <= 0.0:
            return self.env.now
        address = self.requests.addresses(tag, nbytes)
        done = float(self.controller.submit(address, direction == "write", self.env.now,
                                            keep_latency=False).max())
        self.accesses += address.size
        self.served_bytes[direction] += nbytes
        self.busy_ns += max(done - max(self.env.now, self.free_at_ns), 0.0)
        self.free_at_ns = max(self.free_at_ns, done)
        return done

    def summary(self) -> dict[str, float]:
        """The detailed model's own counts for the whole run so far, for `run.fidelity: detailed`
        summaries (totals; divide by tokens for per-token figures): activates, row-hit rate, refreshes,
        activates refresh wasted, and their energy (counts x the preset's table, refresh included)."""
        st = self.controller.stats()
        return {"dram_activates": float(st.activates), "dram_row_hit_rate": st.row_hit_rate,
                "dram_refreshes": float(st.refreshes), "dram_wasted_activates": float(st.wasted_activates),
                "energy_pJ_dram_activate": st.energy_pJ["activate"],
                "energy_pJ_dram_refresh": st.energy_pJ["refresh"]}
