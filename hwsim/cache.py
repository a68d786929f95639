"""The user cache directory: derived data hwsim can always recompute (DRAM calibrations, quality
evaluations, compiled kernels) lives here, never in the package, configs/ or an output folder.

Location, first that is set: the `HWSIM_CACHE_DIR` environment variable (commands' `--cache-dir`
sets it), else the platform's user cache folder (platformdirs: `~/.cache/hwsim` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "HWSIM_CACHE_DIR"


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("hwsim"))


def cache_dir(kind: str) -> Path:
    """`<root>/<kind>`, created on first use (kind: calibration, quality, numba, ...)."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
