"""Request traces in the formats DRAMsim3 and Ramulator 2 read, so hwsim's traffic can be cross-checked.

DRAMsim3 (`trace` frontend): one request per line, `0x1FF97000 READ 192`: hex byte address, READ or
WRITE, issue cycle at the DRAM clock (tCK of the preset). Ramulator 2 (`LoadStoreTrace` frontend):
`LD 0x40` or `ST 0x80`: no time; Ramulator offers them at most one per frontend tick, in file order
(hwsim reads them as all arriving at 0, as fast as its queues accept them).
Blank lines and lines starting with `#` are skipped. Errors name the file, the line and what is wrong.

Parsing is compiled (numba, like the controller): the file is memory-mapped (not copied), cut into
pieces at newlines, and each piece parsed in one pass on its own thread; a 17 M-line, 412 MB trace
parses in ~1.4 s on 2 cores, most of it first touches of the result arrays. A file the fast pass cannot
take (decimal addresses, a malformed line, a cycle going backwards or past 2^53) goes through the
line-by-line parser, which names the line.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimInputError
from hwsim.memory.jit import get_num_threads, njit, prange

FORMATS = ("dramsim3", "ramulator2")
#: Issue cycles beyond 2^53 lose integer precision as float64 nanoseconds.
MAX_CYCLE = 1 << 53


@dataclass(frozen=True)
class RequestTrace:
    address: np.ndarray       # int64 byte addresses
    is_write: np.ndarray      # bool
    arrival_ns: np.ndarray    # float64
    format: str


def guess_format(line: str) -> str:
    return "ramulator2" if line.split()[0].upper() in ("LD", "ST") else "dramsim3"


@njit(cache=True)
def _scan(data, start, stop, ramulator, tCK_ns, first, address, is_write, arrival):
    """One pass over data[start:stop] (whole lines): fills the arrays from row `first`, returns the
    request count, or -1 at anything but plain `0xHEX READ|WRITE CYCLE` / `LD|ST 0xHEX` lines, blank
    lines and `#` comments, or a cycle that goes backwards or reaches 2^53 (the line-by-line parser
    then takes the file and names the bad line)."""
    n, i, size = first, start, stop
    last_cycle = 0
    while i < size:
        while i < size and (data[i] == 32 or data[i] == 13):  # leading blanks
            i += 1
        if i >= size:
            break
        c = data[i]
        if c == 10:
            i += 1
            continue
        if c == 35:  # comment line
            while i < size and data[i] != 10:
                i += 1
            continue
        for field in range(3 if not ramulator else 2):
            if field > 0:
                if i >= size or data[i] != 32:
                    return -1
                while i < size and data[i] == 32:
                    i += 1
            kind = field if not ramulator else (1 - field)  # 0 address, 1 operation, 2 cycle
            if kind == 0:
                if i + 2 >= size or data[i] != 48 or (data[i + 1] | 32) != 120:
                    return -1
                i += 2
                value, digits = 0, 0
                while i < size and data[i] != 32 and data[i] != 10 and data[i] != 13:
                    d = data[i] | 32
                    if 48 <= data[i] <= 57:
                        value = value * 16 + (data[i] - 48)
                    elif 97 <= d <= 102:
                        value = value * 16 + (d - 87)
                    else:
                        return -1
                    digits += 1
                    i += 1
                if digits == 0 or digits > 15:
                    return -1
                address[n] = value
            elif kind == 1:
                j = i
                while i < size and data[i] != 32 and data[i] != 10 and data[i] != 13:
                    i += 1
                word = 0
                for m in range(j, min(i, j + 6)):
                    word = word * 256 + (data[m] & 0xDF)   # upper case
                if i - j > 5:
                    return -1
                if ramulator:
                    if word == 0x4C44:          # LD
                        is_write[n] = False
                    elif word == 0x5354:        # ST
                        is_write[n] = True
                    else:
                        return -1
                elif word == 0x52454144:        # READ
                    is_write[n] = False
                elif word == 0x5752495445:      # WRITE
                    is_write[n] = True
                else:
                    return -1
            else:
                value, digits = 0, 0
                while i < size and 48 <= data[i] <= 57:
                    value = value * 10 + (data[i] - 48)
                    digits += 1
                    i += 1
                if digits == 0 or digits > 16 or value >= MAX_CYCLE or value < last_cycle:
                    return -1
                last_cycle = value
                arrival[n] = value * tCK_ns
        if ramulator:
            arrival[n] = 0.0
        while i < size and (data[i] == 32 or data[i] == 13):
            i += 1
        if i < size and data[i] != 10:
            return -1
        n += 1
    return n - first


@njit(cache=True, parallel=True)
def _pieces(data, chunks):
    """Cut data into about `chunks` pieces that each end just after a newline (or at the end); return
    the cuts and, per piece, the row its requests start at (its first line's number: blank and
    comment lines leave gaps that `_scan_pieces` closes)."""
    size = data.shape[0]
    cuts = np.empty(chunks + 1, np.int64)
    cuts[0] = 0
    for c in range(1, chunks):
        i = max(size * c // chunks, cuts[c - 1])
        while i < size and data[i] != 10:
            i += 1
        cuts[c] = min(i + 1, size)
    cuts[chunks] = size
    room = np.zeros(chunks + 1, np.int64)
    for c in prange(chunks):
        count = 1
        for i in range(cuts[c], cuts[c + 1]):
            if data[i] == 10:
                count += 1
        room[c + 1] = count
    for c in range(chunks):
        room[c + 1] += room[c]
    return cuts, room


@njit(cache=True, parallel=True)
def _scan_pieces(data, cuts, room, ramulator, tCK_ns, address, is_write, arrival):
    """Parse every piece on numba's threads, then close the gaps. The request count, or -1 (`_scan`)."""
    chunks = cuts.shape[0] - 1
    got = np.zeros(chunks, np.int64)
    for c in prange(chunks):
        got[c] = _scan(data, cuts[c], cuts[c + 1], ramulator, tCK_ns, room[c], address, is_write, arrival)
    n = 0
    for c in range(chunks):
        if got[c] < 0 or (not ramulator and n > 0 and got[c] > 0 and arrival[room[c]] < arrival[n - 1]):
            return -1
        if n != room[c]:
            for j in range(got[c]):
                address[n + j] = address[room[c] + j]
                is_write[n + j] = is_write[room[c] + j]
                arrival[n + j] = arrival[room[c] + j]
        n += got[c]
    return n


