"""Lower layers never import higher ones: memory/ (DRAM technologies, timing, the detailed controller)
knows nothing of models, policies, the engine or the runner."""

from __future__ import annotations

import ast
from pathlib import Path

import hwsim

PACKAGE = Path(hwsim.__file__).parent
#: what memory/ may import from hwsim: configs, its own modules, and leaf utilities
MEMORY_MAY_IMPORT = ("hwsim.memory", "hwsim.config", "hwsim.errors", "hwsim.files", "hwsim.cache", "hwsim.paths",
                     "hwsim.records", "hwsim.units")


def imported_hwsim_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwsim"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("hwsim"))
    return names


def test_memory_is_a_leaf():
    # commands.py is the command-line layer of the dram group (it wires export-trace to hwsim.export)
    offending = {f"{path.name}: {name}" for path in (PACKAGE / "memory").glob("*.py") if path.name != "commands.py"
                 for name in imported_hwsim_modules(path)
                 if not any(name == allowed or name.startswith(allowed + ".") for allowed in MEMORY_MAY_IMPORT)}
    assert offending == set()
