"""`hwsim export-trace`: the DRAM requests of a run, for replay in DRAMsim3 or Ramulator 2.

Runs the experiment's first N steps (fast level, no baseline) with a queue that records every transfer
the engine issues (time, direction, tag); each transfer becomes accesses by the same `AddressLayout`
the detailed fidelity uses, stamped with the transfer's issue time (DRAMsim3: cycle = time / tCK).
"""

from __future__ import annotations

from pathlib import Path

from hwsim.engine import DramQueue


class RecordingQueue(DramQueue):
    """The fast FIFO queue, also keeping (time, bytes, direction, tag) of every transfer."""

    def __init__(self, env, *args):
        super().__init__(env, *args)
        self.log: list[tuple[float, float, str, tuple]] = []

    def transfer(self, nbytes, service_ns, direction, tag=()):
        if nbytes > 0:
            self.log.append((self.env.now, nbytes, direction, tag))
        return super().transfer(nbytes, service_ns, direction, tag)


def export_trace(exp, out: Path, *, fmt: str, steps: int | None = None) -> int:
    """Write the trace; return the number of requests."""
    from hwsim.engine import DecodeEngine
    from hwsim.errors import HwsimInputError
    from hwsim.memory.dram_traces import format_lines
    from hwsim.runner import prepare, transfer_requests, workload_entropies
    from hwsim.traffic import build_traffic

    if exp.hardware.dram is None:
        raise HwsimInputError("this hardware has no DRAM: nothing to export", key="hardware.dram")
    if exp.hardware.execution.kind != "dataflow":
        raise HwsimInputError("export-trace replays the dataflow engine's transfers; this hardware's "
                              "execution kind is gpu", key="hardware.execution.kind", allowed="dataflow")
    if steps is not None and steps < 1:
        raise HwsimInputError(f"--steps {steps}: must be at least 1 (omit it for all steps)", key="--steps")
    steps = min(steps or exp.workload.steps, exp.workload.steps)
    entropies = workload_entropies(exp)
    ready = prepare(exp, entropies, steps)
    fp, policy, plan = ready.footprint, ready.policy, ready.plan
    traffic = build_traffic(exp, fp, plan, ready.dram, ready.budget_bytes)
    engine = DecodeEngine.for_traffic(
        traffic, lambda env: RecordingQueue(env, traffic.read_latency_ns, traffic.write_to_read_ns,
                                            traffic.read_to_write_ns, traffic.refresh_interval_ns,
                                            traffic.refresh_ns))
    engine.run(traffic, gate_on_current=policy.gate_on == "current")
    requests = transfer_requests(exp, fp, policy, traffic, 0)
    tCK = exp.hardware.dram.preset.timings_ns.tCK
    from hwsim.files import write_atomic

    def write(tmp: Path) -> int:
        count = 0
        with open(tmp, "w") as handle:
            for now, nbytes, direction, tag in engine.dram.log:
                address = requests.addresses(tag, nbytes)
                lines = format_lines(address, direction == "write", now, fmt=fmt, tCK_ns=tCK)
                handle.write("\n".join(lines) + "\n")
                count += len(lines)
        return count

    return write_atomic(out, write, returns=True)  # a full disk leaves no truncated trace behind
