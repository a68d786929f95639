"""The discrete-event decode loop (simpy): layers run in order, each layer's weights and states are
prefetched while the previous layer computes (double buffering), write-backs drain behind, and the LM
head closes the step. The engine only orders and times work; the bytes come from `Traffic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from hwsim.memory.transaction import refreshed_end
from hwsim.traffic import Traffic


class DramQueue:
    """One FIFO queue in front of all DRAM channels, at transaction level.

    A transfer occupies the channels for its service time (computed by `DramTiming` from bytes, access
    pattern and activates) after every earlier transfer; a change of direction pays the bus turnaround;
    refreshes take the channels at fixed times (`refreshed_end`); reads complete one closed-row latency
    after their last byte left the channels. Weight
    prefetches, state reads and write-backs contend here in the order they are issued.
    """

    def __init__(self, env: simpy.Environment, read_latency_ns: float, write_to_read_ns: float,
                 read_to_write_ns: float, refresh_interval_ns: float = float("inf"), refresh_ns: float = 0.0):
        self.env = env
        self.refresh_interval_ns, self.refresh_ns = refresh_interval_ns, refresh_ns
        self.free_at_ns = 0.0
        self.last_direction = ""
        self.latency_ns = read_latency_ns
        self.turnaround_ns = {("write", "read"): write_to_read_ns, ("read", "write"): read_to_write_ns}
        self.served_bytes = {"read": 0.0, "write": 0.0}
        self.busy_ns = 0.0
        self.now_ns = 0.0   # the clock of the compiled path (`hwsim.engine_kernel`), which has no env

    def transfer(self, nbytes: float, service_ns: float, direction: str, tag: tuple = ()) -> float:
        """Queue a transfer; return the time its data is in place. `tag` names the transfer (kind, step,
        layer) for the detailed level (`hwsim.detailed_queue`), which turns it into requests."""
        if nbytes <= 0.0:
            return self.env.now
        start = max(self.env.now, self.free_at_ns)
        start += self.turnaround_ns.get((self.last_direction, direction), 0.0)
        start, self.free_at_ns = refreshed_end(start, service_ns, self.refresh_interval_ns, self.refresh_ns)
        self.last_direction = direction
        self.served_bytes[direction] += nbytes
        self.busy_ns += self.free_at_ns - start
        return self.free_at_ns + (self.latency_ns if direction == "read" else 0.0)


@dataclass(frozen=True)
class Timeline:
    step_start_ns: np.ndarray
    step_end_ns: np.ndarray
    end_ns: float                       # when the last write-back has drained
    dram_served_bytes: dict[str, float]
    dram_busy_ns: float

    @property
    def step_latency_ns(self) -> np.ndarray:
        return self.step_end_ns - self.step_start_ns


class DecodeEngine:
    """One simulated accelerator; `run` advances it through a chunk of steps, keeping its clock and its
    DRAM queue between chunks so long runs stream through in constant memory."""

    def __init__(self, *, read_latency_ns: float, write_to_read_ns: float, read_to_write_ns: float,
                 refresh_interval_ns: float = float("inf"), refresh_ns: float = 0.0, dram_queue=None,
                 compiled: bool = False):
        self.env = simpy.Environment()
        self.dram = (dram_queue(self.env) if dram_queue is not None
                     else DramQueue(self.env, read_latency_ns, write_to_read_ns, read_to_write_ns,
                                    refresh_interval_ns, refresh_ns))
        #: the same recurrence compiled (hwsim.engine_kernel); only with the transaction-level queue
        self.compiled = compiled and dram_queue is None

    @classmethod
    def for_traffic(cls, traffic: Traffic, dram_queue=None, *, compiled: bool = False) -> DecodeEngine:
        """`dram_queue(env)` builds another queue with DramQueue's interface (run.fidelity: detailed)."""
        return cls(read_latency_ns=traffic.read_latency_ns, write_to_read_ns=traffic.write_to_read_ns,
                   read_to_write_ns=traffic.read_to_write_ns, refresh_interval_ns=traffic.refresh_interval_ns,
                   refresh_ns=traffic.refresh_ns, dram_queue=dram_queue, compiled=compiled)

    def run(self, traffic: Traffic, *, gate_on_current: bool = False) -> Timeline:
        served_before = dict(self.dram.served_bytes)
        busy_before = self.dram.busy_ns
        if self.compiled:
            from hwsim.engine_kernel import run_compiled

            starts, ends = run_compiled(self.dram, traffic, gate_on_current)
            now = self.dram.now_ns
        else:
            starts, ends = _decode(self.env, self.dram, traffic, gate_on_current)
            now = self.env.now
        served = {k: v - served_before[k] for k, v in self.dram.served_bytes.items()}
        return Timeline(step_start_ns=starts, step_end_ns=ends,
                        end_ns=max(now, self.dram.free_at_ns), dram_served_bytes=served,
                        dram_busy_ns=self.dram.busy_ns - busy_before)


