"""One error type for bad input: it names the file, the key path, the problem and the valid choices."""

from __future__ import annotations

from pathlib import Path


class HwsimInputError(ValueError):
    """Bad user input (config, trace, CLI argument). The CLI prints it without a traceback."""

    def __init__(self, problem: str, *, file: str | Path | None = None, key: str | None = None,
                 allowed: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        self.problem = problem
        self.allowed = allowed
        where = ": ".join(part for part in (self.file, key) if part)
        text = f"{where}: {problem}" if where else problem
        if allowed:
            text += f"; allowed: {allowed}"
        super().__init__(text)
