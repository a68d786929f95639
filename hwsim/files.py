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


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path` that no other writer will pick: `.NAME.PID.RANDOM.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp_path)` then os.replace it onto `path`, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