def _decode(env: simpy.Environment, dram: DramQueue, traffic: Traffic, gate_on_current: bool):
    steps, layers = traffic.steps, traffic.layers
    starts = np.zeros(steps)
    ends = np.zeros(steps)
    # plain Python floats: indexing numpy scalars in the hot loop costs more than the simulation
    read_b, read_ns = traffic.layer_read_bytes.tolist(), traffic.layer_read_ns.tolist()
    write_b, write_ns = traffic.layer_write_bytes.tolist(), traffic.layer_write_ns.tolist()
    compute_ns = traffic.layer_compute_ns.tolist()
    lm_b, lm_ns, lm_compute = (traffic.lm_read_bytes.tolist(), traffic.lm_read_ns.tolist(),
                               traffic.lm_compute_ns.tolist())
    passes = traffic.replay_passes.tolist()

    def wait_until(t_ns: float):
        return env.timeout(t_ns - env.now) if t_ns > env.now else None

    def run_layers(t: int, ready: float, reads_b, reads_ns, writes_b, writes_ns, compute, last_prefetch,
                   read_kind="layer_read", write_kind="layer_write"):
        """Yield through one pass over the layers; returns the time the follow-on prefetch lands."""
        for layer in range(layers):
            pause = wait_until(ready)
            if pause is not None:
                yield pause
            ready = (dram.transfer(reads_b[layer + 1], reads_ns[layer + 1], "read", (read_kind, t, layer + 1))
                     if layer + 1 < layers else last_prefetch())
            yield env.timeout(compute[layer])
            dram.transfer(writes_b[layer], writes_ns[layer], "write", (write_kind, t, layer))
        return ready

    def decode():
        ready = dram.transfer(read_b[0][0], read_ns[0][0], "read", ("layer_read", 0, 0))
        for t in range(steps):
            starts[t] = env.now
            lm_ready = yield from run_layers(
                t, ready, read_b[t], read_ns[t], write_b[t], write_ns[t], compute_ns[t],
                lambda t=t: dram.transfer(lm_b[t], lm_ns[t], "read", ("lm_read", t)))
            pause = wait_until(lm_ready)
            if pause is not None:
                yield pause
            simple_step = not gate_on_current and passes[t] == 0
            if simple_step and t + 1 < steps:  # next step's first layer streams in under the LM head
                ready = dram.transfer(read_b[t + 1][0], read_ns[t + 1][0], "read", ("layer_read", t + 1, 0))
            yield env.timeout(lm_compute[t])
            if gate_on_current:  # the gated write-back waits for this step's logits
                spilled = dram.transfer(traffic.deferred_read_bytes[t], traffic.deferred_read_ns[t], "read",
                                        ("deferred_read", t))
                pause = wait_until(spilled)
                if pause is not None:
                    yield pause
                dram.transfer(traffic.deferred_write_bytes[t], traffic.deferred_write_ns[t], "write",
                              ("deferred_write", t))
            for _ in range(passes[t]):  # rollback: re-execute the layers at high precision
                rb, rns = float(traffic.replay_layer_read_bytes[t]), float(traffic.replay_layer_read_ns[t])
                wb, wns = float(traffic.replay_layer_write_bytes[t]), float(traffic.replay_layer_write_ns[t])
                cns = float(traffic.replay_layer_compute_ns[t])
                first = dram.transfer(rb, rns, "read", ("replay_read", t, 0))
                yield from run_layers(t, first, [rb] * layers, [rns] * layers, [wb] * layers, [wns] * layers,
                                      [cns] * layers, lambda: env.now, "replay_read", "replay_write")
            if not simple_step and t + 1 < steps:
                ready = dram.transfer(read_b[t + 1][0], read_ns[t + 1][0], "read", ("layer_read", t + 1, 0))
            ends[t] = env.now

    env.process(decode())
    env.run()
    return starts, ends
