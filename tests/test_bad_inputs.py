"""Every bad input is one clear line on stderr and exit status 2: no traceback, no hang, no output.

Table-driven: each case is (id, argv, fragments). `{d}` in argv is a folder of prepared bad files; the
fragments must all appear in the error (they name the file and the key, or the flag). Every case runs
in-process through `hwsim.cli.main`, so an uncaught exception fails the test with its traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hwsim.cli import main
from hwsim.paths import CONFIGS_DIR, WORKLOADS_DIR

DEFAULT = str(CONFIGS_DIR / "experiments" / "default.yaml")
TRACE = WORKLOADS_DIR / "traces" / "prose-pydocs.parquet"

#: --set overrides of the default experiment that must fail, with what the message must name.
BAD_OVERRIDES = [
    ("name=../../../x", "name", "safe name"), ("name=/tmp/abs", "name"), ("name=.hidden", "name"),
    ("name=", "name"), ("name=a/b", "name"), ("name=[1]", "name"),
    ("workload.batch_size=true", "batch_size", "boolean"), ("workload.batch_size=0", "batch_size"),
    ("workload.batch_size=-3", "batch_size"), ("workload.batch_size=abc", "batch_size"),
    ("workload.batch_size=1.5", "batch_size"), ("workload.batch_size=99999999", "batch_size"),
    ("hardware.dma.queue_depth=1894510", "queue_depth"),
    ("workload.steps=0", "steps"), ("workload.steps=3e9", "steps"), ("workload.steps=1e400", "steps"),
    ("workload.steps=1.0e+400", "steps", "finite"), ("workload.steps=3000000000", "steps"),
    ("workload.steps=100000000", "steps x batch_size"), ("workload.steps=.nan", "steps"),
    ("workload.steps=!!binary aGVsbG8=", "steps"), ("workload.seed=-1", "seed"),
    ("workload.traces=[]", "traces"), ("workload.traces=nope", "traces"),
    ("workload.traces=[no-such-trace]", "workload.traces[0]", "no-such-trace"),
    ("workload.traces=[/nonexistent/t.parquet]", "workload.traces[0]", "not found"),
    ("workload.traces=[{a: 1}]", "traces"), ("workload.extra=1", "workload.extra", "allowed keys"),
    ("policy.low_bits=16", "low_bits", "below high_bits"), ("policy.low_bits=5", "low_bits"),
    ("policy.high_bits=4", "low_bits", "below high_bits"), ("policy.low_bits=true", "low_bits"),
    ("policy.threshold_bits=.nan", "threshold_bits", "NaN"), ("policy.threshold_bits=-1", "threshold_bits"),
    ("policy.threshold_bits=.inf", "threshold_bits"), ("policy.threshold_bits=abc", "threshold_bits"),
    ("policy.kind=nope", "policy", "nope"), ("policy.group_size=0", "group_size"),
    ("policy.scale_bits=7", "scale_bits"), ("policy.gate_on=later", "gate_on"), ("policy=nope", "policy", "nope"),
    ("policy={kind: threshold, low_bits: 16, high_bits: 4}", "low_bits"),
    ("policy={kind: hysteresis, min_dwell_steps: 0}", "min_dwell_steps"),
    ("policy={kind: hysteresis, low_bits: 8, high_bits: 8}", "low_bits"),
    ("policy={kind: speculative, rollback_threshold_bits: .nan}", "rollback_threshold_bits"),
    ("policy={kind: speculative, low_bits: 32}", "low_bits"),
    ("policy={kind: static, bits: 32}", "bits"), ("policy={kind: percentile, target_low_share: 1.5}",
                                                   "target_low_share"),
    ("policy={kind: percentile, calibration_tokens: 100000000}", "calibration_tokens"),
    ("policy={kind: percentile, calibration_tokens: 1e8}", "calibration_tokens"),
    ("policy={kind: percentile, threshold_bits: 1}", "threshold_bits", "allowed keys"),
    ("policy=[1, 2]", "policy"), ("model=nope", "model", "unknown model preset"),
    ("model=missing.yaml", "model", "not found"), ("model=./sub/missing.yaml", "model", "not found"),
    ("model.n_layers=0", "n_layers"), ("model.architecture=rnn", "architecture"),
    ("model.ngroups=3", "ngroups", "does not divide"), ("model.headdim=7", "headdim"),
    ("model.weight_bits=3", "weight_bits"), ("model.vocab_size=-5", "vocab_size"),
    ("model.d_state=true", "d_state"), ("model.dt_rank=0", "dt_rank"), ("model.source=", "source"),
    ("hardware=nope", "hardware", "nope"), ("hardware.sram.capacity_bytes=0", "capacity_bytes"),
    ("hardware.sram.capacity_bytes=1", "hardware.sram.capacity_bytes", "working set"),
    ("hardware.sram.residency.order=[ssm_state, ssm_state, weights]", "order", "twice"),
    ("hardware.sram.residency.order=[foo]", "order"), ("hardware.sram.residency.kind=fifo", "residency"),
    ("hardware.dram.interleave_bytes=100", "interleave_bytes", "power of two"),
    ("hardware.dram.interleave_bytes=16", "interleave_bytes", "burst"),
    ("hardware.dram.interleave_bytes=0", "interleave_bytes"), ("hardware.dram.stacks=0", "stacks"),
    ("hardware.dram.preset=nope", "hardware.dram.preset", "nope"),
    ("hardware.dram.data_rate_Gbps_per_pin=-1", "data_rate_Gbps_per_pin"),
    ("hardware.dma.queue_depth=0", "queue_depth"), ("hardware.compute.vector_GFLOPS=0", "vector_GFLOPS"),
    ("hardware.static_power_W=-1", "static_power_W"), ("hardware.sram.banks=yes", "banks"),
    ("run.fidelity=slow", "fidelity"), ("run.chunk_steps=0", "chunk_steps"), ("run.baseline=maybe", "baseline"),
    ("run.extra=1", "run.extra"), ("extra_section=1", "extra_section", "allowed keys"),
    ("k=[1,", "--set k", "syntax"), ("name=!!python/object:os.system", "--set name"), ("=4", "--set", "empty"),
    ("noequals", "--set", "dotted.key=value"), ("a..b=1", "--set", "empty part"),
    ("workload.batch_size.x=1", "workload.batch_size", "not a mapping"), ("workload={a: {b: 1}}", "workload.a"),
]

#: Experiment file contents that must fail (written to {d}/<id>.yaml), with the fragments to name.
BAD_EXPERIMENT_FILES = {
    "empty": ("", "must hold a mapping"), "list": ("- 1\n- 2\n", "must hold a mapping"),
    "scalar": ("42\n", "must hold a mapping"),
    "duplicate-top": ("name: a\nname: b\n", "duplicate key 'name'"),
    "duplicate-nested": ("workload:\n  steps: 4\n  steps: 8\n", "duplicate key 'steps'"),
    "syntax": ("a: [1, 2\n", "syntax error", "line"), "tabs": ("a:\n\t- 1\n", "syntax error"),
    "python-tag": ("name: !!python/object/apply:os.system [echo hi]\n", "constructor"),
    "unknown-section": ("nope: 1\n", "nope"),
    "missing-sections": ("name: x\n", "required key is missing"),
    "model-file-missing": ("hardware: hbm3-accel\nmodel: ./gone.yaml\npolicy: {kind: threshold}\n",
                           "model", "not found"),
    "preset-list": ("hardware: hbm3-accel\nmodel: list.yaml\npolicy: {kind: threshold}\n", "mapping"),
    "name-escape": ("name: ../../../x\nhardware: hbm3-accel\nmodel: mamba2-130m\npolicy: {kind: threshold}\n",
                    "name", "safe name"),
    "name-absolute": ("name: /etc/x\nhardware: hbm3-accel\nmodel: mamba2-130m\npolicy: {kind: threshold}\n",
                      "name"),
    "hardware-number": ("hardware: 5\nmodel: mamba2-130m\npolicy: {kind: threshold}\n", "hardware"),
}
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" + bytes(range(256))


def _bad_sweep(**fields) -> str:
    base = {"name": "s", "base": "default", "points": [{"model": "mamba2-130m", "workload.steps": 4}]}
    base.update(fields)
    return yaml.safe_dump(base)


BAD_SWEEP_FILES = {
    "sweep-name-escape": (_bad_sweep(name="../../x"), "name", "safe name"),
    "sweep-name-absolute": (_bad_sweep(name="/tmp/x"), "name"),
    "sweep-empty-axis": (_bad_sweep(grid={"workload.batch_size": []}), "grid", "empty axis"),
    "sweep-zip-unequal": (_bad_sweep(zip={"workload.batch_size": [1, 2], "workload.seed": [1]}), "zip"),
    "sweep-point-not-mapping": (_bad_sweep(points=[1]), "points"),
    "sweep-repeated-point": (_bad_sweep(points=[{"workload.steps": 4}] * 3), "repeats point 0"),
    "sweep-unknown-base": (_bad_sweep(base="nope"), "base", "nope"),
    "sweep-base-number": (_bad_sweep(base=5), "base"),
    "sweep-bad-value": (_bad_sweep(grid={"policy.low_bits": [5]}), "point 0", "low_bits"),
    "sweep-low-not-below-high": (_bad_sweep(grid={"policy.low_bits": [16]}), "low_bits", "below high_bits"),
    "sweep-keep-steps-no-match": (_bad_sweep(keep_steps={"workload.seed": 9}, keep_steps_all_below=0),
                                  "keep_steps"),
    "sweep-keep-below-negative": (_bad_sweep(keep_steps_all_below=-1), "keep_steps_all_below"),
    "sweep-quality-tokens": (_bad_sweep(quality_options={"tokens": 0}), "quality_options.tokens"),
    "sweep-extra-key": (_bad_sweep(grids={}), "grids"),
    "sweep-grid-list": (_bad_sweep(grid=[1, 2]), "grid"),
    "sweep-unknown-trace": (_bad_sweep(points=[{"workload.traces": ["nope-trace"]}]), "workload.traces[0]"),
    "sweep-too-small-sram": (_bad_sweep(points=[{"hardware.sram.capacity_bytes": 1}]),
                             "hardware.sram.capacity_bytes"),
    "sweep-duplicate-key": ("name: a\nname: b\npoints: [{}]\n", "duplicate key"),
    "sweep-bad-dotted-key": (_bad_sweep(points=[{"a..b": 1}]), "a..b"),
    "sweep-set-into-scalar": (_bad_sweep(points=[{"workload.steps.x": 1}]), "not a mapping"),
    "sweep-steps-bomb": (_bad_sweep(points=[{"workload.steps": 3000000000}]), "steps"),
}

DRAM_TRACES = {
    "empty.trace": b"", "comments.trace": b"# nothing\n\n", "binary.trace": BINARY,
    "huge-address.trace": b"0x1FFFFFFFFFFFFFFFFFF READ 1\n", "negative-cycle.trace": b"0x40 READ -1\n",
    "backwards.trace": b"0x40 READ 10\n0x80 READ 5\n", "bad-op.trace": b"0x40 FETCH 1\n",
    "fields.trace": b"0x40 READ\n", "not-hex.trace": b"0xZZ READ 1\n", "ram-bad-op.trace": b"LD 0x40\nXX 0x80\n",
    "ram-fields.trace": b"LD\n", "negative-address.trace": b"-64 READ 1\n", "float-cycle.trace": b"0x40 READ 1.5\n",
    "good.trace": b"0x40 READ 1\n0x80 WRITE 2\n",
}


def _cases() -> list[tuple[str, list[str], tuple[str, ...]]]:
    cases = []
    for override, *fragments in BAD_OVERRIDES:
        for command in ("validate", "run"):
            argv = [command, DEFAULT, "--set", override] + (["--out", "{o}/out"] if command == "run" else [])
            cases.append((f"{command}:{override}", argv, tuple(fragments)))
    for name, (_, *fragments) in BAD_EXPERIMENT_FILES.items():
        for command in ("validate", "run"):
            argv = [command, f"{{d}}/{name}.yaml"] + (["--out", "{o}/out"] if command == "run" else [])
            named = "list.yaml" if name == "preset-list" else f"{name}.yaml"  # the preset file is at fault
            cases.append((f"{command}:file:{name}", argv, (named, *fragments)))
    for name, extra in (("missing", ("cannot read",)), ("binary", ("not a text",)), ("nul", ("NUL",)),
                        ("folder", ("cannot read",))):
        for command in ("validate", "run"):
            cases.append((f"{command}:file:{name}", [command, f"{{d}}/{name}.yaml"], (f"{name}.yaml", *extra)))
    for name, (_, *fragments) in BAD_SWEEP_FILES.items():
        cases.append((f"sweep:{name}", ["sweep", f"{{d}}/{name}.yaml", "--out", "{o}/sweep-out",
                                        "--no-progress"], (f"{name}.yaml", *fragments)))
        cases.append((f"validate:{name}", ["validate", f"{{d}}/{name}.yaml"], (f"{name}.yaml", *fragments)))
    good_sweep = "{d}/good-sweep.yaml"
    cases += [
        ("sweep:missing-file", ["sweep", "{d}/nope.yaml"], ("nope.yaml", "cannot read")),
        ("sweep:binary-file", ["sweep", "{d}/binary.yaml"], ("binary.yaml", "not a text")),
        ("sweep:workers-0", ["sweep", good_sweep, "--workers", "0"], ("--workers",)),
        ("sweep:workers-negative", ["sweep", good_sweep, "--workers", "-2"], ("--workers",)),
        ("sweep:workers-huge", ["sweep", good_sweep, "--workers", "100000"], ("--workers",)),
        ("sweep:scheduler-foo", ["sweep", good_sweep, "--scheduler", "foo"], ("--scheduler", "foo")),
        ("sweep:scheduler-no-port", ["sweep", good_sweep, "--scheduler", "tcp://host"], ("--scheduler",)),
        ("sweep:scheduler-unreachable", ["sweep", good_sweep, "--scheduler", "tcp://127.0.0.1:1", "--out",
                                         "{o}/sweep-out"], ("--scheduler", "cannot reach")),
        ("sweep:out-is-file", ["sweep", good_sweep, "--out", "{d}/a-file"], ("--out", "a-file", "not a folder")),
        ("sweep:out-under-file", ["sweep", good_sweep, "--out", "{d}/a-file/sub"], ("--out", "a-file")),
        ("validate:sweep-with-set", ["validate", good_sweep, "--set", "a=1"], ("good-sweep.yaml", "--set")),
        ("run:out-is-file", ["run", DEFAULT, "--out", "{d}/a-file"], ("--out", "a-file")),
        ("run:out-under-file", ["run", DEFAULT, "--out", "{d}/a-file/x"], ("--out", "a-file")),
        ("run:missing-experiment", ["run", "{d}/nope.yaml"], ("nope.yaml", "cannot read")),
        ("report:missing-dir", ["report", "{d}/nope"], ("nope", "not a folder")),
        ("report:no-results", ["report", "{d}/empty-dir"], ("results.parquet",)),
        ("report:truncated-results", ["report", "{d}/truncated"], ("results.parquet", "not a readable")),
        ("report:not-a-sweep-table", ["report", "{d}/foreign"], ("results.parquet", "status")),
        ("report:a-file", ["report", "{d}/a-file"], ("a-file", "not a folder")),
        ("compare:one-hw", ["compare", "hbm3-accel"], ("HW", "two")),
        ("compare:same-hw-twice", ["compare", "hbm3-accel", "hbm3-accel"], ("HW", "twice")),
        ("compare:unknown-experiment", ["compare", "hbm3-accel", "lpddr5x-edge", "--experiment", "nope"],
         ("--experiment", "nope")),
        ("compare:set-empty-key", ["compare", "hbm3-accel", "lpddr5x-edge", "--set", "=4"], ("--set", "empty")),
        ("compare:set-bad-yaml", ["compare", "hbm3-accel", "lpddr5x-edge", "--set", "k=[1,"], ("--set k",)),
        ("compare:unknown-hardware", ["compare", "hbm3-accel", "nope-hw", "--out", "{o}/cmp"],
         ("hardware", "nope-hw")),
        ("compare:workers-0", ["compare", "hbm3-accel", "lpddr5x-edge", "--workers", "0"], ("--workers",)),
        ("compare:scheduler-foo", ["compare", "hbm3-accel", "lpddr5x-edge", "--scheduler", "bar", "--out",
                                   "{o}/cmp"], ("--scheduler",)),
        ("quality:tokens-0", ["quality", DEFAULT, "--tokens", "0"], ("--tokens",)),
        ("quality:streams-0", ["quality", DEFAULT, "--streams", "0"], ("--streams",)),
        ("quality:seeds-negative", ["quality", DEFAULT, "--seeds", "-1"], ("--seeds",)),
        ("quality:out-is-file", ["quality", DEFAULT, "--out", "{d}/a-file"], ("--out", "a-file")),
        ("quality:missing-file", ["quality", "{d}/nope.yaml", "--out", "{o}/q"], ("nope.yaml",)),
    ]
    for flag, value in (("--queue-depth", "0"), ("--queue-depth", "-1"), ("--queue-depth", "9999999"),
                        ("--stacks", "0"), ("--stacks", "-1"), ("--stacks", "1000"), ("--interleave-bytes", "0"),
                        ("--interleave-bytes", "-256"), ("--interleave-bytes", "100"),
                        ("--interleave-bytes", "16"), ("--mapping", ""), ("--mapping", "XxYy"),
                        ("--mapping", "RoRoBaBgCoCh"), ("--mapping", "robabgcoch"), ("--preset", "nope")):
        key = "interleave_bytes" if value in ("100", "16") else flag.lstrip("-") if flag != "--mapping" else "mapping"
        cases.append((f"dram-run:{flag}={value}", ["dram", "run", "{d}/good.trace", f"{flag}={value}"],
                      (key if flag != "--preset" else "nope",)))
    for name in DRAM_TRACES:
        if name != "good.trace":
            cases.append((f"dram-run:trace:{name}", ["dram", "run", f"{{d}}/{name}"], (name,)))
    cases.append(("dram-run:trace-missing", ["dram", "run", "{d}/gone.trace"], ("gone.trace", "cannot read")))
    cases.append(("dram-run:trace-folder", ["dram", "run", "{d}/empty-dir"], ("empty-dir", "cannot read")))
    cases.append(("dram-calibrate:unknown-preset", ["dram", "calibrate", "--preset", "nope"], ("nope",)))
    for steps in ("0", "-5"):
        cases.append((f"export-trace:steps={steps}", ["export-trace", DEFAULT, "--steps", steps, "--out",
                                                      "{o}/x.trace"], ("--steps",)))
    cases += [
        ("export-trace:out-is-folder", ["export-trace", DEFAULT, "--out", "{d}/empty-dir"], ("--out", "folder")),
        ("export-trace:out-under-file", ["export-trace", DEFAULT, "--out", "{d}/a-file/x.trace"],
         ("--out", "a-file")),
        ("export-trace:missing-experiment", ["export-trace", "{d}/nope.yaml", "--out", "{o}/x.trace"],
         ("nope.yaml",)),
        ("export-trace:bad-set", ["export-trace", DEFAULT, "--set", "workload.steps=0", "--out", "{o}/x.trace"],
         ("steps",)),
        ("export-trace:no-dram", ["export-trace", DEFAULT, "--set", "hardware.dram=null", "--out",
                                  "{o}/x.trace"], ("hardware.dram",)),
    ]
    for name, fragments in TRACE_FILES_FRAGMENTS.items():
        cases.append((f"trace-stats:{name}", ["trace", "stats", f"{{d}}/{name}"], (name, *fragments)))
        cases.append((f"run:trace:{name}", ["run", DEFAULT, "--set", f"workload.traces=[{{d}}/{name}]", "--out",
                                             "{o}/out"], (name, "workload.traces[0]", *fragments)))
    cases += [
        ("trace-stats:unknown-name", ["trace", "stats", "no-such-trace"], ("no-such-trace", "unknown trace")),
        ("trace-stats:missing-file", ["trace", "stats", "{d}/gone.parquet"], ("gone.parquet", "not found")),
        ("trace-stats:wrong-suffix", ["trace", "stats", "{d}/a-file.txt"], ("a-file.txt", "unknown trace file")),
        ("trace-stats:plot-into-file", ["trace", "stats", str(TRACE), "--plot", "{d}/a-file/x.png"],
         ("a-file",)),
    ]
    extract = ["trace", "extract", "--model", "{d}/empty-dir", "--text", "{d}/a-file", "--mode", "score",
               "--out", "{o}/t.parquet"]
    for flag, value in (("--max-tokens", "0"), ("--max-tokens", "-4"), ("--context", "0"), ("--context", "1"),
                        ("--stride", "0"), ("--stride", "5000"), ("--threads", "0"), ("--temperature", "-1"),
                        ("--temperature", "nan"), ("--out", "{o}/t.csv"), ("--out", "{d}/a-file/t.parquet"),
                        ("--text", "{d}/gone.txt")):
        cases.append((f"trace-extract:{flag}={value}", [*extract, f"{flag}={value}"], (flag,)))
    cases += [
        ("trace-source:max-chars-0", ["trace", "source", "pydocs", "--start-topic", "if", "--max-chars", "0",
                                      "--out", "{o}/t.txt"], ("--max-chars",)),
        ("trace-source:unknown-topic", ["trace", "source", "pydocs", "--start-topic", "nope-topic", "--max-chars",
                                        "10", "--out", "{o}/t.txt"], ("--start-topic", "nope-topic")),
        ("trace-source:out-under-file", ["trace", "source", "stdlib", "json", "--out", "{d}/a-file/t.txt"],
         ("--out", "a-file")),
        ("trace-source:unknown-module", ["trace", "source", "stdlib", "no_such_module_x", "--out", "{o}/t.txt"],
         ("no_such_module_x",)),
    ]
    return cases


#: Trace files prepared by `bad_folder` and what the error must say about each.
TRACE_FILES_FRAGMENTS = {
    "truncated.parquet": ("not a readable Parquet",), "corrupt-page.parquet": (),
    "inf.csv": ("entropy_bits", "not finite"), "nan.csv": ("entropy_bits",),
    "over-vocab.csv": ("entropy_bits", "vocab_size"), "vocab-abc.csv": ("vocab_size",),
    "vocab-negative.csv": ("vocab_size",), "no-columns.csv": ("missing column",), "empty.csv": ("empty",),
    "binary.csv": ("not a readable CSV",), "bad-provenance.csv": ("provenance",),
    "vocab-abc.parquet": ("vocab_size",), "negative-entropy.csv": ("negative",),
    "top1-zero.csv": ("top1_prob",), "positions.csv": ("position",), "text-entropy.csv": ("not a number",),
}
CASES = _cases()


def _trace_frame(changes: dict | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"position": range(6), "token_id": range(6), "token_text": list("abcdef"),
                          "entropy_bits": [0.5, 1.0, 2.0, 0.1, 3.0, 1.5], "top1_prob": [0.9] * 6,
                          "surprisal_bits": [0.2] * 6})
    for (column, row), value in (changes or {}).items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    from hwsim.traces.format import write_trace

    d = tmp_path_factory.mktemp("bad")
    for name, (text, *_) in {**BAD_EXPERIMENT_FILES, **BAD_SWEEP_FILES}.items():
        (d / f"{name}.yaml").write_text(text)
    (d / "list.yaml").write_text("- 1\n")
    (d / "binary.yaml").write_bytes(BINARY)
    (d / "nul.yaml").write_text("name: a\x00b\n")
    (d / "folder.yaml").mkdir()
    (d / "good-sweep.yaml").write_text(_bad_sweep())
    (d / "a-file").write_text("x")
    (d / "a-file.txt").write_text("x")
    (d / "empty-dir").mkdir()
    for name, data in DRAM_TRACES.items():
        (d / name).write_bytes(data)
    (d / "truncated").mkdir()
    table = pd.DataFrame({"point_hash": ["a"], "status": ["ok"]})
    table.to_parquet(d / "truncated" / "results.parquet")
    data = (d / "truncated" / "results.parquet").read_bytes()
    (d / "truncated" / "results.parquet").write_bytes(data[: len(data) // 2])
    (d / "foreign").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(d / "foreign" / "results.parquet")
    # traces
    data = TRACE.read_bytes()
    (d / "truncated.parquet").write_bytes(data[: len(data) // 3])
    middle = bytearray(data)
    middle[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    (d / "corrupt-page.parquet").write_bytes(bytes(middle))
    write_csv = {
        "inf.csv": (_trace_frame({("entropy_bits", 2): float("inf")}), None),
        "nan.csv": (_trace_frame({("entropy_bits", 2): float("nan")}), None),
        "over-vocab.csv": (_trace_frame({("entropy_bits", 2): 1e9}), {"vocab_size": 16}),
        "vocab-abc.csv": (_trace_frame(), {"vocab_size": "abc"}),
        "vocab-negative.csv": (_trace_frame(), {"vocab_size": -5}),
        "negative-entropy.csv": (_trace_frame({("entropy_bits", 1): -1.0}), None),
        "top1-zero.csv": (_trace_frame({("top1_prob", 1): 0.0}), None),
        "positions.csv": (_trace_frame({("position", 3): 0}), None),
        "text-entropy.csv": (_trace_frame({("entropy_bits", 3): "high"}), None),
    }
    for name, (frame, provenance) in write_csv.items():
        frame.to_csv(d / name, index=False)
        if provenance is not None:
            (d / f"{name}.json").write_text(json.dumps(provenance))
    (d / "no-columns.csv").write_text("a,b\n1,2\n")
    (d / "empty.csv").write_text("")
    (d / "binary.csv").write_bytes(BINARY)
    _trace_frame().to_csv(d / "bad-provenance.csv", index=False)
    (d / "bad-provenance.csv.json").write_text("{not json")
    write_trace(d / "vocab-abc.parquet", _trace_frame(), {"vocab_size": "abc"})
    return d


def test_enough_cases():
    assert len(CASES) >= 150, len(CASES)
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(bad_folder, tmp_path, capsys, argv, fragments, monkeypatch):
    monkeypatch.chdir(bad_folder)
    argv = [a.replace("{d}", str(bad_folder)).replace("{o}", str(tmp_path)) for a in argv]
    before = sorted(p.name for p in bad_folder.iterdir())
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse's own usage errors are exit 2 too
        rc = exit_.code
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, f"exit {rc}; stderr: {err}; stdout: {captured.out[-500:]}"
    assert "Traceback" not in err + captured.out
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("hwsim: error:", "hwsim ")), err
    if not err.startswith("usage:"):
        assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment.replace("{d}", str(bad_folder)) in err, f"{fragment!r} not in {err!r}"
    assert not list(tmp_path.iterdir()), "output written for a bad input"
    assert sorted(p.name for p in bad_folder.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores modes")
def test_read_only_out_folder(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["run", DEFAULT, "--out", str(folder / "x")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        folder.chmod(0o700)
        shutil.rmtree(folder)
