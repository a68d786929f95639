"""The per-channel FR-FCFS controller loop, compiled by numba when it is installed (plain Python else).

Kept apart from `detailed.py` so the compiled part is one function over flat arrays: the state of
every (pseudo-)channel lives in numpy arrays owned by `DetailedDram` and persists between calls.
Channels share nothing, so `run_channels_parallel` runs them on numba's threads with the same results.

Event-driven: time jumps from one command to the next; nothing ticks through idle cycles. Per channel:
 - admission: requests enter in arrival order while the queue has a free entry; an entry is held from
   admission until the request's data burst ends, so queue depth bounds the look-ahead (or, with
   `release_at_column`, as Ramulator 2's read buffer: until its column command, and a request whose
   activate has issued waits in its bank's slot outside the buffer);
 - row preparation: for the oldest waiting request of every bank that has no waiting row hit, precharge
   (open row) and activate at the earliest legal time (tRP, tRAS, tRC, tRRD_S/L, tFAW);
 - column command: the waiting row hit that can issue earliest (tRCD, tCCD_S/L, read-to-write
   turnaround, tWTR_S/L after write data), oldest first on ties (first-ready, first-come-first-served);
 - precharge readiness after a column command (tRTP after reads, tWR after write data);
 - closed-row policy: a bank with no further waiting hits precharges right after its column command;
 - all-bank refresh every tREFI: precharge all, then tRFC with no commands;
 - command buses (data per technology): an activate and its precharge hold the row command bus for
   `row_command`, a column command the column bus for `column_command`; (pseudo-)channels sharing a
   bus get it in turn, so each is charged `command_bus_shared_by` times those (a time-share: exact at
   saturation, slightly pessimistic when the sibling is idle).
"""

from __future__ import annotations

import numpy as np

from hwsim.memory.jit import njit, prange

# indices into the timing vector (ns); `detailed.KernelTimings` builds it
T_RCD, T_CL, T_CWL, T_RP, T_RAS, T_RC, T_RRD_S, T_RRD_L, T_FAW, T_CCD_S, T_CCD_L, T_WR, T_WTR_S, \
    T_WTR_L, T_RTP, T_REFI, T_RFC, T_BURST, T_RTW, T_ROW_BUS, T_COL_BUS = range(21)
N_TIMINGS = 21
# indices into the per-channel scalar state
C_LAST_ACT, C_LAST_ACT_BG, C_LAST_COL, C_LAST_COL_BG, C_LAST_READ_COL, C_LAST_WRITE_END, \
    C_LAST_WRITE_BG, C_NEXT_REF, C_NOW, C_FAW0, C_FAW1, C_FAW2, C_FAW3, C_FAW_I, C_LAST_DIR = range(15)
# indices into the per-channel counters
N_ACT, N_REF, N_READ, N_WRITE, N_HIT, N_RW_SWITCH, N_WR_SWITCH, N_WASTED = range(8)
N_COUNTS = 8


@njit(cache=True)
def _refresh(u, t, chan, open_row, act_ready, pre_ready, hits, read_hit, write_hit, counts, unused, until):
    """Run every refresh due before `until` on channel u: precharge all (after their tRAS), then tRFC
    with no commands. A row opened for a request whose column command had not issued is a wasted
    activate (counted)."""
    while chan[u, C_NEXT_REF] <= until:
        start = chan[u, C_NEXT_REF]
        any_open = False
        for b in range(open_row.shape[1]):
            if open_row[u, b] >= 0:
                any_open = True
                start = max(start, pre_ready[u, b])
        start = max(start, chan[u, C_LAST_WRITE_END])
        done = start + (t[T_RP] if any_open else 0.0) + t[T_RFC]
        for b in range(open_row.shape[1]):
            if open_row[u, b] >= 0 and unused[u, b]:
                counts[u, N_WASTED] += 1
            unused[u, b] = False
            open_row[u, b] = -1
            hits[b] = 0
            read_hit[b] = -1
            write_hit[b] = -1
            act_ready[u, b] = max(act_ready[u, b], done)
        counts[u, N_REF] += 1
        chan[u, C_NEXT_REF] += t[T_REFI]


@njit(cache=True)
def _next_hit(e, p_next, p_req, row, is_write, open_row, write):
    """The first queue entry from e on (following the bank's list) that hits `open_row` and is a write
    (`write`) or a read; -1 if none."""
    while e >= 0:
        q = p_req[e]
        if row[q] == open_row and is_write[q] == write:
            return e
        e = p_next[e]
    return -1


