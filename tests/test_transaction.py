"""The transaction-level DRAM model against closed forms (deviations printed, as Ramulator 2 does)."""

from __future__ import annotations

import pytest
from helpers import DEFAULT_TIER_DRAM, calibrated_tier_dram, every_dram_preset_tiered
from hypothesis import example, given
from hypothesis import strategies as st

from hwsim.config import DramPreset, Hardware, load_preset
from hwsim.config.hardware import DramMemory
from hwsim.config.loading import known_presets
from hwsim.memory.calibration import calibrated as calibrate_dram
from hwsim.memory.transaction import DramTiming, refreshed_end


def timing(preset: str, stacks: int = 1, calibrated: bool = True) -> DramTiming:
    if calibrated and stacks == 1:
        return DramTiming.from_config(calibrated_tier_dram(preset))
    dram = DramMemory(preset=load_preset("dram", preset, DramPreset), stacks=stacks, source="test")
    return DramTiming.from_config(calibrate_dram(dram) if calibrated else dram, calibrated=calibrated)


def efficiency(dram: DramTiming, nbytes: float, run_bytes: float, pattern: str = "strided") -> float:
    """Achieved share of peak bandwidth for a transfer."""
    return float(nbytes / dram.peak_bytes_per_ns / dram.service_ns(nbytes, run_bytes, pattern))


@pytest.mark.closed_form
@pytest.mark.parametrize("preset", known_presets("dram"))
def test_streaming_reaches_the_refresh_limited_ceiling(preset):
    t = load_preset("dram", preset, DramPreset).timings_ns
    expected = 1 - t.tRFC / t.tREFI
    got = efficiency(timing(preset, calibrated=False), 256 * 2**20, 256 * 2**20)
    print(f"{preset}: streaming {got:.4f} of peak vs closed form {expected:.4f} ({100 * (got / expected - 1):+.2f}%)")
    assert got == pytest.approx(expected, rel=0.01)
    assert 0.85 < got < 0.95  # REFERENCE.md: about 90% of peak for purely sequential reads


@pytest.mark.closed_form
@pytest.mark.parametrize("preset", every_dram_preset_tiered())
def test_calibrated_streaming_reaches_the_refresh_limited_ceiling(preset):
    t = load_preset("dram", preset, DramPreset).timings_ns
    expected = 1 - t.tRFC / t.tREFI
    calibrated = efficiency(timing(preset), 256 * 2**20, 256 * 2**20)  # detailed model's figure
    print(f"{preset}: calibrated streaming {calibrated:.4f} of peak vs closed form {expected:.4f}")
    # GDDR6/6X: the detailed model loses 2.4-3% more to row switches on a 16-bit channel with 2 KB rows
    assert calibrated == pytest.approx(expected, rel=0.03 if preset.startswith("gddr") else 0.02)


@pytest.mark.closed_form
@pytest.mark.parametrize("preset", every_dram_preset_tiered())
def test_random_small_reads_are_bounded_by_four_activates_per_tfaw(preset):
    p = load_preset("dram", preset, DramPreset)
    dram = timing(preset)
    access = p.organisation.access_bytes
    ceiling = 4 * access / p.timings_ns.tFAW / dram.channel_bytes_per_ns
    got = efficiency(dram, access * 100_000, access, "random")
    print(f"{preset}: random {access} B reads {got:.3f} of peak, tFAW ceiling {ceiling:.3f}")
    assert got <= ceiling + 1e-9
    assert got < 0.5


@pytest.mark.closed_form
def test_golden_hbm2_64kib_transfer_by_hand():
    # HBM2 (DRAMsim3): 8 channels x 32 GB/s, 256 B interleave -> 8 KiB per channel -> 256 ns of bus time.
    # 32 rows of 2 KiB, 4 per channel, at most one per max(tFAW/4, tRRD_S, tRC/16) = 7.5 ns: 30 ns < 256.
    # Refresh: 256 / (1 - 260/3900) = 274.2857 ns.
    # (the bare closed form; the calibrated model scales it by the configuration's calibration)
    bare = timing("hbm2", calibrated=False)
    assert bare.service_ns(65536, 65536) == pytest.approx(256 / (1 - 260 / 3900), rel=1e-9)
    assert bare.activates(65536, 65536) == 32


