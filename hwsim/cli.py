"""The `hwsim` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from hwsim.cache import CACHE_ENV, configure_numba_cache
from hwsim.errors import HwsimInputError

#: Modules that each define `register(subparsers)`; a command sets `func(args) -> int` as its default.
COMMAND_MODULES = (
    "hwsim.traces.commands",
    "hwsim.commands",
    "hwsim.sweeps.commands",
    "hwsim.quality.commands",
    "hwsim.memory.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwsim", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


#: Exit codes: 2 = bad input (file, key, what is allowed), 3 = could not read or write a file.
EXIT_INPUT, EXIT_IO = 2, 3


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "cache_dir", None):
        os.environ[CACHE_ENV] = str(Path(args.cache_dir).expanduser().resolve())
    configure_numba_cache()
    try:
        return int(args.func(args) or 0)
    except HwsimInputError as error:
        print(f"hwsim: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as error:  # full disk, read-only folder, a file where a folder should be
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        print(f"hwsim: error: could not write or read {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130


def one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
