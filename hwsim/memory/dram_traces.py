"""Request traces in the formats DRAMsim3 and Ramulator 2 read, so hwsim's traffic can be cross-checked.

DRAMsim3 (`trace` frontend): one request per line, `0x1FF97000 READ 192`: hex byte address, READ or
WRITE, issue cycle at the DRAM clock (tCK of the preset). Ramulator 2 (`LoadStoreTrace` frontend):
`LD 0x40` or `ST 0x80`: no time; requests arrive as fast as the queues accept them (arrival 0 here).
Blank lines and lines starting with `#` are skipped. Errors name the file, the line and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimInputError

FORMATS = ("dramsim3", "ramulator2")
#: Issue cycles beyond 2^53 lose integer precision as float64 nanoseconds.
MAX_CYCLE = float(1 << 53)


@dataclass(frozen=True)
class RequestTrace:
    address: np.ndarray       # int64 byte addresses
    is_write: np.ndarray      # bool
    arrival_ns: np.ndarray    # float64
    format: str


def guess_format(line: str) -> str:
    return "ramulator2" if line.split()[0].upper() in ("LD", "ST") else "dramsim3"


def read_trace(path: str | Path, *, fmt: str | None = None, tCK_ns: float = 1.0) -> RequestTrace:
    """Parse a trace file; DRAMsim3 cycles become ns at `tCK_ns`."""
    path = Path(path)
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except OSError as error:
        raise HwsimInputError(f"cannot read trace: {error.strerror or error}", file=path) from None
    except UnicodeDecodeError as error:
        raise HwsimInputError(f"not a text trace (byte {error.start} is not UTF-8)", file=path) from None
    body = [(n, line.split()) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    if not body:
        raise HwsimInputError("trace holds no requests", file=path)
    fmt = fmt or guess_format(" ".join(body[0][1]))
    if fmt not in FORMATS:
        raise HwsimInputError(f"unknown trace format {fmt!r}", file=path, allowed=", ".join(FORMATS))
    address = np.empty(len(body), dtype=np.int64)
    is_write = np.empty(len(body), dtype=bool)
    cycle = np.zeros(len(body), dtype=np.float64)
    for i, (n, fields) in enumerate(body):
        where = f"line {n}"
        if fmt == "dramsim3":
            if len(fields) != 3:
                raise HwsimInputError(f"{where}: expected 'ADDRESS READ|WRITE CYCLE', got {len(fields)} "
                                      f"field(s)", file=path)
            addr_text, op, cycle_text = fields
            if op.upper() not in ("READ", "WRITE"):
                raise HwsimInputError(f"{where}: operation {op!r} is not READ or WRITE", file=path)
            try:
                cycle[i] = int(cycle_text)
            except (ValueError, OverflowError):
                raise HwsimInputError(f"{where}: issue cycle {cycle_text!r} is not an integer",
                                      file=path) from None
            if not 0 <= cycle[i] < MAX_CYCLE:
                raise HwsimInputError(f"{where}: issue cycle {cycle_text} outside 0 .. 2^53", file=path)
            is_write[i] = op.upper() == "WRITE"
        else:
            if len(fields) != 2:
                raise HwsimInputError(f"{where}: expected 'LD|ST ADDRESS', got {len(fields)} field(s)",
                                      file=path)
            op, addr_text = fields
            if op.upper() not in ("LD", "ST"):
                raise HwsimInputError(f"{where}: operation {op!r} is not LD or ST", file=path)
            is_write[i] = op.upper() == "ST"
        try:
            value = int(addr_text, 16) if addr_text.lower().startswith("0x") else int(addr_text)
        except ValueError:
            raise HwsimInputError(f"{where}: address {addr_text!r} is not a hex (0x...) or decimal number",
                                  file=path) from None
        if value < 0:
            raise HwsimInputError(f"{where}: negative address", file=path)
        if value >= 1 << 63:
            raise HwsimInputError(f"{where}: address {addr_text} does not fit in 63 bits", file=path)
        address[i] = value
    if fmt == "dramsim3" and np.any(np.diff(cycle) < 0):
        bad = int(np.argmax(np.diff(cycle) < 0)) + 1
        raise HwsimInputError(f"line {body[bad][0]}: issue cycle goes backwards", file=path)
    return RequestTrace(address, is_write, cycle * tCK_ns, fmt)


def format_lines(address: np.ndarray, is_write: np.ndarray, arrival_ns: np.ndarray | float, *, fmt: str,
                 tCK_ns: float = 1.0) -> list[str]:
    """Trace lines for requests (DRAMsim3 cycles = floor(arrival / tCK))."""
    is_write = np.broadcast_to(is_write, np.shape(address))
    if fmt == "ramulator2":
        return [f"{'ST' if w else 'LD'} 0x{a:X}" for a, w in zip(address.tolist(), is_write.tolist())]
    cycles = np.floor(np.broadcast_to(arrival_ns, np.shape(address)) / tCK_ns + 1e-9).astype(np.int64)
    return [f"0x{a:X} {'WRITE' if w else 'READ'} {c}"
            for a, w, c in zip(address.tolist(), is_write.tolist(), cycles.tolist())]


def write_trace(path: str | Path, trace: RequestTrace, *, fmt: str, tCK_ns: float = 1.0) -> None:
    from hwsim.files import write_text_atomic

    lines = format_lines(trace.address, trace.is_write, trace.arrival_ns, fmt=fmt, tCK_ns=tCK_ns)
    write_text_atomic(path, "\n".join(lines) + "\n")
