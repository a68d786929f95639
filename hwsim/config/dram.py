"""A DRAM technology as data (organisation, timings in ns, energy), in the style of Ramulator 2 presets."""

from __future__ import annotations

import itertools

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from hwsim.records import Frozen

#: Largest controller queue (entries per channel) a configuration may ask for: real controllers hold tens
#: to a few hundred (estimate; DRAMsim3's stock configs queue 32 transactions, hwsim's presets 64-128).
#: The detailed level keeps a completion time per entry per channel and calibration replica, so a depth of
#: millions would ask for tens of GB: beyond this bound it is a typo, not a design.
MAX_QUEUE_DEPTH = 4096
#: when a detailed-level request gives its queue entry back (`DetailedDram(queue_release=...)`)
QUEUE_RELEASES = ("completion", "column")
#: a calibration's key: the sha256 of its inputs
CALIBRATION_KEY_PATTERN = "^[0-9a-f]{64}$"

class DramOrganisation(Frozen):
    channels: PositiveInt
    pseudo_channels_per_channel: PositiveInt = 1
    channel_width_bits: PositiveInt = Field(description="data width of one (pseudo-)channel")
    data_rate_Gbps_per_pin: PositiveFloat
    burst_length: PositiveInt
    access_bytes: PositiveInt = Field(description="bytes moved by one column access (one burst)")
    row_bytes: PositiveInt = Field(description="row buffer size of one (pseudo-)channel")
    bank_groups: PositiveInt
    banks_per_group: PositiveInt
    capacity_bytes: PositiveInt = Field(description="capacity of one stack / package set")
    declared_peak_bandwidth_GBps: PositiveFloat
    command_bus_shared_by: PositiveInt = Field(
        1, description="(pseudo-)channels sharing one row/column command bus (HBM pseudo-channel modes: 2)")

    @property
    def independent_channels(self) -> int:
        """Independent (pseudo-)channels per stack: the unit of parallelism the interleave spreads over."""
        return self.channels * self.pseudo_channels_per_channel

    @property
    def channel_bandwidth_GBps(self) -> float:
        return self.channel_width_bits * self.data_rate_Gbps_per_pin / 8.0

    @property
    def peak_bandwidth_GBps(self) -> float:
        return self.independent_channels * self.channel_bandwidth_GBps


class DramTimings(Frozen):
    """JEDEC timing parameters in nanoseconds (the one unit the engine reads)."""

    tCK: PositiveFloat
    tCL: PositiveFloat
    tCWL: PositiveFloat
    tRCD: PositiveFloat
    tRP: PositiveFloat
    tRAS: PositiveFloat
    tRC: PositiveFloat
    tRRD_S: PositiveFloat
    tRRD_L: PositiveFloat
    tFAW: PositiveFloat
    tCCD_S: PositiveFloat
    tCCD_L: PositiveFloat
    tWR: PositiveFloat
    tWTR_S: PositiveFloat
    tWTR_L: PositiveFloat
    tRTP: PositiveFloat
    tREFI: PositiveFloat
    tRFC: PositiveFloat
    row_command: NonNegativeFloat = Field(
        0.0, description="row command bus time of one activate and its precharge (0: not modelled)")
    column_command: NonNegativeFloat = Field(0.0, description="column command bus time of one read or write")

    @model_validator(mode="after")
    def _consistent(self) -> DramTimings:
        if self.tRFC >= self.tREFI:
            raise ValueError(f"tRFC ({self.tRFC} ns) must be shorter than tREFI ({self.tREFI} ns)")
        if self.tRC + 1e-9 < self.tRAS:
            raise ValueError(f"tRC ({self.tRC} ns) must be at least tRAS ({self.tRAS} ns)")
        return self


class DramEnergy(Frozen):
    source: str = Field(min_length=3)
    read_pJ_per_bit: PositiveFloat
    write_pJ_per_bit: PositiveFloat
    activate_pJ: PositiveFloat = Field(description="one activate + precharge of a row")
    refresh_pJ: PositiveFloat = Field(description="one all-bank refresh of one (pseudo-)channel (tRFC of "
                                      "IDD5 above standby); the detailed level charges it per refresh")


