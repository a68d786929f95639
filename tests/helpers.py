"""Small experiments for tests: a small real model preset on a real hardware preset, few steps."""

from __future__ import annotations

import numpy as np

from hwsim.config import load_experiment


#: Entropy arrays used only as test inputs to check invariants (the product replays real traces).
def entropy_inputs(seed: int = 0, streams: int = 3, length: int = 200) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.gamma(0.8, 2.5, length) for _ in range(streams)]


def small_experiment(*overrides: str, model: str = "mamba2-130m", hardware: str = "hbm3-accel"):
    return load_experiment(overrides=[f"model={model}", f"hardware={hardware}", "workload.batch_size=8",
                                      "workload.steps=48", "run.chunk_steps=16", *overrides])


#: a cold DRAM calibration costs 20-60 s, so the default tier calibrates the presets of the default and
#: edge hardware only; tests over every preset run the others in the slow tier (CI runs both)
DEFAULT_TIER_DRAM = ("hbm3-6400", "lpddr5x-8533")


def every_dram_preset_tiered() -> list:
    """Every DRAM preset as a pytest parameter, the ones outside DEFAULT_TIER_DRAM marked slow."""
    import pytest

    from hwsim.config.loading import known_presets

    return [p if p in DEFAULT_TIER_DRAM else pytest.param(p, marks=pytest.mark.slow) for p in known_presets("dram")]


def calibrated_tier_dram(preset: str):
    """`preset` calibrated as a test of the tier needs it: for the DRAM of the default or the edge
    hardware, exactly that hardware's DRAM at its DMA queue depth (the calibration every run of the tier
    already needs, so no extra cold one); any other preset as one stack at the default depth."""
    from hwsim.config import DramPreset, Hardware, load_preset
    from hwsim.config.hardware import DramMemory
    from hwsim.memory.calibration import calibrated

    for name in ("hbm3-accel", "lpddr5x-edge"):
        hw = load_preset("hardware", name, Hardware)
        if hw.dram.preset.name == preset:
            return calibrated(hw.dram, queue_depth=hw.dma.queue_depth)
    return calibrated(DramMemory(preset=load_preset("dram", preset, DramPreset), stacks=1, source="test"))
