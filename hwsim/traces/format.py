"""The trace file format: one token stream per file, Parquet (zstd) with provenance in the metadata.

Columns: position, token_id, token_text, entropy_bits, top1_prob, surprisal_bits. CSV is read too;
its provenance is optional and comes from a sidecar `<file>.json` if present. Torch-free on purpose:
the simulator reads traces without the [traces] extra.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.errors import HwsimInputError
from hwsim.files import write_atomic

PROVENANCE_KEY = b"hwsim.provenance"
#: Column name -> numpy dtype; token_text is read only when asked for.
NUMERIC_COLUMNS = {
    "position": np.int64,
    "token_id": np.int64,
    "entropy_bits": np.float64,
    "top1_prob": np.float64,
    "surprisal_bits": np.float64,
}
TEXT_COLUMN = "token_text"
COLUMNS = ("position", "token_id", TEXT_COLUMN, "entropy_bits", "top1_prob", "surprisal_bits")
#: Slack for float32 entropies that reach log2(vocab) on near-uniform distributions.
ENTROPY_SLACK_BITS = 1e-3
#: Without a known vocabulary, entropies above log2 of this many tokens are suspicious (warned about).
SANE_VOCAB = 1 << 24
MAX_VOCAB = 1 << 40


class TraceWarning(UserWarning):
    """A trace that loads but looks implausible (shown once per file)."""


@dataclass(frozen=True, eq=False)
class Trace:
    """One validated token stream as numpy arrays (float64 / int64), plus where it came from."""

    name: str
    entropy_bits: np.ndarray
    token_id: np.ndarray
    top1_prob: np.ndarray
    surprisal_bits: np.ndarray
    position: np.ndarray
    provenance: dict = field(default_factory=dict)
    token_text: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.entropy_bits)


def write_trace(path: str | Path, frame: pd.DataFrame, provenance: dict) -> Path:
    """Write a trace to Parquet (zstd), provenance as JSON under `hwsim.provenance`."""
    path = Path(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HwsimInputError(f"missing columns {missing}", file=path)
    table = pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return path


def read_provenance(path: str | Path) -> dict:
    """Provenance only (Parquet metadata, or the CSV's sidecar JSON); {} when there is none."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            raw = (pq.read_schema(path).metadata or {}).get(PROVENANCE_KEY)
            text = raw.decode() if raw else None
        else:
            sidecar = path.with_name(path.name + ".json")
            text = sidecar.read_text(encoding="utf-8") if sidecar.exists() else None
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        raise HwsimInputError(f"cannot read provenance ({type(error).__name__}: {error})", file=path) from None
    if text is None:
        return {}
    try:
        provenance = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise HwsimInputError(f"provenance is not valid JSON ({error})", file=path) from None
    if not isinstance(provenance, dict):
        raise HwsimInputError("provenance must be a JSON object", file=path)
    vocab = provenance.get("vocab_size")
    if vocab is not None and (isinstance(vocab, bool) or not isinstance(vocab, int)
                              or not 2 <= vocab <= MAX_VOCAB):
        raise HwsimInputError(f"vocab_size {vocab!r} is not a vocabulary size", file=path,
                              key="provenance.vocab_size", allowed="an integer from 2 to 2^40")
    return provenance


def read_trace(path: str | Path, name: str | None = None, with_text: bool = False) -> Trace:
    """Read and validate a trace file (.parquet or .csv); only the needed columns are read."""
    path = Path(path)
    if not path.is_file():
        raise HwsimInputError("trace file not found", file=path)
    wanted = list(NUMERIC_COLUMNS) + ([TEXT_COLUMN] if with_text else [])
    if path.suffix == ".parquet":
        try:
            present = set(pq.read_schema(path).names)
            _require_columns(path, present, wanted)
            frame = pq.read_table(path, columns=wanted).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as error:  # corrupt pages raise any of these
            if isinstance(error, HwsimInputError):
                raise
            raise HwsimInputError(f"not a readable Parquet file ({type(error).__name__}: {error})",
                                  file=path) from None
    elif path.suffix == ".csv":
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values={c: ["", "nan", "NaN"]
                                                                      for c in NUMERIC_COLUMNS})
        except pd.errors.EmptyDataError:
            raise HwsimInputError("empty trace: no header and no rows", file=path) from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as error:
            raise HwsimInputError(f"not a readable CSV trace ({type(error).__name__}: {error})",
                                  file=path) from None
        _require_columns(path, set(frame.columns), wanted)
    else:
        raise HwsimInputError(f"unknown trace file type {path.suffix!r}", file=path, allowed=".parquet, .csv")
    provenance = read_provenance(path)
    arrays = {col: _numeric(path, frame, col, dtype) for col, dtype in NUMERIC_COLUMNS.items()}
    _validate(path, arrays, provenance)
    text = tuple(frame[TEXT_COLUMN].astype(str)) if with_text else None
    for array in arrays.values():
        array.setflags(write=False)
    return Trace(name=name or path.stem, provenance=provenance, token_text=text, **arrays)