@njit(cache=True)
def _heap_push(heap, u, size, value):
    i = size
    heap[u, i] = value
    while i > 0:
        parent = (i - 1) // 2
        if heap[u, parent] <= heap[u, i]:
            break
        heap[u, parent], heap[u, i] = heap[u, i], heap[u, parent]
        i = parent


@njit(cache=True)
def _heap_pop(heap, u, size):
    """Remove the smallest of heap[u, :size]; the caller decrements its size."""
    last = size - 1
    heap[u, 0] = heap[u, last]
    i = 0
    while True:
        left, right, small = 2 * i + 1, 2 * i + 2, i
        if left < last and heap[u, left] < heap[u, small]:
            small = left
        if right < last and heap[u, right] < heap[u, small]:
            small = right
        if small == i:
            break
        heap[u, small], heap[u, i] = heap[u, i], heap[u, small]
        i = small


@njit(cache=True)
def run_channels(t, queue_depth, release_at_column, closed_row, banks_per_group, offsets, arrival, bank, row,
                 is_write, chan, open_row, row_ready, act_ready, pre_ready, unused, inflight, n_inflight, counts,
                 completion, was_hit, admitted):
    """Schedule every request of every channel, one channel after the other; fills `completion` (ns)
    and `was_hit` (and `admitted`, the admission times, unless it is empty) in place. Requests of
    channel u are rows offsets[u]:offsets[u+1], in arrival order."""
    for u in range(offsets.shape[0] - 1):
        _run_channel(u, t, queue_depth, release_at_column, closed_row, banks_per_group, offsets, arrival, bank, row,
                     is_write, chan, open_row, row_ready, act_ready, pre_ready, unused, inflight, n_inflight, counts,
                     completion, was_hit, admitted)


@njit(cache=True, parallel=True)
def run_channels_parallel(t, queue_depth, release_at_column, closed_row, banks_per_group, offsets, arrival, bank,
                          row, is_write, chan, open_row, row_ready, act_ready, pre_ready, unused, inflight, n_inflight,
                          counts, completion, was_hit, admitted):
    """`run_channels` with the channels spread over numba's threads: channels share no state, each
    writes only its own rows of the state arrays and its own requests' results, so the results are
    the same as the serial loop's, bit for bit."""
    for u in prange(offsets.shape[0] - 1):
        _run_channel(u, t, queue_depth, release_at_column, closed_row, banks_per_group, offsets, arrival, bank, row,
                     is_write, chan, open_row, row_ready, act_ready, pre_ready, unused, inflight, n_inflight, counts,
                     completion, was_hit, admitted)


