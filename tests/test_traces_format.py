"""Trace files: round trips, and each malformed file fails naming the file, the row and the problem."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import HwsimInputError
from hwsim.traces import load_trace
from hwsim.traces.format import COLUMNS, read_trace, write_trace
from hwsim.traces.stats import entropy_table, plot_histograms

VOCAB = 16


def good_frame(n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    entropy = rng.uniform(0.0, math.log2(VOCAB), n)
    surprisal = rng.uniform(0.0, 6.0, n)
    surprisal[-1] = np.nan
    return pd.DataFrame({"position": np.arange(n), "token_id": rng.integers(0, VOCAB, n),
                         "token_text": [f"t{i}" for i in range(n)], "entropy_bits": entropy,
                         "top1_prob": rng.uniform(0.1, 1.0, n), "surprisal_bits": surprisal})


def write(tmp_path, frame, name="t.parquet", provenance=None):
    return write_trace(tmp_path / name, frame, provenance or {"vocab_size": VOCAB, "mode": "score"})


def test_parquet_round_trip_reads_arrays_and_provenance(tmp_path):
    frame = good_frame()
    trace = load_trace(write(tmp_path, frame))
    assert trace.name == "t" and len(trace) == 8
    assert trace.entropy_bits.dtype == np.float64 and trace.token_id.dtype == np.int64
    np.testing.assert_array_equal(trace.entropy_bits, frame["entropy_bits"])
    assert np.isnan(trace.surprisal_bits[-1])
    assert trace.provenance == {"vocab_size": VOCAB, "mode": "score"}
    assert trace.token_text is None
    assert load_trace(tmp_path / "t.parquet", with_text=True).token_text == tuple(frame["token_text"])
    with pytest.raises(ValueError):
        trace.entropy_bits[0] = 1.0  # read-only: the simulator cannot mutate a shared workload


def test_parquet_is_zstd_with_provenance_key(tmp_path):
    import pyarrow.parquet as pq

    path = write(tmp_path, good_frame())
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert json.loads(meta.metadata[b"hwsim.provenance"])["vocab_size"] == VOCAB


def test_csv_with_sidecar_provenance(tmp_path):
    frame = good_frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert load_trace(tmp_path / "t.csv").provenance == {}
    (tmp_path / "t.csv.json").write_text(json.dumps({"vocab_size": VOCAB}))
    trace = load_trace(tmp_path / "t.csv", with_text=True)
    assert trace.provenance == {"vocab_size": VOCAB} and trace.token_text[0] == "t0"
    np.testing.assert_allclose(trace.entropy_bits, frame["entropy_bits"])


def expect_error(path, *fragments):
    with pytest.raises(HwsimInputError) as info:
        read_trace(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_column(tmp_path):
    frame = good_frame().drop(columns="entropy_bits")
    frame.to_csv(tmp_path / "t.csv", index=False)
    expect_error(tmp_path / "t.csv", "missing column(s) entropy_bits")


def test_missing_column_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(good_frame().drop(columns="position")), tmp_path / "t.parquet")
    expect_error(tmp_path / "t.parquet", "missing column(s) position")


def test_nan_entropy(tmp_path):
    frame = good_frame()
    frame.loc[3, "entropy_bits"] = np.nan
    expect_error(write(tmp_path, frame), "entropy_bits", "row 3", "NaN")


def test_negative_entropy(tmp_path):
    frame = good_frame()
    frame.loc[5, "entropy_bits"] = -0.5
    expect_error(write(tmp_path, frame), "entropy_bits", "row 5", "negative")


def test_entropy_above_log2_vocab(tmp_path):
    frame = good_frame()
    frame.loc[2, "entropy_bits"] = math.log2(VOCAB) + 0.1
    expect_error(write(tmp_path, frame), "entropy_bits", "row 2", "log2(vocab_size=16)")


def test_entropy_without_vocab_is_bounded_only_by_a_warning(tmp_path):
    frame = good_frame()
    frame.loc[2, "entropy_bits"] = 20.0  # plausible for a 2^20-token vocabulary: silent
    assert len(read_trace(write(tmp_path, frame, provenance={"mode": "score"}))) == 8
    frame.loc[2, "entropy_bits"] = 1e9  # no vocabulary gives that: loads, with a warning
    with pytest.warns(UserWarning, match="above 24 bits"):
        assert len(read_trace(write(tmp_path, frame, provenance={"mode": "score"}))) == 8


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_non_finite_entropy(tmp_path, value):
    frame = good_frame()
    frame.loc[3, "entropy_bits"] = value
    expect_error(write(tmp_path, frame), "entropy_bits", "row 3", "not finite")


@pytest.mark.parametrize("vocab", ["abc", -5, 1, True, 1.5])
def test_bad_vocab_size_in_provenance(tmp_path, vocab):
    expect_error(write(tmp_path, good_frame(), provenance={"vocab_size": vocab}), "vocab_size")


def test_non_monotone_positions(tmp_path):
    frame = good_frame()
    frame.loc[4, "position"] = 2
    expect_error(write(tmp_path, frame), "position", "row 4", "not strictly increasing")


def test_empty_trace(tmp_path):
    expect_error(write(tmp_path, good_frame().iloc[:0]), "empty trace")


def test_empty_csv_file(tmp_path):
    (tmp_path / "t.csv").write_text("")
    expect_error(tmp_path / "t.csv", "empty trace")


def test_non_numeric_value_in_csv(tmp_path):
    frame = good_frame().astype({"entropy_bits": object})
    frame.loc[1, "entropy_bits"] = "high"
    frame.to_csv(tmp_path / "t.csv", index=False)
    expect_error(tmp_path / "t.csv", "entropy_bits", "row 1", "not a number")


def test_unknown_file_type_and_missing_file(tmp_path):
    (tmp_path / "t.txt").write_text("x")
    expect_error(tmp_path / "t.txt", "unknown trace file type")
    expect_error(tmp_path / "nope.parquet", "not found")


def test_columns_are_the_documented_ones():
    assert COLUMNS == ("position", "token_id", "token_text", "entropy_bits", "top1_prob", "surprisal_bits")


def test_stats_table_and_plot(tmp_path):
    frame = good_frame(200)
    trace = load_trace(write(tmp_path, frame))
    table = entropy_table([trace])
    h = frame["entropy_bits"].to_numpy()
    assert table.loc["t", "tokens"] == 200
    assert table.loc["t", "entropy_p50_bits"] == pytest.approx(np.median(h))
    assert table.loc["t", "share_under_1_bits"] == pytest.approx((h < 1).mean())
    out = plot_histograms([trace, trace], tmp_path / "h.png")
    assert out.stat().st_size > 1000


def test_corrupt_parquet(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"PAR1 this is not parquet")
    expect_error(tmp_path / "t.parquet", "not a readable Parquet file")
