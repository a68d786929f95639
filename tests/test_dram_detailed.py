"""The request-level DRAM model against closed forms (deviations printed, as Ramulator 2's tests do)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import DramPreset, load_preset
from hwsim.config.hardware import DramMemory
from hwsim.errors import HwsimInputError
from hwsim.memory import detailed
from hwsim.memory.detailed import DetailedDram
from hwsim.memory.mapping import AddressMapping, locate_one, parse_mapping

PRESETS = ("hbm2", "hbm2e", "hbm3-6400", "hbm3e", "lpddr5x-8533")


def dram(name: str) -> DramMemory:
    return DramMemory(preset=load_preset("dram", name, DramPreset), source="test")


def burst_ns(d: DramMemory) -> float:
    return d.preset.organisation.burst_length / d.pin_rate_Gbps


@pytest.mark.closed_form
@pytest.mark.parametrize("name", PRESETS)
def test_unloaded_latency_is_the_sum_of_timings(name):
    d = dram(name)
    t, b = d.preset.timings_ns, burst_ns(d)
    model = DetailedDram(d)
    m = model.mapping
    closed = model.submit([m.encode(Ch=3, Bg=1, Ba=2, Ro=5, Co=0)], False, 100.0)[0] - 100.0
    hit = model.submit([m.encode(Ch=3, Bg=1, Ba=2, Ro=5, Co=1)], False, 500.0)[0] - 500.0
    conflict = model.submit([m.encode(Ch=3, Bg=1, Ba=2, Ro=9, Co=0)], False, 1000.0)[0] - 1000.0
    expected = {"hit": t.tCL + b, "closed": t.tRCD + t.tCL + b, "conflict": t.tRP + t.tRCD + t.tCL + b}
    got = {"hit": hit, "closed": closed, "conflict": conflict}
    for key, closed_form_ns in expected.items():
        print(f"{name} {key}: {got[key]:.2f} ns vs closed form {closed_form_ns:.2f} "
              f"({100 * (got[key] / closed_form_ns - 1):+.2f}%)")
        assert got[key] == pytest.approx(closed_form_ns, rel=1e-9)


def sequential(d: DramMemory, queue_depth: int, nbytes: int = 16 * 2**20) -> float:
    access = d.preset.organisation.access_bytes
    model = DetailedDram(d, queue_depth=queue_depth)
    model.submit(np.arange(nbytes // access, dtype=np.int64) * access, False, 0.0)
    return model.stats().efficiency


@pytest.mark.closed_form
@pytest.mark.parametrize("name", ["hbm3-6400", "hbm2"])
def test_sequential_reads_reach_the_refresh_limited_ceiling(name):
    d = dram(name)
    t = d.preset.timings_ns
    ceiling = 1 - t.tRFC / t.tREFI
    got = sequential(d, 128)
    print(f"{name}: sequential q=128 {got:.4f} of peak vs ceiling {ceiling:.4f} ({100 * (got / ceiling - 1):+.2f}%)")
    assert got <= ceiling + 0.005
    assert got == pytest.approx(ceiling, rel=0.03)


@pytest.mark.parametrize("name", ["hbm3-6400", "hbm3e"])
def test_shallow_queues_fall_well_below_the_ceiling(name):
    d = dram(name)
    deep, shallow = sequential(d, 128, 4 * 2**20), sequential(d, 32, 4 * 2**20)
    print(f"{name}: sequential q=128 {deep:.3f}, q=32 {shallow:.3f} of peak (REFERENCE: 42-68% at 32)")
    assert 0.42 <= shallow <= 0.70
    assert shallow < 0.8 * deep


@pytest.mark.closed_form
@pytest.mark.parametrize("name", PRESETS)
def test_random_small_reads_are_bounded_by_four_activates_per_tfaw(name):
    d = dram(name)
    access = d.preset.organisation.access_bytes
    bound = 4 * access / d.preset.timings_ns.tFAW / d.channel_bandwidth_GBps
    model = DetailedDram(d)
    rng = np.random.default_rng(1)
    model.submit(rng.integers(0, d.capacity_bytes // access, 200_000) * access, False, 0.0)
    st = model.stats()
    print(f"{name}: random {access} B reads {st.efficiency:.3f} of peak, tFAW bound {bound:.3f} "
          f"({100 * (st.efficiency / bound - 1):+.1f}%), row hits {st.row_hit_rate:.3f}")
    assert st.efficiency <= bound * 1.001
    assert st.efficiency >= 0.75 * bound


@pytest.mark.parametrize("name", ["hbm3-6400", "hbm2"])
def test_read_write_mix_pays_the_turnaround(name):
    d = dram(name)
    t, b = d.preset.timings_ns, burst_ns(d)
    access = d.preset.organisation.access_bytes
    n = 2 * 2**20 // access
    address = np.arange(n, dtype=np.int64) * access
    pure = DetailedDram(d)
    pure.submit(address, False, 0.0)
    mixed = DetailedDram(d)
    writes = (np.arange(n) // 4) % 2 == 1         # reads and writes alternate within each channel
    mixed.submit(address, writes, 0.0)
    p, m = pure.stats(), mixed.stats()
    # closed form: each switch costs its turnaround beyond one column slot, spread over the channels
    tccd = max(t.tCCD_S, b)
    rtw = max(t.tCL + b + 2 * t.tCK - t.tCWL, b) - tccd
    wtr = t.tCWL + b + t.tWTR_S - tccd
    penalty = (m.read_to_write_switches * rtw + m.write_to_read_switches * wtr) / d.total_channels
    predicted = p.elapsed_ns + penalty
    print(f"{name}: pure read {p.bandwidth_GBps:.1f} GB/s, mixed {m.bandwidth_GBps:.1f} GB/s; "
          f"{m.read_to_write_switches + m.write_to_read_switches} switches; mixed time {m.elapsed_ns:.0f} ns "
          f"vs closed form {predicted:.0f} ({100 * (m.elapsed_ns / predicted - 1):+.1f}%)")
    assert m.bandwidth_GBps < p.bandwidth_GBps
    assert m.elapsed_ns == pytest.approx(predicted, rel=0.10)


def test_queue_depth_bounds_what_is_in_flight():
    d = dram("hbm3-6400")
    eff = {q: sequential(d, q, 2 * 2**20) for q in (8, 32, 128)}
    print("hbm3-6400 sequential efficiency by queue depth:", eff)
    assert eff[8] < eff[32] < eff[128]


def test_energy_is_counts_times_the_table():
    d = dram("hbm3-6400")
    e = d.preset.energy
    model = DetailedDram(d)
    rng = np.random.default_rng(2)
    model.submit(rng.integers(0, 2**24, 5000) * 32, rng.random(5000) < 0.3, 0.0)
    st = model.stats()
    assert st.energy_pJ["read"] == pytest.approx(st.reads * 256 * e.read_pJ_per_bit)
    assert st.energy_pJ["write"] == pytest.approx(st.writes * 256 * e.write_pJ_per_bit)
    assert st.energy_pJ["activate"] == pytest.approx(st.activates * e.activate_pJ)
    assert st.energy_pJ["refresh"] == pytest.approx(st.refreshes * e.refresh_pJ)
    assert st.energy_pJ["total"] == pytest.approx(sum(st.energy_pJ[k] for k in ("read", "write", "activate")))


def test_closed_row_policy_turns_hits_into_closed_accesses():
    d = dram("hbm3-6400")
    t, b = d.preset.timings_ns, burst_ns(d)
    model = DetailedDram(d, closed_row=True)
    m = model.mapping
    model.submit([m.encode(Ch=0, Ro=1)], False, 0.0)
    again = model.submit([m.encode(Ch=0, Ro=1, Co=1)], False, 500.0)[0] - 500.0
    assert again == pytest.approx(t.tRCD + t.tCL + b)


def test_mapping_strings_are_validated():
    assert parse_mapping("RoBaBgCoCh") == ("Ro", "Ba", "Bg", "Co", "Ch")
    with pytest.raises(HwsimInputError, match="unknown field.*Xx.*allowed: Ro, Ra, Bg, Ba, Co, Ch"):
        parse_mapping("RoXxBgCoCh")
    with pytest.raises(HwsimInputError, match="missing Ba"):
        parse_mapping("RoBgCoCh")
    with pytest.raises(HwsimInputError, match="repeated Co"):
        parse_mapping("RoBaBgCoCoCh")


@pytest.mark.parametrize("text", ["RoBaBgCoCh", "ChRaBaBgRoCo", "RoCoBaBgCh"])
def test_mapping_round_trips(text):
    m = AddressMapping.build(text, channels=160, bank_groups=4, banks_per_group=4, row_bytes=1024,
                             access_bytes=32, interleave_bytes=256, capacity_bytes=5 * 2**34)
    digits = {"Ch": 131, "Bg": 2, "Ba": 3, "Ro": 77, "Co": 29}
    ch, bank, bg, row = m.locate(np.array([m.encode(**digits)]))
    assert (ch[0], bank[0], bg[0], row[0]) == (131, 2 * 4 + 3, 2, 77)


@settings(max_examples=60, deadline=None)
@given(order=st.sampled_from(["RoBaBgCoCh", "ChRaBaBgRoCo", "RoCoBaBgCh"]), channels=st.integers(1, 40),
       banks=st.integers(1, 6), addresses=st.lists(st.integers(-2**40, 2**40), min_size=1, max_size=50))
def test_decode_is_floor_digits_of_the_address(order, channels, banks, addresses):
    """decode's mask/shift fast path (power-of-two sizes) and in-place digits equal plain floor
    division and modulo, field by field, for any sizes and any int64 (negative ones wrap alike)."""
    m = AddressMapping.build(order, channels=channels, bank_groups=4, banks_per_group=banks, row_bytes=1024,
                             access_bytes=32, interleave_bytes=256, capacity_bytes=3 * 2**30)
    a = np.array(addresses, dtype=np.int64)
    got = m.decode(a)
    rest = a // m.access_bytes
    low, rest = rest % m.block_accesses, rest // m.block_accesses
    for name in reversed(m.order):
        expected, rest = rest % m.sizes[name], rest // m.sizes[name]
        if name == "Co":
            expected = expected * m.block_accesses + low
        assert np.array_equal(got[name], expected), name
    _, bank, _, row = m.locate(a)
    assert np.array_equal(bank, got["Bg"] * banks + got["Ba"]) and np.array_equal(row, got["Ro"])


@settings(max_examples=40, deadline=None)
@given(order=st.sampled_from(["RoBaBgCoCh", "ChRaBaBgRoCo", "RoCoBaBgCh"]), channels=st.integers(1, 40),
       banks=st.integers(1, 6), addresses=st.lists(st.integers(0, 2**40), min_size=1, max_size=50))
def test_the_compiled_decoder_equals_locate(order, channels, banks, addresses):
    """`locate_one` (what the controller's input layout decodes with) gives `locate`'s channel, bank
    and row for every address, power-of-two sizes or not."""
    m = AddressMapping.build(order, channels=channels, bank_groups=4, banks_per_group=banks, row_bytes=1024,
                             access_bytes=32, interleave_bytes=256, capacity_bytes=3 * 2**30)
    a = np.array(addresses, dtype=np.int64)
    ch, bank, _, row = m.locate(a)
    sizes, shifts, where = m.digit_table()
    got = np.array([locate_one(int(x), sizes, shifts, where, banks) for x in a]).reshape(-1, 3)
    assert np.array_equal(got[:, 0], ch) and np.array_equal(got[:, 1], bank) and np.array_equal(got[:, 2], row)


def _traffic(seed: int, n: int, d: DramMemory):
    rng = np.random.default_rng(seed)
    access = d.preset.organisation.access_bytes
    address = np.where(rng.random(n) < 0.5, np.arange(n) * access,
                       rng.integers(0, d.capacity_bytes // access, n) * access)
    return address, rng.random(n) < 0.3, np.cumsum(rng.exponential(0.4, n))


def test_a_queue_entry_freed_at_the_column_command_hand_computed():
    # hbm2, one queue entry, three reads of one row (tRCD 14, tCL 14, burst 2, tCCD_L 2 ns).
    # Held to completion: each waits for the previous burst's end: 30, 46, 62 ns.
    # Freed at the column command (Ramulator 2's read buffer): the first request leaves the buffer for its
    # bank's slot when its activate issues (t = 0), so the second enters at 0; its column command follows
    # the first's (14) by tCCD_L (16, done 32); the third enters at 16 and reads at 18 (done 34)
    d = DramMemory(preset=load_preset("dram", "hbm2", DramPreset), stacks=1, source="test")
    address = np.array([0, 32, 64])
    held = DetailedDram(d, queue_depth=1, refresh=False).submit(address, False, 0.0)
    freed = DetailedDram(d, queue_depth=1, refresh=False, queue_release="column").submit(address, False, 0.0)
    assert held.tolist() == [30.0, 46.0, 62.0] and freed.tolist() == [30.0, 32.0, 34.0]
    admitted = np.empty(3)
    DetailedDram(d, queue_depth=1, refresh=False).submit(address, False, 0.0, admission_ns=admitted)
    assert admitted.tolist() == [0.0, 30.0, 46.0]   # each when the previous burst ended
    DetailedDram(d, queue_depth=1, refresh=False, queue_release="column").submit(address, False, 0.0,
                                                                                 admission_ns=admitted)
    assert admitted.tolist() == [0.0, 0.0, 16.0]
    with pytest.raises(ValueError, match="queue_release"):
        DetailedDram(d, queue_release="issue")


@pytest.mark.parametrize("name, stacks, closed, release", [("hbm2", 1, False, "completion"),
                                                           ("hbm3-6400", 2, True, "completion"),
                                                           ("lpddr5-6400", 3, False, "completion"),
                                                           ("hbm2", 2, False, "column")])
def test_channels_in_parallel_give_the_serial_results_bit_for_bit(name, stacks, closed, release, monkeypatch):
    """Channels share no state, so spreading them over threads changes nothing: completions, every
    counter and the latency statistics equal the serial loop's, over two calls (state carried). The
    layout by channel is made in pieces on the threads too (at any size here)."""
    monkeypatch.setattr(detailed, "PARALLEL_LAYOUT_REQUESTS", 1)
    d = DramMemory(preset=load_preset("dram", name, DramPreset), stacks=stacks, source="test")
    address, writes, arrival = _traffic(7, 30_000, d)
    runs = []
    for parallel in (False, True):
        model = DetailedDram(d, queue_depth=48, closed_row=closed, parallel=parallel, queue_release=release)
        first = model.submit(address[:20_000], writes[:20_000], arrival[:20_000])
        second = model.submit(address[20_000:], writes[20_000:], arrival[20_000:] + 5.0)
        runs.append((np.concatenate([first, second]), model.counts.copy(), model.stats()))
    (serial, serial_counts, a), (threaded, threaded_counts, b) = runs
    assert np.array_equal(serial, threaded) and np.array_equal(serial_counts, threaded_counts)
    assert a.activates == b.activates > 0 and a.last_completion_ns == b.last_completion_ns
    assert np.array_equal(a.latency_ns, b.latency_ns)


def test_a_replay_without_completions_reports_the_same_statistics():
    """`completion=False` (trace replay) keeps latencies in the channel layout's order: the same
    distribution, mean and counters as a replay that returns completions in input order."""
    d = dram("hbm2")
    address, writes, arrival = _traffic(3, 20_000, d)
    full, lean = DetailedDram(d), DetailedDram(d)
    done = full.submit(address, writes, arrival)
    assert lean.submit(address, writes, arrival, completion=False) is None
    a, b = full.stats(), lean.stats()
    assert np.array_equal(np.sort(a.latency_ns), np.sort(b.latency_ns))
    assert np.array_equal(a.latency_ns, done - arrival)
    assert a.latency_percentiles_ns() == b.latency_percentiles_ns()
    assert (a.activates, a.row_hits, a.refreshes, a.last_completion_ns) == \
        (b.activates, b.row_hits, b.refreshes, b.last_completion_ns)


def test_requests_out_of_arrival_order_are_served_as_if_sorted():
    """The layout keeps input order within a channel, so unsorted arrivals are put in order first:
    the same completions (mapped back to the input's order) as submitting them sorted."""
    d = dram("hbm2")
    address, writes, arrival = _traffic(5, 5_000, d)
    shuffle = np.random.default_rng(1).permutation(address.shape[0])
    done = DetailedDram(d).submit(address[shuffle], writes[shuffle], arrival[shuffle])
    expected = DetailedDram(d).submit(address, writes, arrival)
    assert np.array_equal(done, expected[shuffle])


@pytest.mark.closed_form
def test_a_younger_request_to_an_idle_bank_is_not_held_behind_an_older_ones_precharge():
    # bank 0 row 0 at 0 ns, bank 0 row 1 at 1 ns (a conflict: waits for tRAS), bank group 1 at 2 ns.
    # The third activates at once (tRRD_S after the first): tRRD_S + tRCD + tCL + burst after 0 ns
    # (DRAMsim3: 35 ns), not after the second request's precharge (82 ns before the fix).
    d = dram("hbm2")
    t, b = d.preset.timings_ns, burst_ns(d)
    model = DetailedDram(d)
    m = model.mapping
    done = model.submit([m.encode(Bg=0, Ba=0, Ro=0), m.encode(Bg=0, Ba=0, Ro=1), m.encode(Bg=1, Ba=0, Ro=0)],
                        False, np.array([0.0, 1.0, 2.0]))
    expected = t.tRRD_S + t.tRCD + t.tCL + b
    print(f"third request done at {done[2]:.1f} ns, closed form {expected:.1f} ns (DRAMsim3 35)")
    assert done[2] == pytest.approx(expected)
    assert done[1] == pytest.approx(t.tRAS + t.tRP + t.tRCD + t.tCL + b)


def test_refresh_wastes_few_activates():
    # random reads at half load: rows refresh closes before their column command (DRAMsim3 about 1.5 per
    # refresh; the old ahead-of-time activates wasted about 12.7)
    d = dram("hbm2")
    rng = np.random.default_rng(0)
    address = rng.integers(0, 2**30 // 64, 100_000) * 64
    model = DetailedDram(d)
    model.submit(address, False, np.arange(address.size) * 0.6)
    st = model.stats()
    per_refresh = st.wasted_activates / st.refreshes
    print(f"hbm2 random at ~half load: {per_refresh:.2f} wasted activates per refresh")
    assert per_refresh < 3


@pytest.mark.closed_form
def test_a_shared_row_command_bus_bounds_random_reads():
    # hbm2e with a row command slot long enough to bind (Ramulator 2 charges ACT/PRE on a row bus the two
    # pseudo-channels share): random reads then reach at most one access per 2 x row_command per unit
    base = dram("hbm2e")
    p = base.preset
    slow = p.model_copy(update={"timings_ns": p.timings_ns.model_copy(update={"row_command": 6.0})})
    d = base.model_copy(update={"preset": slow})
    access = p.organisation.access_bytes
    bound = access / (p.organisation.command_bus_shared_by * 6.0) * d.total_channels
    rng = np.random.default_rng(3)
    model = DetailedDram(d)
    model.submit(rng.integers(0, 2**32 // access, 200_000) * access, False, 0.0)
    got = model.stats().bandwidth_GBps
    print(f"hbm2e, row bus 6 ns shared by 2: random {got:.1f} GB/s vs bus bound {bound:.1f} ({100 * (got / bound - 1):+.1f}%)")
    assert 0.85 * bound < got <= bound * 1.001


@pytest.mark.slow
def test_detailed_fidelity_reports_the_detailed_models_own_counts():
    """run.fidelity: detailed: activates, row hits, refreshes and refresh energy come from the
    request-level model (the fast level's closed-form activate count is replaced)."""
    from hwsim.config import load_experiment
    from hwsim.runner import run_experiment

    overrides = ["model=mamba-130m", "workload.batch_size=2", "workload.steps=2", "run.baseline=false"]
    fast = run_experiment(load_experiment(overrides=overrides)).summary
    detailed = run_experiment(load_experiment(overrides=[*overrides, "run.fidelity=detailed"])).summary
    assert "dram_row_hit_rate" not in fast and 0.0 < detailed["dram_row_hit_rate"] <= 1.0
    assert detailed["dram_refreshes"] > 0 and detailed["energy_pJ_per_token_dram_refresh"] > 0
    assert detailed["dram_activates_per_token"] != fast["dram_activates_per_token"]
    parts = [k for k in detailed if k.startswith("energy_pJ_per_token_") and k != "energy_pJ_per_token_total"]
    assert sum(detailed[k] for k in parts) == pytest.approx(detailed["energy_pJ_per_token_total"], rel=1e-9)