@njit(cache=True)
def _run_channel(u, t, queue_depth, release_at_column, closed_row, banks_per_group, offsets, arrival, bank, row,
                 is_write, chan, open_row, row_ready, act_ready, pre_ready, unused, inflight, n_inflight, counts,
                 completion, was_hit, admitted):
    """Schedule channel u's requests. Waiting requests sit in one doubly linked list per bank (oldest
    first), so a decision costs O(banks), not O(queue depth). `inflight[u]` is a min-heap of the
    times at which entries still held free (completions). `release_at_column`: an entry frees when its
    column command issues instead, or, for the request an activate was issued for, at that activate (it
    waits in its bank's slot outside the buffer, at most one per bank, until its column command)."""
    n_banks = open_row.shape[1]
    lo, hi = offsets[u], offsets[u + 1]
    if lo == hi:
        return
    pool = queue_depth + (n_banks if release_at_column else 0)  # activated requests wait outside the buffer
    p_req = np.empty(pool, np.int64)     # pool of queue entries
    p_adm = np.empty(pool, np.float64)
    p_next = np.empty(pool, np.int64)
    p_prev = np.empty(pool, np.int64)
    promoted = np.zeros(pool, np.bool_)  # release_at_column: activated for, waiting in its bank's slot
    n_promoted = 0
    free = np.empty(pool, np.int64)
    head = np.full(n_banks, -1, np.int64)
    tail = np.full(n_banks, -1, np.int64)
    waiting = np.zeros(n_banks, np.int64)
    hits = np.zeros(n_banks, np.int64)          # waiting requests that hit each bank's open row
    read_hit = np.full(n_banks, -1, np.int64)   # each bank's oldest waiting read hit (queue entry; -1 none)
    write_hit = np.full(n_banks, -1, np.int64)  # ... and oldest waiting write hit
    group_of = np.arange(n_banks) // banks_per_group  # bank group of each bank (no division in the loops)
    for j in range(pool):
        free[j] = pool - 1 - j
    n_free = pool
    k = lo
    nwait = 0
    now = chan[u, C_NOW]
    size = n_inflight[u]
    while k < hi or nwait > 0:
        # admission: in order, while an entry is free by `now` (idle channel: jump to the arrival)
        while k < hi and nwait - n_promoted < queue_depth:
            t_adm = arrival[k]
            if nwait - n_promoted + size >= queue_depth:
                t_adm = max(t_adm, inflight[u, 0])
            if nwait == 0 and t_adm > now:
                now = t_adm
            if t_adm > now:
                break
            while size > 0 and inflight[u, 0] <= t_adm:
                _heap_pop(inflight, u, size)
                size -= 1
            n_free -= 1
            e = free[n_free]
            b = bank[k]
            p_req[e] = k
            p_adm[e] = t_adm
            if admitted.shape[0] > 0:
                admitted[k] = t_adm
            p_next[e] = -1
            p_prev[e] = tail[b]
            if tail[b] >= 0:
                p_next[tail[b]] = e
            else:
                head[b] = e
            tail[b] = e
            waiting[b] += 1
            if open_row[u, b] == row[k]:
                hits[b] += 1
                if is_write[k] and write_hit[b] < 0:
                    write_hit[b] = e
                elif not is_write[k] and read_hit[b] < 0:
                    read_hit[b] = e
            nwait += 1
            k += 1
        if nwait == 0:
            continue
        if chan[u, C_NEXT_REF] <= now:
            _refresh(u, t, chan, open_row, act_ready, pre_ready, hits, read_hit, write_hit, counts, unused, now)
        # the earliest activate: over banks with waiting requests but no waiting hit, the oldest
        # request's bank-ready time under tRP, tRAS, tRC, tRRD_S/L and tFAW (oldest on ties)
        best_act = np.inf
        act_bank = -1
        # the channel-wide bounds (tRRD_L/S or the row bus after the last activate, tFAW) once per decision
        last_act_bg = chan[u, C_LAST_ACT_BG]
        after_same = chan[u, C_LAST_ACT] + max(t[T_RRD_L], t[T_ROW_BUS])
        after_other = chan[u, C_LAST_ACT] + max(t[T_RRD_S], t[T_ROW_BUS])
        faw = chan[u, C_FAW0 + int(chan[u, C_FAW_I])] + t[T_FAW]
        for b in range(n_banks):
            if waiting[b] == 0 or hits[b] > 0:
                continue
            e = head[b]
            act = max(now, p_adm[e], act_ready[u, b])
            if open_row[u, b] >= 0:  # precharge from when the request is known and tRAS allows
                act = max(act, max(p_adm[e], pre_ready[u, b]) + t[T_RP])
            act = max(act, after_same if last_act_bg == group_of[b] else after_other)
            act = max(act, faw)
            if act < best_act or (act == best_act and p_req[e] < p_req[head[act_bank]]):
                best_act = act
                act_bank = b
        # the earliest column command: per bank the oldest read hit and oldest write hit are the
        # candidates (kept up to date as requests arrive and leave); the one that can issue first
        # wins, the oldest on ties
        best = -1
        best_col = np.inf
        last_col_bg = chan[u, C_LAST_COL_BG]
        col_same = chan[u, C_LAST_COL] + max(t[T_CCD_L], t[T_COL_BUS])
        col_other = chan[u, C_LAST_COL] + max(t[T_CCD_S], t[T_COL_BUS])
        after_read = chan[u, C_LAST_READ_COL] + t[T_RTW]
        for b in range(n_banks):
            if hits[b] == 0:
                continue
            g = group_of[b]
            base = max(now, row_ready[u, b])
            base = max(base, col_same if last_col_bg == g else col_other)
            e = write_hit[b]
            if e >= 0:
                col = max(base, after_read)
                if col < best_col or (col == best_col and p_req[e] < p_req[best]):
                    best_col = col
                    best = e
            e = read_hit[b]
            if e >= 0:
                wtr = t[T_WTR_L] if chan[u, C_LAST_WRITE_BG] == g else t[T_WTR_S]
                col = max(base, chan[u, C_LAST_WRITE_END] + wtr)
                if col < best_col or (col == best_col and p_req[e] < p_req[best]):
                    best_col = col
                    best = e
        if best < 0 and act_bank < 0:  # cannot happen: a bank with waiting requests has one or the other
            raise RuntimeError("controller found no issuable command")
        # nothing is decided ahead of time: a request admitted before the next command may offer an
        # earlier one (a younger request to an idle bank activates before an older one's tRAS ends)
        next_cmd = min(best_act, best_col)
        if k < hi and nwait - n_promoted < queue_depth:
            t_next = arrival[k]
            if nwait - n_promoted + size >= queue_depth:
                t_next = max(t_next, inflight[u, 0])
            if t_next < next_cmd:
                now = max(now, t_next)
                continue
        if next_cmd >= chan[u, C_NEXT_REF]:  # refresh is due first: no new commands until it is done
            _refresh(u, t, chan, open_row, act_ready, pre_ready, hits, read_hit, write_hit, counts, unused,
                     next_cmd)
            continue
        if best_act < best_col:
            b = act_bank
            act = best_act
            r = p_req[head[b]]
            fi = int(chan[u, C_FAW_I])
            chan[u, C_FAW0 + fi] = act
            chan[u, C_FAW_I] = (fi + 1) % 4
            chan[u, C_LAST_ACT] = act
            chan[u, C_LAST_ACT_BG] = group_of[b]
            open_row[u, b] = row[r]
            row_ready[u, b] = act + t[T_RCD]
            act_ready[u, b] = act + t[T_RC]
            pre_ready[u, b] = act + t[T_RAS]
            unused[u, b] = True
            counts[u, N_ACT] += 1
            was_hit[r] = False
            if release_at_column and not promoted[head[b]]:  # it leaves the buffer now: its entry frees at `act`
                promoted[head[b]] = True
                n_promoted += 1
                _heap_push(inflight, u, size, act)
                size += 1
            n = 0
            read_hit[b] = -1
            write_hit[b] = -1
            e = head[b]
            while e >= 0:
                q = p_req[e]
                if row[q] == row[r]:
                    n += 1
                    if is_write[q] and write_hit[b] < 0:
                        write_hit[b] = e
                    elif not is_write[q] and read_hit[b] < 0:
                        read_hit[b] = e
                e = p_next[e]
            hits[b] = n
            now = act
            continue
        col = best_col
        e = best
        r = p_req[e]
        b = bank[r]
        g = group_of[b]
        if is_write[r]:
            end = col + t[T_CWL] + t[T_BURST]
            pre_ready[u, b] = max(pre_ready[u, b], end + t[T_WR])
            chan[u, C_LAST_WRITE_END] = end
            chan[u, C_LAST_WRITE_BG] = g
            counts[u, N_WRITE] += 1
            if chan[u, C_LAST_DIR] == 0:
                counts[u, N_RW_SWITCH] += 1
            chan[u, C_LAST_DIR] = 1
        else:
            end = col + t[T_CL] + t[T_BURST]
            pre_ready[u, b] = max(pre_ready[u, b], col + t[T_RTP])
            chan[u, C_LAST_READ_COL] = col
            counts[u, N_READ] += 1
            if chan[u, C_LAST_DIR] == 1:
                counts[u, N_WR_SWITCH] += 1
            chan[u, C_LAST_DIR] = 0
        if was_hit[r]:
            counts[u, N_HIT] += 1
        unused[u, b] = False
        chan[u, C_LAST_COL] = col
        chan[u, C_LAST_COL_BG] = g
        completion[r] = end
        if not release_at_column:
            _heap_push(inflight, u, size, end)   # the entry is held until the burst ends
            size += 1
        elif promoted[e]:                         # its entry was freed at its activate
            promoted[e] = False
            n_promoted -= 1
        else:
            _heap_push(inflight, u, size, col)   # the entry frees now
            size += 1
        # the bank's next oldest hit of the same kind: younger than this one, so after it in the list
        if is_write[r]:
            write_hit[b] = _next_hit(p_next[e], p_next, p_req, row, is_write, open_row[u, b], True)
        else:
            read_hit[b] = _next_hit(p_next[e], p_next, p_req, row, is_write, open_row[u, b], False)
        # unlink the entry from its bank's list
        if p_prev[e] >= 0:
            p_next[p_prev[e]] = p_next[e]
        else:
            head[b] = p_next[e]
        if p_next[e] >= 0:
            p_prev[p_next[e]] = p_prev[e]
        else:
            tail[b] = p_prev[e]
        free[n_free] = e
        n_free += 1
        waiting[b] -= 1
        hits[b] -= 1
        if closed_row and hits[b] == 0:  # auto-precharge
            act_ready[u, b] = max(act_ready[u, b], pre_ready[u, b] + t[T_RP])
            open_row[u, b] = -1
        nwait -= 1
        now = col
    chan[u, C_NOW] = now
    n_inflight[u] = size
