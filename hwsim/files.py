"""Writing files so that nothing half-written ever sits under its final name.

Every output goes through `write_atomic`: the writer fills a temporary file in the destination folder
(same filesystem, so the final `os.replace` is atomic), and a failure (full disk, killed process,
exception) leaves at most a dot-prefixed temporary that names its owner's process id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from hwsim.errors import HwsimInputError


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path` that no other writer will pick: `.NAME.PID.RANDOM.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: str | Path, write: Callable[[Path], object], *, returns: bool = False):
    """Call `write(tmp_path)` then os.replace it onto `path`, so readers never see half a file.
    Returns `path`, or what `write` returned when `returns=True`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        result = write(tmp)
        if not tmp.exists():  # a writer with nothing to write (e.g. no rows): no file at all
            return result if returns else path
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return result if returns else path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def check_output_dir(path: str | Path, *, flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder that names a file or cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HwsimInputError(f"{path} exists and is not a folder", key=flag)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise HwsimInputError(f"{existing} is a file, so {path} cannot be a folder", key=flag)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise HwsimInputError(f"{existing} is not writable", key=flag)
    return path


def check_output_file(path: str | Path, *, flag: str = "--out") -> Path:
    """Refuse an output file whose name is a folder or whose folder cannot be made or written."""
    path = Path(path)
    if path.is_dir():
        raise HwsimInputError(f"{path} is a folder; give a file name", key=flag)
    check_output_dir(path.parent, flag=flag)
    return path
