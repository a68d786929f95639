"""The `hwsim` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from hwsim.cache import CACHE_ENV, configure_numba_cache
from hwsim.errors import HwsimInputError

DESCRIPTION = """hwsim simulates the memory traffic, time and energy of state-space-model (Mamba, Mamba-2)
inference on an accelerator or a GPU, and tests whether storing the recurrent state at low precision
on easy (low-entropy) tokens saves bandwidth, and what it costs in quality."""

EXAMPLES = """examples:
  hwsim run                                   the default experiment (Mamba-2 2.7B, batch 64, HBM3)
  hwsim run default --set hardware=h100-sxm --set workload.prompt_tokens=2048
  hwsim sweep                                 the default sweep and its report
  hwsim compare hbm3-accel h100-sxm rtx-4090  one experiment on several machines
  hwsim presets                               every hardware, model, DRAM, experiment, sweep, trace
  hwsim validate-hw                           the GPU model against published measurements"""


#: Modules that each define `register(subparsers)`; a command sets `func(args) -> int` as its default.
COMMAND_MODULES = (
    "hwsim.traces.commands",
    "hwsim.commands",
    "hwsim.sweeps.commands",
    "hwsim.quality.commands",
    "hwsim.quality.signals_command",
    "hwsim.memory.commands",
    "hwsim.presets_command",
)


def build_parser() -> argparse.ArgumentParser:
    from hwsim import __version__

    parser = argparse.ArgumentParser(prog="hwsim", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=False)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


#: Exit codes: 2 = bad input (file, key, what is allowed), 3 = could not read or write a file.
EXIT_INPUT, EXIT_IO = 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:   # bare `hwsim`: what it is and what to type
        parser.print_help()
        return 0
    if getattr(args, "cache_dir", None):
        os.environ[CACHE_ENV] = str(Path(args.cache_dir).expanduser().resolve())
    configure_numba_cache()
    try:
        return int(args.func(args) or 0)
    except HwsimInputError as error:
        print(f"hwsim: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:  # `hwsim ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
