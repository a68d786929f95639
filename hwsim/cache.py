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


#: Commands that read or write the cache take `--cache-dir`; `hwsim.cli` exports it as HWSIM_CACHE_DIR.
def add_cache_argument(parser) -> None:
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help=f"user cache folder (default: ${CACHE_ENV} or the platform's user cache)")


_NUMBA_AUTO: str | None = None


def configure_numba_cache() -> None:
    """Point numba's on-disk kernel cache at `<cache>/numba` instead of the installed package, unless
    the user set NUMBA_CACHE_DIR. Must run before numba is imported (numba reads it once)."""
    global _NUMBA_AUTO
    import sys

    current = os.environ.get("NUMBA_CACHE_DIR")
    if "numba" in sys.modules or (current is not None and current != _NUMBA_AUTO):
        return
    _NUMBA_AUTO = os.environ["NUMBA_CACHE_DIR"] = str(cache_root() / "numba")
