"""The `hwsim` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HwsimInputError as error:
        print(f"hwsim: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
