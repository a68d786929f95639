"""Trace formats (DRAMsim3, Ramulator 2): round trips, malformed lines, the CLI, export-trace."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.errors import HwsimInputError
from hwsim.memory.dram_traces import RequestTrace, _read_fast, _read_lines, read_trace, write_trace


def sample() -> RequestTrace:
    return RequestTrace(np.array([0x1FF97000, 0x40, 0x80, 0x1000], dtype=np.int64),
                        np.array([False, True, False, True]), np.array([0.0, 3.0, 192.0, 200.0]), "dramsim3")


@pytest.mark.parametrize("fmt", ["dramsim3", "ramulator2"])
def test_round_trip(tmp_path, fmt):
    path = tmp_path / f"t.{fmt}"
    write_trace(path, sample(), fmt=fmt, tCK_ns=1.0)
    back = read_trace(path)
    assert back.format == fmt
    assert back.address.tolist() == sample().address.tolist()
    assert back.is_write.tolist() == sample().is_write.tolist()
    expected = sample().arrival_ns.tolist() if fmt == "dramsim3" else [0.0] * 4
    assert back.arrival_ns.tolist() == expected


def test_dramsim3_line_format(tmp_path):
    path = tmp_path / "t.trace"
    write_trace(path, sample(), fmt="dramsim3", tCK_ns=1.0)
    assert path.read_text().splitlines()[0] == "0x1FF97000 READ 0"


@pytest.mark.parametrize("text, message", [
    ("0x40 READ 1\n0x80 FETCH 2\n", "line 2: operation 'FETCH' is not READ or WRITE"),
    ("0x40 READ 1\n0xZZ READ 2\n", "line 2: address '0xZZ'"),
    ("0x40 READ x\n", "line 1: issue cycle 'x' is not an integer"),
    ("0x40 READ 5\n0x80 READ 2\n", "line 2: issue cycle goes backwards"),
    ("0x40 READ\n", "line 1: expected 'ADDRESS READ|WRITE CYCLE'"),
    ("LD 0x40\nXX 0x80\n", "line 2: operation 'XX' is not LD or ST"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.trace"
    path.write_text(text)
    with pytest.raises(HwsimInputError, match=message) as info:
        read_trace(path)
    assert str(path) in str(info.value)


def test_dram_run_cli(tmp_path, capsys):
    path = tmp_path / "seq.trace"
    path.write_text("".join(f"0x{i * 32:X} READ {i // 8}\n" for i in range(4000)))
    assert main(["dram", "run", str(path), "--preset", "hbm3-6400", "--queue-depth", "64"]) == 0
    out = capsys.readouterr().out
    print(out)
    for key in ("bandwidth_GBps", "latency_ns", "p99", "row_hit_rate", "activates", "refreshes", "energy_pJ"):
        assert key in out


def test_dram_run_cli_on_one_thread_prints_the_same(tmp_path, capsys):
    path = tmp_path / "mix.trace"
    path.write_text("".join(f"0x{(i * 7919 % 4096) * 64:X} {'WRITE' if i % 3 == 0 else 'READ'} {i // 2}\n"
                            for i in range(6000)))
    outputs = []
    for threads in ("1", "2"):
        assert main(["dram", "run", str(path), "--preset", "hbm2", "--threads", threads]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert main(["dram", "run", str(path), "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_dram_run_cli_frees_entries_at_the_column_command_on_request(tmp_path, capsys):
    # all at once through a shallow queue: entries freed at the column command admit requests sooner,
    # so the same reads finish no later and wait less in front of the queue
    path = tmp_path / "burst.trace"
    path.write_text("".join(f"0x{(i * 7919 % 65536) * 32:X} READ 0\n" for i in range(4000)))
    printed = {}
    for release in ("completion", "column"):
        assert main(["dram", "run", str(path), "--preset", "hbm2", "--queue-depth", "8",
                     "--queue-release", release]) == 0
        printed[release] = capsys.readouterr().out
    assert "freed at the column command" in printed["column"] and "freed at" not in printed["completion"]
    mean = {r: float(re.search(r"mean ([0-9.,]+)", out).group(1).replace(",", "")) for r, out in printed.items()}
    assert mean["column"] < mean["completion"]
    with pytest.raises(SystemExit) as bad:  # argparse: usage and the allowed values, exit 2
        main(["dram", "run", str(path), "--queue-release", "issue"])
    assert bad.value.code == 2 and "--queue-release" in capsys.readouterr().err


def test_dram_run_cli_rejects_bad_mapping(tmp_path, capsys):
    path = tmp_path / "s.trace"
    path.write_text("LD 0x40\n")
    assert main(["dram", "run", str(path), "--mapping", "RoQqBgCoCh"]) == 2
    assert "allowed: Ro, Ra, Bg, Ba, Co, Ch" in capsys.readouterr().err


def test_dram_presets_cli(capsys):
    assert main(["dram", "presets"]) == 0
    out = capsys.readouterr().out
    assert "hbm3-6400" in out and "819.2" in out


@pytest.mark.parametrize("fmt, first_word", [("dramsim3", "0x"), ("ramulator2", "LD")])
def test_export_trace_replays(tmp_path, monkeypatch, fmt, first_word):
    from helpers import entropy_inputs

    import hwsim.runner
    monkeypatch.setattr(hwsim.runner, "workload_entropies", lambda exp: entropy_inputs())
    exp_file = tmp_path / "e.yaml"
    exp_file.write_text("hardware: hbm3-accel\nmodel: {preset: mamba-130m, weight_bits: 4}\n"
                        "policy: {kind: threshold, threshold_bits: 1.0, low_bits: 4, high_bits: 16}\n"
                        "workload: {batch_size: 2, steps: 4}\n")
    out = tmp_path / f"t.{fmt}"
    assert main(["export-trace", str(exp_file), "--format", fmt, "--steps", "1", "--out", str(out)]) == 0
    trace = read_trace(out)
    assert out.read_text().startswith(first_word)
    assert (~trace.is_write).any()  # states stay in SRAM on this hardware: reads only
    assert len(trace.address) > 10_000


@settings(max_examples=60, deadline=None)
@given(requests=st.lists(st.tuples(st.integers(0, 2**40), st.booleans(), st.integers(0, 50),
                                   st.sampled_from(["", "\n", "# note\n", "  \n"])), min_size=1, max_size=40),
       fmt=st.sampled_from(["dramsim3", "ramulator2"]), chunks=st.integers(1, 7), tail_newline=st.booleans())
def test_the_parallel_parser_equals_the_line_parser(requests, fmt, chunks, tail_newline):
    """Cut into any number of pieces (blank and comment lines anywhere, at the cuts too), the compiled
    parser reads what the line-by-line parser reads."""
    lines, cycle = [], 0
    for address, write, step, filler in requests:
        cycle += step
        lines.append(f"0x{address:X} {'WRITE' if write else 'READ'} {cycle}\n" if fmt == "dramsim3"
                     else f"{'ST' if write else 'LD'} 0x{address:x}\n")
        lines.append(filler)
    text = "".join(lines)
    text = text if tail_newline else text.rstrip("\n")
    fast = _read_fast(np.frombuffer(text.encode(), dtype=np.uint8), fmt, 0.5, chunks)
    slow = _read_lines(Path("t"), text, fmt=fmt, tCK_ns=0.5)
    assert fast is not None
    for got, expected in zip(fast, (slow.address, slow.is_write, slow.arrival_ns)):
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_the_parallel_parser_sends_backward_cycles_to_the_line_parser(chunks):
    """A cycle that goes backwards, inside a piece or across a cut, is not taken by the fast path."""
    text = "".join(f"0x40 READ {c}\n" for c in [1, 2, 3, 9, 4, 5, 6, 7])
    assert _read_fast(np.frombuffer(text.encode(), dtype=np.uint8), "dramsim3", 1.0, chunks) is None


def test_a_cycle_beyond_2_to_the_53_is_an_error(tmp_path):
    path = tmp_path / "far.trace"
    path.write_text(f"0x40 READ 1\n0x80 READ {2**53}\n")
    with pytest.raises(HwsimInputError, match="line 2: issue cycle 9007199254740992 outside 0 .. 2"):
        read_trace(path)


def test_an_empty_trace_is_an_error(tmp_path):
    path = tmp_path / "empty.trace"
    path.write_text("")
    with pytest.raises(HwsimInputError, match="holds no requests"):
        read_trace(path)
