"""Texts nobody here wrote, made deterministically from the running Python: its documentation and stdlib.

Each text is written with a sidecar `<text>.json` (source, licence, Python version) that
`hwsim trace extract` copies into the trace's provenance.
"""

from __future__ import annotations

import importlib.util
import json
import platform
from pathlib import Path

from hwsim.errors import HwsimInputError

PSF_LICENCE = "PSF-2.0 (Python Software Foundation License Version 2)"


def pydocs_text(start_topic: str, max_chars: int) -> tuple[str, dict]:
    """Whole help topics from `pydoc_data.topics` (the Python reference manual), sorted by name,
    from `start_topic` on, as many as fit in `max_chars`."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    if start_topic not in topics:
        raise HwsimInputError(f"unknown pydoc topic {start_topic!r}", key="--start-topic",
                              allowed=", ".join(names))
    chosen, size = [], 0
    for name in names[names.index(start_topic):]:
        if chosen and size + len(topics[name]) > max_chars:
            break
        chosen.append(name)
        size += len(topics[name]) + 2
    text = "\n\n".join(topics[name].strip("\n") for name in chosen) + "\n"
    return text, {"source": f"Python {platform.python_version()} documentation, pydoc_data.topics: "
                            f"topics {chosen[0]} .. {chosen[-1]} ({len(chosen)} topics)",
                  "topics": chosen}


def stdlib_text(modules: list[str]) -> tuple[str, dict]:
    """Source files of standard-library modules, read from disk and joined in the order given."""
    parts, files = [], []
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise HwsimInputError(f"{module!r} is not a pure-Python module", key="module")
        origin = Path(spec.origin)
        parts.append(origin.read_text(encoding="utf-8"))
        files.append(f"Lib/{origin.relative_to(_stdlib_root(origin, module)).as_posix()}")
    return "\n\n".join(parts), {"source": f"Python {platform.python_version()} standard library: "
                                          + ", ".join(files), "files": files}


def _stdlib_root(origin: Path, module: str) -> Path:
    depth = module.count(".") + (1 if origin.name == "__init__.py" else 0)
    return origin.parents[depth]


def write_text(out: Path, text: str, info: dict) -> Path:
    """Write the text and its sidecar JSON (source, licence, Python version)."""
    from hwsim.files import write_text_atomic

    out = Path(out)
    write_text_atomic(out, text)
    sidecar = {"licence": PSF_LICENCE, "python_version": platform.python_version(), **info}
    write_text_atomic(out.with_name(out.name + ".json"), json.dumps(sidecar, indent=1) + "\n")
    return out
