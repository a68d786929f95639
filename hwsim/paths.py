"""Where the project's data lives. Presets (configs/) and the shipped traces and models (workloads/)
are package data, `hwsim.presets` and `hwsim.shipped` (pyproject maps the repository's folders onto
them): a source tree or editable install reads the checkout, a wheel its installed copy (found by importlib).
HWSIM_HOME points both at another tree; outputs default to reports/ in the checkout, or in the
working directory for an installed package."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _package_dir(package: str, folder: str) -> Path:
    """The checkout's folder beside the package (source tree, editable install), else the installed
    package data."""
    if (_CHECKOUT / folder).is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT / folder
    spec = importlib.util.find_spec(package)   # a data-only (namespace) package: its one folder
    return Path(next(iter(spec.submodule_search_locations)))
if "HWSIM_HOME" in os.environ:
    PROJECT_ROOT = Path(os.environ["HWSIM_HOME"])
    CONFIGS_DIR, WORKLOADS_DIR = PROJECT_ROOT / "configs", PROJECT_ROOT / "workloads"
else:
    CONFIGS_DIR = _package_dir("hwsim.presets", "configs")
    WORKLOADS_DIR = _package_dir("hwsim.shipped", "workloads")
    PROJECT_ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
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
