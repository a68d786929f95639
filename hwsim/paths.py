"""Where the project's data lives: configs/ and workloads/ beside the package (editable install)."""

from __future__ import annotations

import os
from pathlib import Path

#: Root of the checkout; HWSIM_HOME overrides it for installs outside the source tree.
PROJECT_ROOT = Path(os.environ.get("HWSIM_HOME", Path(__file__).resolve().parent.parent))
CONFIGS_DIR = PROJECT_ROOT / "configs"
WORKLOADS_DIR = PROJECT_ROOT / "workloads"
REPORTS_DIR = PROJECT_ROOT / "reports"

#: The one pattern for names that become folder or file names (experiments, sweeps, compare runs):
#: letters, digits, `_`, `.`, `-`, starting with a letter or digit, so no `/`, no `..`, no hidden name.
SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


def safe_name(name: object, *, key: str, file: str | Path | None = None) -> str:
    """`name` if it is safe as one path component, else an HwsimInputError naming the key."""
    import re

    from hwsim.errors import HwsimInputError

    if not isinstance(name, str) or not re.fullmatch(SAFE_NAME_PATTERN, name):
        raise HwsimInputError(f"{name!r} is not a safe name", file=file, key=key,
                              allowed="letters, digits, _ . - (starting with a letter or digit, at most 128)")
    return name


def output_path(root: str | Path, *names: str, key: str, file: str | Path | None = None) -> Path:
    """The one resolver for paths derived from input: `root/name/...`, each name a safe component,
    and the result inside `root` (symlinks included), else an HwsimInputError."""
    from hwsim.errors import HwsimInputError

    root = Path(root)
    path = root.joinpath(*(safe_name(n, key=key, file=file) for n in names))
    if not path.resolve().is_relative_to(root.resolve()):
        raise HwsimInputError(f"{path} resolves outside {root}", file=file, key=key)
    return path


def slug(text: str) -> str:
    """A safe name made from free text (e.g. hardware file stems for `hwsim compare`)."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip("._-")[:128]
    return cleaned or "unnamed"
