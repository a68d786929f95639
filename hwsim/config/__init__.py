"""Validated, frozen configuration: YAML in, pydantic models out. Nothing here simulates."""

from hwsim.config.dram import DramPreset
from hwsim.config.experiment import Experiment
from hwsim.config.hardware import Hardware
from hwsim.config.loading import load_experiment, load_preset
from hwsim.config.model import ModelSpec

__all__ = ["DramPreset", "Experiment", "Hardware", "ModelSpec", "load_experiment", "load_preset"]
