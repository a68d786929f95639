"""Request-level DRAM model: one FR-FCFS controller per (pseudo-)channel, as DRAMsim3 / Ramulator 2 do.

`DetailedDram` keeps the banks' row state, the channels' command history and the queues between calls,
so the decode engine can hand it one transfer's requests at a time (`submit`) and a trace replay can
hand it a whole file. Outputs are counts and times; energy = counts x the preset's table (`energy_pJ`),
the same table the fast model uses. The loop itself lives in `controller_kernel.py` (numba).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.config.hardware import DramMemory
from hwsim.memory import controller_kernel as k
from hwsim.memory.mapping import DEFAULT_MAPPING, AddressMapping

DEFAULT_QUEUE_DEPTH = 128


def kernel_timings(dram: DramMemory) -> np.ndarray:
    """The one place that turns a preset into the kernel's timing vector (ns)."""
    org, t = dram.preset.organisation, dram.preset.timings_ns
    burst = org.burst_length / dram.pin_rate_Gbps
    out = np.zeros(k.N_TIMINGS)
    out[[k.T_RCD, k.T_CL, k.T_CWL, k.T_RP, k.T_RAS, k.T_RC, k.T_RRD_S, k.T_RRD_L, k.T_FAW]] = (
        t.tRCD, t.tCL, t.tCWL, t.tRP, t.tRAS, t.tRC, t.tRRD_S, t.tRRD_L, t.tFAW)
    out[k.T_CCD_S], out[k.T_CCD_L] = max(t.tCCD_S, burst), max(t.tCCD_L, burst)  # a burst holds the bus
    out[[k.T_WR, k.T_WTR_S, k.T_WTR_L, k.T_RTP, k.T_REFI, k.T_RFC]] = (
        t.tWR, t.tWTR_S, t.tWTR_L, t.tRTP, t.tREFI, t.tRFC)
    out[k.T_BURST] = burst
    out[k.T_RTW] = max(t.tCL + burst + 2 * t.tCK - t.tCWL, burst)  # read-to-write bus turnaround
    shared = org.command_bus_shared_by
    out[k.T_ROW_BUS], out[k.T_COL_BUS] = shared * t.row_command, shared * t.column_command
    return out


@dataclass
class DramStats:
    """What a run of the detailed model measured."""

    requests: int
    reads: int
    writes: int
    bytes: int
    first_arrival_ns: float
    last_completion_ns: float
    latency_ns: np.ndarray = field(repr=False)
    row_hits: int
    activates: int
    refreshes: int
    wasted_activates: int
    read_to_write_switches: int
    write_to_read_switches: int
    energy_pJ: dict[str, float]
    peak_bandwidth_GBps: float

    @property
    def elapsed_ns(self) -> float:
        return self.last_completion_ns - self.first_arrival_ns

    @property
    def bandwidth_GBps(self) -> float:
        return self.bytes / self.elapsed_ns if self.elapsed_ns > 0 else 0.0

    @property
    def efficiency(self) -> float:
        return self.bandwidth_GBps / self.peak_bandwidth_GBps

    @property
    def row_hit_rate(self) -> float:
        return self.row_hits / self.requests if self.requests else 0.0

    def latency_percentiles_ns(self, qs=(50, 90, 99, 99.9)) -> dict[str, float]:
        values = np.percentile(self.latency_ns, qs) if len(self.latency_ns) else np.zeros(len(qs))
        return {f"p{q:g}": float(v) for q, v in zip(qs, values)}


