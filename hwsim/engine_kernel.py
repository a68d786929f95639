"""The dataflow decode loop of `hwsim.engine` as one compiled recurrence (numba).

With the transaction-level DRAM queue there is a single process and a single FIFO queue, so the simpy
schedule reduces to a sequential recurrence over steps and layers: a clock that advances by waits and
compute times, and a queue with a free-at time, a last direction and a turnaround per direction change.
This function performs exactly the floating-point operations the simpy process performs, in the same
order (a wait is `now + (t - now)`, as simpy's `timeout(t - now)` computes it), so its results are
identical, not merely close; a test compares both on every policy kind. The simpy process stays the
reference and runs the detailed DRAM level; this path serves sweeps, where the event loop cost ~90%.
"""

from __future__ import annotations

import numpy as np

from hwsim.memory.jit import njit

READ, WRITE, NONE = 0, 1, -1


@njit(cache=True)
def _refreshed_end(start_ns, service_ns, interval_ns, refresh_ns):
    """`hwsim.memory.transaction.refreshed_end`, the same operations in the same order (a copy: numba
    must not load when hwsim.memory.transaction is imported, before the cache directory is set)."""
    if refresh_ns <= 0.0 or not interval_ns < np.inf:
        return start_ns, start_ns + service_ns
    k = start_ns // interval_ns
    if k >= 1.0 and start_ns < k * interval_ns + refresh_ns:
        start_ns = k * interval_ns + refresh_ns
    end = start_ns + service_ns
    due = (k + 1.0) * interval_ns
    while due < end:
        end += refresh_ns
        due += interval_ns
    return start_ns, end


@njit(cache=True)
def _transfer(state, nbytes, service_ns, direction, latency_ns, w2r_ns, r2w_ns):
    """DramQueue.transfer on a state vector [now, free_at, last_dir, read_bytes, write_bytes, busy,
    refresh interval, refresh time]."""
    if nbytes <= 0.0:
        return state[0]
    start = max(state[0], state[1])
    last = state[2]
    if last == WRITE and direction == READ:
        start += w2r_ns
    elif last == READ and direction == WRITE:
        start += r2w_ns
    else:
        start += 0.0
    start, end = _refreshed_end(start, service_ns, state[6], state[7])
    state[1] = end
    state[2] = direction
    state[3 + direction] += nbytes
    state[5] += end - start
    return state[1] + (latency_ns if direction == READ else 0.0)


@njit(cache=True)
def _wait(state, t_ns):
    if t_ns > state[0]:
        state[0] = state[0] + (t_ns - state[0])


@njit(cache=True)
def decode_steps(state, read_b, read_ns, write_b, write_ns, compute_ns, lm_b, lm_ns, lm_compute,
                 deferred_read_b, deferred_read_ns, deferred_write_b, deferred_write_ns, passes,
                 replay_read_b, replay_read_ns, replay_write_b, replay_write_ns, replay_compute_ns,
                 gate_on_current, latency_ns, w2r_ns, r2w_ns, starts, ends):
    """One chunk of decode steps; `state` carries the clock and the queue between chunks."""
    steps, layers = read_b.shape
    ready = _transfer(state, read_b[0, 0], read_ns[0, 0], READ, latency_ns, w2r_ns, r2w_ns)
    for t in range(steps):
        starts[t] = state[0]
        for layer in range(layers):
            _wait(state, ready)
            if layer + 1 < layers:
                ready = _transfer(state, read_b[t, layer + 1], read_ns[t, layer + 1], READ, latency_ns,
                                  w2r_ns, r2w_ns)
            else:
                ready = _transfer(state, lm_b[t], lm_ns[t], READ, latency_ns, w2r_ns, r2w_ns)
            state[0] = state[0] + compute_ns[t, layer]
            _transfer(state, write_b[t, layer], write_ns[t, layer], WRITE, latency_ns, w2r_ns, r2w_ns)
        _wait(state, ready)
        simple = (not gate_on_current) and passes[t] == 0
        if simple and t + 1 < steps:
            ready = _transfer(state, read_b[t + 1, 0], read_ns[t + 1, 0], READ, latency_ns, w2r_ns, r2w_ns)
        state[0] = state[0] + lm_compute[t]
        if gate_on_current:
            spilled = _transfer(state, deferred_read_b[t], deferred_read_ns[t], READ, latency_ns, w2r_ns, r2w_ns)
            _wait(state, spilled)
            _transfer(state, deferred_write_b[t], deferred_write_ns[t], WRITE, latency_ns, w2r_ns, r2w_ns)
        for _ in range(passes[t]):
            rb, rns = replay_read_b[t], replay_read_ns[t]
            first = _transfer(state, rb, rns, READ, latency_ns, w2r_ns, r2w_ns)
            pass_ready = first
            for layer in range(layers):
                _wait(state, pass_ready)
                if layer + 1 < layers:
                    pass_ready = _transfer(state, rb, rns, READ, latency_ns, w2r_ns, r2w_ns)
                else:
                    pass_ready = state[0]
                state[0] = state[0] + replay_compute_ns[t]
                _transfer(state, replay_write_b[t], replay_write_ns[t], WRITE, latency_ns, w2r_ns, r2w_ns)
        if (not simple) and t + 1 < steps:
            ready = _transfer(state, read_b[t + 1, 0], read_ns[t + 1, 0], READ, latency_ns, w2r_ns, r2w_ns)
        ends[t] = state[0]


def run_compiled(queue, traffic, gate_on_current: bool) -> tuple[np.ndarray, np.ndarray]:
    """Run one chunk on `queue` (a `DramQueue` whose clock is `queue.now_ns`); returns step starts/ends."""
    state = np.array([queue.now_ns, queue.free_at_ns,
                      {"read": READ, "write": WRITE}.get(queue.last_direction, NONE),
                      queue.served_bytes["read"], queue.served_bytes["write"], queue.busy_ns,
                      queue.refresh_interval_ns, queue.refresh_ns])
    starts, ends = np.zeros(traffic.steps), np.zeros(traffic.steps)
    f64 = np.float64
    decode_steps(state, traffic.layer_read_bytes.astype(f64), traffic.layer_read_ns.astype(f64),
                 traffic.layer_write_bytes.astype(f64), traffic.layer_write_ns.astype(f64),
                 traffic.layer_compute_ns.astype(f64), traffic.lm_read_bytes.astype(f64),
                 traffic.lm_read_ns.astype(f64), traffic.lm_compute_ns.astype(f64),
                 traffic.deferred_read_bytes.astype(f64), traffic.deferred_read_ns.astype(f64),
                 traffic.deferred_write_bytes.astype(f64), traffic.deferred_write_ns.astype(f64),
                 traffic.replay_passes.astype(np.int64), traffic.replay_layer_read_bytes.astype(f64),
                 traffic.replay_layer_read_ns.astype(f64), traffic.replay_layer_write_bytes.astype(f64),
                 traffic.replay_layer_write_ns.astype(f64), traffic.replay_layer_compute_ns.astype(f64),
                 bool(gate_on_current), float(queue.latency_ns),
                 float(queue.turnaround_ns[("write", "read")]), float(queue.turnaround_ns[("read", "write")]),
                 starts, ends)
    queue.now_ns, queue.free_at_ns = float(state[0]), float(state[1])
    queue.last_direction = {READ: "read", WRITE: "write"}.get(int(state[2]), "")
    queue.served_bytes = {"read": float(state[3]), "write": float(state[4])}
    queue.busy_ns = float(state[5])
    return starts, ends