@given(st.sampled_from(known_presets("dram")), st.sampled_from(DEFAULT_TIER_DRAM), st.integers(1, 2**26),
       st.integers(1, 2**26), st.sampled_from([32, 64, 4096, 2**20]))
def test_service_time_is_monotone_and_never_beats_peak(preset, calibrated_preset, a, b, run):
    # the closed form on every preset; calibrated on the default tier's (the slow tier checks the rest)
    bare, dram = timing(preset, calibrated=False), timing(calibrated_preset)
    small, large = sorted((a, b))
    assert bare.service_ns(small, run) <= bare.service_ns(large, run) + 1e-9
    assert bare.service_ns(large, run) >= large / bare.peak_bytes_per_ns - 1e-9
    # calibrated: one sequential run is monotone in its size; the first access is in the read latency
    assert dram.service_ns(small, small) <= dram.service_ns(large, large) + 1e-9
    assert dram.read_latency_ns + dram.service_ns(large, run) >= large / dram.peak_bytes_per_ns - 1e-9


def test_more_stacks_scale_bandwidth():
    hw = load_preset("hardware", "hbm3-accel", Hardware)
    assert hw.dram.peak_bandwidth_GBps == pytest.approx(5 * 1024 * 5.23 / 8)


def test_refresh_on_the_clock_by_hand():
    # tREFI 100 ns, a refresh costs 10 ns: a 30 ns transfer from 50 ns meets none
    assert refreshed_end(50.0, 30.0, 100.0, 10.0) == (50.0, 80.0)
    # from 80 ns it meets the one at 100 ns: 40 ns of channel time ends at 130
    assert refreshed_end(80.0, 40.0, 100.0, 10.0) == (80.0, 130.0)
    # a start inside a refresh (103 ns) waits for its end at 110
    assert refreshed_end(103.0, 5.0, 100.0, 10.0) == (110.0, 115.0)
    # before the first tREFI nothing refreshes; 250 ns from 0 meets 100 and 200 (the second pushed to 210)
    assert refreshed_end(0.0, 250.0, 100.0, 10.0) == (0.0, 270.0)
    # no refresh (uncalibrated SRAM-only hardware, or refresh off)
    assert refreshed_end(80.0, 40.0, float("inf"), 0.0) == (80.0, 120.0)


@given(st.floats(0.0, 1e6), st.floats(0.0, 1e5), st.floats(10.0, 1e4), st.floats(0.0, 0.5))
@example(start=1.0, service=32767.892464085973, interval=10.0, share=5e-324)  # a subnormal refresh (CI found)
def test_refresh_on_the_clock_costs_its_share(start, service, interval, share):
    # every refresh that lands inside costs exactly its time; over a long transfer the channels give
    # (1 - share) of their time to data, within one refresh either side
    refresh = share * interval
    begin, end = refreshed_end(start, service, interval, refresh)
    slack = 1e-6 * max(end, 1.0)
    assert begin >= start and end - begin >= service - slack
    if refresh > slack:  # a refresh shorter than the tolerance: any count of them is within it
        met = (end - begin - service) / refresh
        assert abs(met - round(met)) * refresh < slack
    assert end - begin <= service / (1 - share) + 2 * refresh + slack
    assert end - begin >= service / (1 - share) - 2 * refresh - slack


def test_refresh_time_of_a_stream_is_the_calibrated_stretch():
    # the queue's refreshes and the average stretch charge a long stream the same
    dram = calibrated_tier_dram("hbm3-6400")
    fast = DramTiming.from_config(dram)
    nbytes = 2e9   # ~170 refreshes: the first tREFI, which has none, is within 0.1%
    bare = float(fast.service_ns(nbytes, nbytes, refresh=False))
    begin, end = refreshed_end(0.0, bare, fast.refresh_interval_ns, fast.refresh_ns)
    assert (end - begin) == pytest.approx(float(fast.service_ns(nbytes, nbytes)), rel=2e-3)