def _read_fast(data: np.ndarray, fmt: str, tCK_ns: float,
               chunks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Compiled parse of the whole file in `chunks` pieces; None sends it to the line-by-line parser."""
    cuts, room = _pieces(data, chunks)
    rows = int(room[-1])
    address = np.empty(rows, dtype=np.int64)
    is_write = np.empty(rows, dtype=np.bool_)
    arrival = np.empty(rows, dtype=np.float64)
    n = _scan_pieces(data, cuts, room, fmt == "ramulator2", float(tCK_ns), address, is_write, arrival)
    if n <= 0:
        return None
    return address[:n], is_write[:n], arrival[:n]


def read_trace(path: str | Path, *, fmt: str | None = None, tCK_ns: float = 1.0,
               threads: int | None = None) -> RequestTrace:
    """Parse a trace file; DRAMsim3 cycles become ns at `tCK_ns`. `threads`: pieces parsed at once
    (default: numba's thread count)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            # mapped, not read: a 400 MB trace is not copied into a second buffer
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as error:
        raise HwsimInputError(f"cannot read trace: {error.strerror or error}", file=path) from None
    try:
        first = next((line for line in view[:65536].splitlines() if line.strip() and not line.startswith(b"#")), b"")
        guessed = fmt or (guess_format(first.decode(errors="replace")) if first else None)
        if guessed in FORMATS and size:
            raw = np.frombuffer(view, dtype=np.uint8)
            # pieces of at least 1 MB: small files are not worth a thread's start-up
            chunks = max(1, min(threads or get_num_threads(), size >> 20))
            parsed = _read_fast(raw, guessed, tCK_ns, chunks)
            del raw
            if parsed is not None:
                address, is_write, arrival = parsed
                return RequestTrace(address, is_write, arrival, guessed)
        data = bytes(view)
    finally:
        if size:
            view.close()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HwsimInputError(f"not a text trace (byte {error.start} is not UTF-8)", file=path) from None
    return _read_lines(path, text, fmt=fmt, tCK_ns=tCK_ns)


def _read_lines(path: Path, text: str, *, fmt: str | None, tCK_ns: float) -> RequestTrace:
    """The line-by-line parser: any layout the formats allow, and exact errors."""
    lines = text.splitlines()
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