def _require_columns(path: Path, present: set[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise HwsimInputError(f"missing column(s) {', '.join(missing)}", file=path,
                              allowed=", ".join(COLUMNS))


def _numeric(path: Path, frame: pd.DataFrame, column: str, dtype) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values) & frame[column].notna().to_numpy())
    if bad.size:
        raise HwsimInputError(f"row {bad[0]}: not a number: {frame[column].iloc[bad[0]]!r}",
                              file=path, key=column)
    if dtype is np.int64:
        if np.isnan(values).any():
            raise HwsimInputError(f"row {np.flatnonzero(np.isnan(values))[0]}: missing value",
                                  file=path, key=column)
        return values.astype(np.int64)
    return values


def _validate(path: Path, a: dict[str, np.ndarray], provenance: dict) -> None:
    """The checks the simulator relies on; each error names the file, the row and the column."""
    def fail(column: str, rows: np.ndarray, problem: str) -> None:
        row = int(rows[0])
        raise HwsimInputError(f"row {row}: {problem} (value {a[column][row]!r}; "
                              f"{rows.size} such row(s))", file=path, key=column)

    entropy = a["entropy_bits"]
    if entropy.size == 0:
        raise HwsimInputError("empty trace: no rows", file=path)
    if (rows := np.flatnonzero(np.isnan(entropy))).size:
        fail("entropy_bits", rows, "entropy is NaN")
    if (rows := np.flatnonzero(~np.isfinite(entropy))).size:
        fail("entropy_bits", rows, "entropy is not finite")
    if (rows := np.flatnonzero(entropy < 0)).size:
        fail("entropy_bits", rows, "entropy is negative")
    vocab = provenance.get("vocab_size")
    if vocab:
        limit = math.log2(int(vocab)) + ENTROPY_SLACK_BITS
        if (rows := np.flatnonzero(entropy > limit)).size:
            fail("entropy_bits", rows, f"entropy above log2(vocab_size={vocab}) = {math.log2(int(vocab)):.3f} bits")
    elif (rows := np.flatnonzero(entropy > math.log2(SANE_VOCAB))).size:
        warnings.warn(f"{path}: entropy_bits: {rows.size} row(s) above {math.log2(SANE_VOCAB):.0f} bits "
                      f"(first: row {rows[0]}, {entropy[rows[0]]:g}); no vocab_size in the provenance to "
                      "check them against", TraceWarning, stacklevel=3)
    for column in ("top1_prob", "surprisal_bits"):
        if (rows := np.flatnonzero(np.isinf(a[column]))).size:
            fail(column, rows, "value is not finite")
    top1 = a["top1_prob"]
    if (rows := np.flatnonzero(~((top1 > 0) & (top1 <= 1 + 1e-6)))).size:
        fail("top1_prob", rows, "top-1 probability outside (0, 1]")
    if (rows := np.flatnonzero(a["surprisal_bits"] < 0)).size:
        fail("surprisal_bits", rows, "surprisal is negative")
    if (rows := np.flatnonzero(np.diff(a["position"]) <= 0)).size:
        rows = rows + 1
        fail("position", rows, f"positions not strictly increasing (previous row {a['position'][rows[0] - 1]})")
    if (rows := np.flatnonzero(a["token_id"] < 0)).size:
        fail("token_id", rows, "negative token id")