class DetailedDram:
    """All channels of one DRAM configuration, with persistent controller state."""

    def __init__(self, dram: DramMemory, *, queue_depth: int = DEFAULT_QUEUE_DEPTH,
                 mapping: str = DEFAULT_MAPPING, closed_row: bool = False, refresh: bool = True,
                 replicas: int = 1):
        """`replicas`: independent copies of every channel (a request names its copy in `submit`), so
        many random draws of one pattern are measured in one pass, each on fresh channels."""
        org = dram.preset.organisation
        self.dram = dram
        self.queue_depth = int(queue_depth)
        self.closed_row = bool(closed_row)
        self.mapping = AddressMapping.build(
            mapping, channels=dram.total_channels, bank_groups=org.bank_groups, banks_per_group=org.banks_per_group,
            row_bytes=org.row_bytes, access_bytes=org.access_bytes, interleave_bytes=dram.interleave_bytes,
            capacity_bytes=dram.capacity_bytes)
        self.access_bytes = org.access_bytes
        self.timings = kernel_timings(dram)
        self.channels = dram.total_channels * int(replicas)
        channels, banks = self.channels, org.bank_groups * org.banks_per_group
        self.banks_per_group = org.banks_per_group
        self.chan = np.full((channels, 15), -np.inf)
        self.chan[:, [k.C_LAST_ACT_BG, k.C_LAST_COL_BG, k.C_LAST_WRITE_BG, k.C_LAST_DIR]] = -1.0
        self.chan[:, k.C_FAW_I] = 0.0
        # refresh=False (calibration measures refresh apart): the first refresh never comes
        self.chan[:, k.C_NEXT_REF] = self.timings[k.T_REFI] if refresh else np.inf
        self.open_row = np.full((channels, banks), -1, dtype=np.int64)
        self.row_ready = np.zeros((channels, banks))
        self.act_ready = np.full((channels, banks), -np.inf)
        self.pre_ready = np.full((channels, banks), -np.inf)
        self.unused = np.zeros((channels, banks), dtype=np.bool_)   # opened, no column command yet
        self.inflight = np.zeros((channels, self.queue_depth))          # min-heap of completion times
        self.n_inflight = np.zeros(channels, dtype=np.int64)
        self.counts = np.zeros((channels, k.N_COUNTS), dtype=np.int64)
        self.first_arrival_ns = np.inf
        self.last_completion_ns = -np.inf
        self.bytes = 0
        self._latencies: list[np.ndarray] = []

    @property
    def peak_bandwidth_GBps(self) -> float:
        return self.dram.peak_bandwidth_GBps

    def submit(self, address: np.ndarray, is_write: np.ndarray | bool, arrival_ns: np.ndarray | float,
               *, keep_latency: bool = True, replica: np.ndarray | None = None) -> np.ndarray:
        """Serve requests (one access each) arriving at `arrival_ns`; return each one's completion time.

        Requests already submitted are scheduled first (a later call never overtakes an earlier one).
        `replica` (with `replicas` > 1): which copy of the channels each request goes to."""
        address = np.asarray(address, dtype=np.int64)
        n = address.shape[0]
        if n == 0:
            return np.zeros(0)
        arrival = np.broadcast_to(np.asarray(arrival_ns, dtype=np.float64), (n,))
        writes = np.broadcast_to(np.asarray(is_write, dtype=np.bool_), (n,))
        channel, bank, _, row = self.mapping.locate(address)
        if replica is not None:
            channel = channel + np.asarray(replica, dtype=np.int64) * self.dram.total_channels
        # by channel, arrival order within each: a stable sort of the channel when arrivals are already in
        # order (traces, engine transfers), on int16 keys so numpy uses a radix sort
        key = channel.astype(np.int16) if self.channels < 2**15 else channel
        order = (np.argsort(key, kind="stable") if arrival.size < 2 or np.all(arrival[1:] >= arrival[:-1])
                 else np.lexsort((arrival, channel)))
        offsets = np.searchsorted(channel[order], np.arange(self.channels + 1))
        completion = np.empty(n)
        was_hit = np.ones(n, dtype=np.bool_)
        k.run_channels(self.timings, self.queue_depth, self.closed_row, self.banks_per_group,
                       offsets.astype(np.int64), np.ascontiguousarray(arrival[order]),
                       np.ascontiguousarray(bank[order]), np.ascontiguousarray(row[order]),
                       np.ascontiguousarray(writes[order]), self.chan, self.open_row, self.row_ready,
                       self.act_ready, self.pre_ready, self.unused, self.inflight, self.n_inflight, self.counts, completion,
                       was_hit)
        out = np.empty(n)
        out[order] = completion
        self.first_arrival_ns = min(self.first_arrival_ns, float(arrival.min()))
        self.last_completion_ns = max(self.last_completion_ns, float(completion.max()))
        self.bytes += n * self.access_bytes
        if keep_latency:
            self._latencies.append(out - arrival)
        return out

    def stats(self) -> DramStats:
        c = self.counts.sum(axis=0)
        e = self.dram.preset.energy
        bits = 8 * self.access_bytes
        energy = {"read": c[k.N_READ] * bits * e.read_pJ_per_bit, "write": c[k.N_WRITE] * bits * e.write_pJ_per_bit,
                  "activate": c[k.N_ACT] * e.activate_pJ, "refresh": c[k.N_REF] * e.refresh_pJ}
        energy["total"] = sum(energy.values())
        lat = np.concatenate(self._latencies) if self._latencies else np.zeros(0)
        return DramStats(
            requests=int(c[k.N_READ] + c[k.N_WRITE]), reads=int(c[k.N_READ]), writes=int(c[k.N_WRITE]),
            bytes=int(self.bytes), first_arrival_ns=self.first_arrival_ns,
            last_completion_ns=self.last_completion_ns, latency_ns=lat, row_hits=int(c[k.N_HIT]),
            activates=int(c[k.N_ACT]), refreshes=int(c[k.N_REF]), wasted_activates=int(c[k.N_WASTED]),
            read_to_write_switches=int(c[k.N_RW_SWITCH]), write_to_read_switches=int(c[k.N_WR_SWITCH]),
            energy_pJ={key: float(v) for key, v in energy.items()}, peak_bandwidth_GBps=self.peak_bandwidth_GBps)