class DramCalibration(Frozen):
    """Fast-level calibration of one resolved DRAM configuration, measured with the detailed level.

    Never written by hand: `hwsim.memory.calibration.calibrated` computes it (or reads it from the user
    cache) when a configuration is resolved, keyed by `key`, the sha256 of everything it depends on
    (organisation, timings, stacks, pin rate, interleave, queue depth, mapping and the models' code).
    Times are without refresh; `refresh_factor` (detailed streaming time with refresh over the same
    without) stretches them all. One sequential run is served in the time its busiest channel takes for
    its accesses (`sequential_ns` by `busiest_accesses`, beyond the first access); `count` runs of `run`
    bytes take the closed form times `strided` or `random` (by run count, then run size)."""

    key: str = Field(pattern=CALIBRATION_KEY_PATTERN)
    source: str = Field(min_length=3)
    queue_depth: PositiveInt = Field(le=MAX_QUEUE_DEPTH)
    mapping: str = Field(min_length=2)
    refresh_factor: PositiveFloat
    busiest_accesses: tuple[PositiveInt, ...] = Field(min_length=2)
    sequential_ns: tuple[NonNegativeFloat, ...]
    run_bytes: tuple[PositiveInt, ...] = Field(min_length=2)
    run_counts: tuple[PositiveInt, ...] = Field(min_length=1)
    strided: tuple[tuple[PositiveFloat, ...], ...] = Field(
        description="factor by run count (rows) and run size (columns); runs at a slot stride that "
        "rotates over the channels, as hwsim.address_layout places per-stream states")
    random_run_bytes: tuple[PositiveInt, ...] = Field(min_length=2)
    random_periods_bytes: tuple[PositiveInt, ...] = Field(
        min_length=1, description="the interleave block (min(interleave, DRAM row)), then the row period "
        "(channels x row: each channel opens its next row): a random run that is a multiple or a divisor "
        "of a period never straddles it; runs are interpolated among grid sizes of the same kind")
    random_run_counts: tuple[PositiveInt, ...] = Field(min_length=1)
    random: tuple[tuple[PositiveFloat, ...], ...] = Field(
        description="factor by run count and run size (random_run_counts x random_run_bytes); runs at "
        "random access-aligned addresses (gathers)")

    @model_validator(mode="after")
    def _table_shapes(self) -> DramCalibration:
        for name in ("busiest_accesses", "run_bytes", "run_counts", "random_run_bytes", "random_run_counts"):
            values = getattr(self, name)
            if any(b <= a for a, b in itertools.pairwise(values)):
                raise ValueError(f"{name} must be strictly increasing")
        if len(self.sequential_ns) != len(self.busiest_accesses):
            raise ValueError("sequential_ns needs one time per busiest_accesses entry")
        if self.run_counts[0] < 2 or self.random_run_counts[0] < 2:
            raise ValueError("run_counts and random_run_counts start at 2: one run is the sequential table")
        for name, counts, runs in (("strided", "run_counts", "run_bytes"),
                                   ("random", "random_run_counts", "random_run_bytes")):
            table, n_counts, n_runs = getattr(self, name), len(getattr(self, counts)), len(getattr(self, runs))
            if len(table) != n_counts or any(len(row) != n_runs for row in table):
                raise ValueError(f"{name}: expected {n_counts} rows ({counts}) of {n_runs} factors ({runs})")
        return self


class DramPreset(Frozen):
    name: str
    kind: str = Field(pattern="^(hbm|lpddr|ddr|gddr)$")
    source: str = Field(min_length=3)
    organisation: DramOrganisation
    timings_ns: DramTimings
    energy: DramEnergy

    @model_validator(mode="after")
    def _declared_matches_derived(self) -> DramPreset:
        derived = self.organisation.peak_bandwidth_GBps
        declared = self.organisation.declared_peak_bandwidth_GBps
        if abs(derived - declared) > 0.01 * declared:
            raise ValueError(
                f"organisation: derived peak {derived:.1f} GB/s (units x width x rate) differs from "
                f"declared_peak_bandwidth_GBps {declared} by more than 1%")
        return self
