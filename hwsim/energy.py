"""Energy = action counts x an energy table, computed after the run (Accelergy style): changing a pJ
figure never needs a re-simulation."""

from __future__ import annotations

import pandas as pd

from hwsim.config.hardware import Hardware

ENERGY_COMPONENTS = ("dram_read", "dram_write", "dram_activate", "sram_read", "sram_write", "matmul",
                     "vector", "quantise", "static")
PJ_PER_W_NS = 1000.0  # 1 W for 1 ns is 1 nJ


def energy_table(hardware: Hardware, weight_precision_key: str) -> dict[str, tuple[str, float]]:
    """Component -> (action column it multiplies, pJ per action)."""
    sram, comp = hardware.sram, hardware.compute
    table = {
        "sram_read": ("sram_read_bits", sram.read_pJ_per_bit),
        "sram_write": ("sram_write_bits", sram.write_pJ_per_bit),
        "matmul": ("matmul_macs", comp.mac_pJ[weight_precision_key]),
        "vector": ("vector_ops", comp.vector_op_pJ),
        "quantise": ("quantise_elements", comp.quantise_pJ_per_element),
        "static": ("latency_ns", hardware.static_power_W * PJ_PER_W_NS),
    }
    if hardware.dram is not None:
        dram = hardware.dram.preset.energy
        table.update({"dram_read": ("dram_read_bits", dram.read_pJ_per_bit),
                      "dram_write": ("dram_write_bits", dram.write_pJ_per_bit),
                      "dram_activate": ("dram_activates", dram.activate_pJ)})
    return table


def add_energy(steps: pd.DataFrame, table: dict[str, tuple[str, float]]) -> pd.DataFrame:
    """Add `energy_pJ_<component>` and `energy_pJ_total` columns to a per-step frame of action counts."""
    energy = {f"energy_pJ_{name}": (steps[column] * pj if name in table else 0.0)
              for name in ENERGY_COMPONENTS
              for column, pj in [table.get(name, ("latency_ns", 0.0))]}
    frame = pd.DataFrame(energy, index=steps.index)
    frame["energy_pJ_total"] = frame.sum(axis=1)
    return pd.concat([steps, frame], axis=1)
