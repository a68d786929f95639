"""Where the project's data lives: configs/ and workloads/ beside the package (editable install)."""

from __future__ import annotations

import os
from pathlib import Path

#: Root of the checkout; HWSIM_HOME overrides it for installs outside the source tree.
PROJECT_ROOT = Path(os.environ.get("HWSIM_HOME", Path(__file__).resolve().parent.parent))
CONFIGS_DIR = PROJECT_ROOT / "configs"
WORKLOADS_DIR = PROJECT_ROOT / "workloads"
REPORTS_DIR = PROJECT_ROOT / "reports"
