"""Request-level DRAM model: one FR-FCFS controller per (pseudo-)channel, as DRAMsim3 / Ramulator 2 do.

`DetailedDram` keeps the banks' row state, the channels' command history and the queues between calls,
so the decode engine can hand it one transfer's requests at a time (`submit`) and a trace replay can
hand it a whole file. Outputs are counts and times; energy = counts x the preset's table (`energy_pJ`),
the same table the fast model uses. The loop itself lives in `controller_kernel.py` (numba).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.config.dram import QUEUE_RELEASES
from hwsim.config.hardware import DramMemory
from hwsim.memory import controller_kernel as k
from hwsim.memory.jit import get_num_threads, njit, prange
from hwsim.memory.mapping import DEFAULT_MAPPING, AddressMapping, locate_one

DEFAULT_QUEUE_DEPTH = 128
#: Below this many requests, laying them out on one thread beats starting the others.
PARALLEL_LAYOUT_REQUESTS = 1 << 16


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


@njit(cache=True)
def _channel_of(i, address, replica, channels_per_replica, sizes, shifts, where, banks_per_group):
    channel, bank, row = locate_one(address[i], sizes, shifts, where, banks_per_group)
    if replica.shape[0] > 0:
        channel += replica[i if replica.shape[0] == address.shape[0] else 0] * channels_per_replica
    return channel, bank, row


@njit(cache=True)
def _count_piece(lo, hi, address, replica, channels_per_replica, sizes, shifts, where, banks_per_group, counts):
    for i in range(lo, hi):
        channel, _, _ = _channel_of(i, address, replica, channels_per_replica, sizes, shifts, where, banks_per_group)
        counts[channel] += 1


@njit(cache=True)
def _place_piece(lo, hi, address, arrival, is_write, replica, channels_per_replica, sizes, shifts, where,
                 banks_per_group, fill, order, arrival_out, bank_out, row_out, write_out):
    n = address.shape[0]
    for i in range(lo, hi):
        channel, bank, row = _channel_of(i, address, replica, channels_per_replica, sizes, shifts, where,
                                         banks_per_group)
        j = fill[channel]
        fill[channel] = j + 1
        arrival_out[j] = arrival[i if arrival.shape[0] == n else 0]
        write_out[j] = is_write[i if is_write.shape[0] == n else 0]
        bank_out[j] = bank
        row_out[j] = row
        if order.shape[0] > 0:
            order[j] = i


@njit(cache=True)
def _piece_starts(counts, offsets):
    """Per piece and channel, where the piece's first request of that channel goes (pieces in input
    order, so the layout is stable); fills `offsets` (each channel's first row)."""
    pieces, channels = counts.shape
    offsets[0] = 0
    for c in range(channels):
        offsets[c + 1] = offsets[c] + counts[:, c].sum()
    starts = np.empty_like(counts)
    for c in range(channels):
        at = offsets[c]
        for q in range(pieces):
            starts[q, c] = at
            at += counts[q, c]
    return starts


@njit(cache=True)
def _by_channel(address, arrival, is_write, replica, channels_per_replica, sizes, shifts, where, banks_per_group,
                offsets, order, arrival_out, bank_out, row_out, write_out):
    """Decode every address and lay the requests out by channel, arrival order kept within each (a
    stable counting sort, two passes, no temporaries): what the controller loop reads. `arrival`,
    `is_write` and `replica` hold one value per request, or one for all (`replica` may be empty);
    `order` (empty: not wanted) receives each laid-out request's index in the input."""
    n = address.shape[0]
    counts = np.zeros((1, offsets.shape[0] - 1), np.int64)
    _count_piece(0, n, address, replica, channels_per_replica, sizes, shifts, where, banks_per_group, counts[0])
    fill = _piece_starts(counts, offsets)[0]
    _place_piece(0, n, address, arrival, is_write, replica, channels_per_replica, sizes, shifts, where,
                 banks_per_group, fill, order, arrival_out, bank_out, row_out, write_out)


@njit(cache=True, parallel=True)
def _by_channel_parallel(address, arrival, is_write, replica, channels_per_replica, sizes, shifts, where,
                         banks_per_group, offsets, order, arrival_out, bank_out, row_out, write_out, pieces):
    """`_by_channel` over `pieces` consecutive pieces of the input on numba's threads: each piece
    counts its requests per channel, then places them after the earlier pieces' (the same layout)."""
    n = address.shape[0]
    counts = np.zeros((pieces, offsets.shape[0] - 1), np.int64)
    for q in prange(pieces):
        _count_piece(n * q // pieces, n * (q + 1) // pieces, address, replica, channels_per_replica, sizes,
                     shifts, where, banks_per_group, counts[q])
    starts = _piece_starts(counts, offsets)
    for q in prange(pieces):
        _place_piece(n * q // pieces, n * (q + 1) // pieces, address, arrival, is_write, replica,
                     channels_per_replica, sizes, shifts, where, banks_per_group, starts[q], order, arrival_out,
                     bank_out, row_out, write_out)


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
                 replicas: int = 1, parallel: bool = False, queue_release: str = "completion"):
        """`replicas`: independent copies of every channel (a request names its copy in `submit`), so
        many random draws of one pattern are measured in one pass, each on fresh channels. `parallel`:
        channels spread over numba's threads (same results; for one big replay, not inside a pool).
        `queue_release`: when a request gives back its queue entry, `completion` (its data burst ends:
        a DMA's outstanding requests, hwsim's engine) or `column` (its column command issues, and an
        activated request waits in its bank's slot outside the queue: Ramulator 2's read buffer)."""
        if queue_release not in QUEUE_RELEASES:
            raise ValueError(f"queue_release {queue_release!r}; known: {', '.join(QUEUE_RELEASES)}")
        org = dram.preset.organisation
        self.dram = dram
        self.queue_depth = int(queue_depth)
        self.queue_release = queue_release
        self.closed_row = bool(closed_row)
        self.parallel = bool(parallel)
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
               *, keep_latency: bool = True, replica: np.ndarray | None = None,
               completion: bool = True, admission_ns: np.ndarray | None = None) -> np.ndarray | None:
        """Serve requests (one access each) arriving at `arrival_ns`; return each one's completion time
        (None with `completion=False`, which saves a trace replay two request-sized arrays).

        Requests already submitted are scheduled first (a later call never overtakes an earlier one).
        `replica` (with `replicas` > 1): which copy of the channels each request goes to.
        `admission_ns` (one float per request, with `completion`): filled with when each request got
        its queue entry."""
        address = np.ascontiguousarray(address, dtype=np.int64)
        n = address.shape[0]
        if n == 0:
            return np.zeros(0) if completion else None
        arrival = np.ascontiguousarray(np.atleast_1d(np.asarray(arrival_ns, dtype=np.float64)))
        writes = np.ascontiguousarray(np.atleast_1d(np.asarray(is_write, dtype=np.bool_)))
        replicas = (np.zeros(0, np.int64) if replica is None
                    else np.ascontiguousarray(np.atleast_1d(np.asarray(replica, dtype=np.int64))))
        if arrival.shape[0] not in (1, n) or writes.shape[0] not in (1, n) or replicas.shape[0] not in (0, 1, n):
            raise ValueError("arrival_ns, is_write and replica need one value per request or one for all")
        if admission_ns is not None and (not completion or admission_ns.shape != (n,)):
            raise ValueError("admission_ns needs one float per request, and completions")
        if arrival.shape[0] > 1 and np.any(arrival[1:] < arrival[:-1]):
            # the layout keeps input order within a channel: put the requests in arrival order first
            first = np.argsort(arrival, kind="stable")
            admitted = None if admission_ns is None else np.empty(n)
            done = self.submit(address[first], writes[first] if writes.shape[0] > 1 else writes, arrival[first],
                               keep_latency=keep_latency, admission_ns=admitted,
                               replica=replicas[first] if replicas.shape[0] > 1 else replicas)
            out = np.empty(n)
            out[first] = done
            if admission_ns is not None:
                admission_ns[first] = admitted
            return out if completion else None
        offsets = np.zeros(self.channels + 1, dtype=np.int64)
        order = np.empty(n if completion else 0, dtype=np.int64)
        arrival_in_order = np.empty(n)
        bank = np.empty(n, dtype=np.int32)
        row = np.empty(n, dtype=np.int32)
        writes_in_order = np.empty(n, dtype=np.bool_)
        sizes, shifts, where = self.mapping.digit_table()
        inputs = (address, arrival, writes, replicas, self.dram.total_channels, sizes, shifts, where,
                  self.banks_per_group, offsets, order, arrival_in_order, bank, row, writes_in_order)
        if self.parallel and n >= PARALLEL_LAYOUT_REQUESTS:
            _by_channel_parallel(*inputs, get_num_threads())
        else:
            _by_channel(*inputs)
        done = np.empty(n)
        was_hit = np.ones(n, dtype=np.bool_)
        admitted = np.empty(n if admission_ns is not None else 0)
        run = k.run_channels_parallel if self.parallel else k.run_channels
        run(self.timings, self.queue_depth, self.queue_release == "column", self.closed_row, self.banks_per_group,
            offsets, arrival_in_order, bank, row, writes_in_order, self.chan, self.open_row, self.row_ready,
            self.act_ready, self.pre_ready, self.unused, self.inflight, self.n_inflight, self.counts, done, was_hit,
            admitted)
        if admission_ns is not None:
            admission_ns[order] = admitted
        self.first_arrival_ns = min(self.first_arrival_ns, float(arrival.min()))
        self.last_completion_ns = max(self.last_completion_ns, float(done.max()))
        self.bytes += n * self.access_bytes
        if not completion:
            if keep_latency:  # in the channel layout's order: the statistics do not depend on it
                self._latencies.append(np.subtract(done, arrival_in_order, out=done))
            return None
        out = np.empty(n)
        out[order] = done
        if keep_latency:
            self._latencies.append(out - arrival if arrival.shape[0] == n else out - arrival[0])
        return out

    def stats(self) -> DramStats:
        c = self.counts.sum(axis=0)
        e = self.dram.preset.energy
        bits = 8 * self.access_bytes
        energy = {"read": c[k.N_READ] * bits * e.read_pJ_per_bit, "write": c[k.N_WRITE] * bits * e.write_pJ_per_bit,
                  "activate": c[k.N_ACT] * e.activate_pJ, "refresh": c[k.N_REF] * e.refresh_pJ}
        energy["total"] = sum(energy.values())
        lat = (self._latencies[0] if len(self._latencies) == 1 else
               np.concatenate(self._latencies) if self._latencies else np.zeros(0))
        return DramStats(
            requests=int(c[k.N_READ] + c[k.N_WRITE]), reads=int(c[k.N_READ]), writes=int(c[k.N_WRITE]),
            bytes=int(self.bytes), first_arrival_ns=self.first_arrival_ns,
            last_completion_ns=self.last_completion_ns, latency_ns=lat, row_hits=int(c[k.N_HIT]),
            activates=int(c[k.N_ACT]), refreshes=int(c[k.N_REF]), wasted_activates=int(c[k.N_WASTED]),
            read_to_write_switches=int(c[k.N_RW_SWITCH]), write_to_read_switches=int(c[k.N_WR_SWITCH]),
            energy_pJ={key: float(v) for key, v in energy.items()}, peak_bandwidth_GBps=self.peak_bandwidth_GBps)
