"""The gpu execution kind and prefill: hand-worked kernel times, the launch pipeline against a brute
force, shared byte accounting with the dataflow kind, roofline never beaten, end-to-end figures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import load_experiment, load_preset
from hwsim.config.model import ModelSpec
from hwsim.geometry import footprint
from hwsim.gpu import StepState, pipeline, time_kernels
from hwsim.kernels import Kernel, KernelPlan, decode_kernels, prefill_kernels
from hwsim.memory.transaction import DramTiming
from hwsim.runner import run_experiment
from tests.helpers import entropy_inputs, small_experiment

GPU = "a100-80gb-pcie"


def _state(steps: int = 1, layers: int = 1) -> StepState:
    zero, share = np.zeros(steps), np.ones((steps, layers))
    return StepState(zero, zero, share, share, zero, zero, share, share, np.ones(steps), zero)


@pytest.mark.parametrize("model", ["mamba-130m", "mamba-1.4b", "mamba2-130m", "mamba2-2.7b", "mamba-codestral-7b",
                                   "nvidia-mamba2-8b"])
@pytest.mark.parametrize("framework", ["mamba_ssm", "transformers"])
def test_kernels_read_exactly_the_footprint_weights(model, framework):
    spec = load_preset("model", model, ModelSpec)
    fp = footprint(spec)
    plan = decode_kernels(spec, fp, framework)
    assert sum(k.weight_bytes for k in plan.layer) == pytest.approx(fp.weight_bytes_per_layer, rel=1e-12)
    assert sum(k.weight_bytes for k in prefill_kernels(spec, fp).layer) == pytest.approx(
        fp.weight_bytes_per_layer, rel=1e-12)
    assert sum(k.matmul_flops for k in plan.layer) == pytest.approx(fp.matmul_flops_per_stream_layer, rel=1e-12)


def test_reference_kernel_counts():
    """mamba_ssm launches 9 kernels per layer for both architectures (research notes of Mamba.step /
    Mamba2.step); transformers' CUDA path 12 + 10 (Mamba-1) and 18 + 10 (Mamba-2: 2 GEMMs, the conv, the
    scan, 3 ops for A, 11 for the gated norm) with its 10-operation block norm and residual add."""
    for model, hf in (("mamba-1.4b", 22), ("mamba2-780m", 28)):
        spec = load_preset("model", model, ModelSpec)
        fp = footprint(spec)
        assert len(decode_kernels(spec, fp, "mamba_ssm").layer) == 9
        assert len(decode_kernels(spec, fp, "transformers").layer) == hf


def test_one_gemv_by_hand():
    """One 64 MiB fp16 weight matrix at batch 1 on the A100 PCIe preset: memory-bound, so the kernel
    takes DRAM latency + bytes / (peak x achieved efficiency) (refresh-stretched bus time is shorter)."""
    hw = load_experiment(overrides=[f"hardware={GPU}"]).hardware   # calibrated as run would
    dram = DramTiming.from_config(hw.dram)
    gemv = Kernel("w", "gemm", weight_bytes=64 * 2**20, act_in_bytes=8192, act_out_bytes=8192,
                  matmul_flops=2 * 32 * 2**20)
    plan = KernelPlan(layer=(), head=(gemv,), tail=(), n_layers=0)
    times = time_kernels(plan, hw, dram, tokens=1, state=_state(), cuda_graphs=True)
    ex = hw.execution
    expected = ex.dram_latency_ns + 64 * 2**20 / (hw.dram.peak_bandwidth_GBps * ex.dram_efficiency)
    assert times.body_ns[0, 0] == pytest.approx(expected, rel=1e-9)
    # graph launch, then the kernel (no gap before the first kernel on an idle device)
    assert times.step_ns[0] == pytest.approx(ex.graph_launch_ns + expected, rel=1e-9)
    eager = time_kernels(plan, hw, dram, tokens=1, state=_state(), cuda_graphs=False)
    assert eager.step_ns[0] == pytest.approx(ex.host_launch_ns + expected, rel=1e-9)


def test_compute_bound_gemm_by_hand():
    """4096 tokens through a 4096 x 4096 fp16 matrix: 137 GFLOP at the achieved tensor rate."""

    hw = load_experiment(overrides=[f"hardware={GPU}"]).hardware
    d = 4096
    gemm = Kernel("w", "gemm", weight_bytes=2.0 * d * d, act_in_bytes=2.0 * d, act_out_bytes=2.0 * d,
                  matmul_flops=2.0 * d * d)
    times = time_kernels(KernelPlan((), (gemm,), (), 0), hw, DramTiming.from_config(hw.dram), tokens=4096,
                         state=_state(), cuda_graphs=True)
    flops = 2.0 * d * d * 4096
    expected = hw.execution.dram_latency_ns + flops / (312e3 * hw.execution.matmul_efficiency)
    assert times.body_ns[0, 0] == pytest.approx(expected, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 20), st.booleans()), min_size=1, max_size=15),
       st.floats(0, 5))
def test_pipeline_matches_brute_force(kernels, gap):
    body = np.array([[k[0] for k in kernels]])
    host = np.array([k[1] for k in kernels])
    sync = np.array([k[2] for k in kernels])
    got = pipeline(body, host, sync, gap)[0]
    issued, end = 0.0, -gap
    for i, (b, h, s) in enumerate(kernels):
        if s:
            issued = max(issued, end)
        issued += h
        end = max(issued, end + gap) + b
        assert got[i] == pytest.approx(end, abs=1e-9)


def _gpu_exp(*overrides):
    return small_experiment(f"hardware={GPU}", "workload.batch_size=16", *overrides)


@pytest.mark.parametrize("framework", ["mamba_ssm", "transformers"])
@pytest.mark.parametrize("graphs", [True, False])
def test_gpu_run_conserves_bytes_and_respects_the_roofline(framework, graphs):
    exp = _gpu_exp(f"hardware.execution.framework={framework}", f"hardware.execution.cuda_graphs={str(graphs).lower()}")
    summary = run_experiment(exp, entropies=entropy_inputs()).summary
    assert summary["execution"] == "gpu"
    assert summary["simulated_over_bound"] >= 1.0
    # the kernels' DRAM bytes are the shared accounting's (weights, states, conv, LM head, embeddings)
    assert summary["dram_served_bytes"] == pytest.approx(summary["dram_bytes_total"], rel=1e-9)
    assert 0 < summary["saving_dram_bytes_per_token_pct"] < 100


def test_gpu_and_dataflow_share_the_state_bytes():
    entropies = entropy_inputs()
    gpu = run_experiment(_gpu_exp(), entropies=entropies).summary
    flow = run_experiment(_gpu_exp("hardware=hbm3-accel", "hardware.sram.residency.kind=lru",
                                   "hardware.sram.capacity_bytes=41943040", "hardware.sram.reserved_bytes=0"),
                          entropies=entropies).summary
    for key in ("dram_bytes_per_token_weights", "dram_bytes_per_token_ssm_state", "dram_bytes_per_token_conv_state",
                "low_precision_share"):
        assert gpu[key] == pytest.approx(flow[key], rel=1e-9)


def test_eager_is_never_faster_than_graphs_and_transformers_never_faster_than_mamba_ssm():
    entropies = entropy_inputs()
    times = {}
    for framework in ("mamba_ssm", "transformers"):
        for graphs in ("true", "false"):
            exp = _gpu_exp(f"hardware.execution.framework={framework}", f"hardware.execution.cuda_graphs={graphs}")
            times[framework, graphs] = run_experiment(exp, entropies=entropies).summary["step_latency_ns_mean"]
    assert times["mamba_ssm", "false"] >= times["mamba_ssm", "true"]
    assert times["transformers", "false"] >= times["mamba_ssm", "false"]


@pytest.mark.parametrize("hardware", [GPU, "hbm3-accel"])
def test_end_to_end_figures_beside_their_bounds(hardware):
    exp = small_experiment(f"hardware={hardware}", "workload.prompt_tokens=512", "workload.steps=17")
    summary = run_experiment(exp, entropies=entropy_inputs()).summary
    assert summary["phase"] == "end_to_end" and summary["steps"] == 16   # the prefill yields token 1
    assert summary["ttft_ns"] >= summary["bound_ttft_ns"] > 0
    assert summary["tpot_ns"] >= summary["bound_tpot_ns"] > 0
    assert summary["time_to_last_token_ns"] == pytest.approx(summary["ttft_ns"] + summary["simulated_time_ns"])
    assert summary["e2e_tokens_per_s"] == pytest.approx(
        8 * 17 / (summary["time_to_last_token_ns"] * 1e-9))
    assert summary["e2e_tokens_per_s"] <= summary["bound_e2e_tokens_per_s"]
    # prefill is compute-bound where decode is memory-bound
    assert summary["prefill_bound_matmul_time_ns"] > summary["prefill_bound_dram_time_ns"]


def test_prefill_grows_with_the_prompt_and_writes_the_final_state_once():
    short = run_experiment(small_experiment(f"hardware={GPU}", "workload.prompt_tokens=256",
                                            "workload.mode=prefill")).summary
    long = run_experiment(small_experiment(f"hardware={GPU}", "workload.prompt_tokens=[256, 1024]",
                                           "workload.mode=prefill")).summary
    assert long["prefill_tokens"] == 4 * 256 + 4 * 1024 and short["prefill_tokens"] == 8 * 256
    assert long["prefill_time_ns"] > short["prefill_time_ns"]
    assert long["prefill_matmul_flops"] == pytest.approx(short["prefill_matmul_flops"] * 5120 / 2048, rel=0.01)


def test_dataflow_decode_is_unchanged_by_a_zero_prompt():
    entropies = entropy_inputs()
    plain = run_experiment(small_experiment(), entropies=entropies).summary
    explicit = run_experiment(small_experiment("workload.prompt_tokens=0", "workload.mode=decode"),
                              entropies=entropies).summary
    assert plain == explicit


def test_gpu_rejects_what_it_does_not_model():
    from hwsim.errors import HwsimInputError

    with pytest.raises(HwsimInputError, match="detailed runs on execution kind dataflow"):
        small_experiment(f"hardware={GPU}", "run.fidelity=detailed")
    with pytest.raises(HwsimInputError, match="gate_on: current"):
        small_experiment(f"hardware={GPU}", "policy.gate_on=current")
    with pytest.raises(HwsimInputError, match="needs prompt_tokens"):
        small_experiment("workload.mode=prefill")


@pytest.mark.slow  # calibrates every GPU preset cold; .ci/run also runs the command itself
def test_validate_hw_command(tmp_path):
    from hwsim.cli import main

    assert main(["validate-hw", "--out", str(tmp_path)]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "validation.csv")
    assert len(table) >= 30 and (table.predicted > 0).all()
    # a prediction is never faster than its own roofline bound
    faster_is_lower = table.metric != "e2e_tokens_per_s"
    assert (table.predicted[faster_is_lower] >= table.bound[faster_is_lower]).all()
    assert (table.predicted[~faster_is_lower] <= table.bound[~faster_is_lower]).all()
    assert (tmp_path / "validation.png").stat().st_size > 0


def test_every_gpu_preset_loads_with_sources():
    from hwsim.config import Hardware

    for name in ("rtx-a5000", "rtx-4090", "a100-80gb-pcie", "a100-80gb-sxm", "h100-sxm", "h200",
                 "jetson-orin-nano", "jetson-orin-nano-super"):
        hw = load_preset("hardware", name, Hardware)
        assert hw.execution.kind == "gpu" and len(hw.execution.source) > 40
    peaks = {n: load_preset("hardware", n, Hardware).dram.peak_bandwidth_GBps
             for n in ("rtx-a5000", "rtx-4090", "a100-80gb-pcie", "a100-80gb-sxm", "h100-sxm", "h200",
                       "jetson-orin-nano", "jetson-orin-nano-super")}
    published = {"rtx-a5000": 768, "rtx-4090": 1008, "a100-80gb-pcie": 1935, "a100-80gb-sxm": 2039,
                 "h100-sxm": 3350, "h200": 4800, "jetson-orin-nano": 68, "jetson-orin-nano-super": 102}
    for name, value in published.items():
        assert peaks[name] == pytest.approx(value, rel=0.01), name


def test_experiment_loads_gpu_preset():
    exp = load_experiment(overrides=[f"hardware={GPU}", "model=mamba-1.4b"])
    assert exp.hardware.execution.kind == "gpu"


def test_dataflow_never_touches_the_gpu_model(monkeypatch):
    """The dataflow kind's figures do not depend on the gpu modules: with every gpu entry point made to
    fail, the default experiment gives the same summary. (When the gpu kind landed, the summary was
    also checked bit for bit against the code before it, commit f7de48a.)"""
    import hwsim.gpu
    import hwsim.runner

    overrides = ["workload.steps=96", "run.chunk_steps=32"]
    before = run_experiment(load_experiment(overrides=overrides)).summary

    def refuse(*args, **kwargs):
        raise AssertionError("the dataflow kind called the gpu model")

    class Refused:
        def __init__(self, *args, **kwargs):
            refuse()

    monkeypatch.setattr(hwsim.gpu, "time_kernels", refuse)
    monkeypatch.setattr(hwsim.runner, "GpuEngine", Refused)
    monkeypatch.setattr(hwsim.runner, "decode_kernels", refuse)
    after = run_experiment(load_experiment(overrides=overrides)).summary
    assert before.keys() == after.keys()
    assert all(before[k] == after[k] or (before[k] != before[k] and after[k] != after[k]) for k in before)


@pytest.mark.parametrize("name", ["gddr6", "gddr6x", "lpddr5-4266", "lpddr5-6400"])
def test_gpu_dram_technologies_run_on_the_detailed_level(name):
    """Sequential reads on one device/package of each new technology: at most the refresh ceiling
    1 - tRFC/tREFI of peak, and within 10% of it (row switches and bank timings cost a little)."""
    from hwsim.config.dram import DramPreset
    from hwsim.config.hardware import DramMemory
    from hwsim.memory.detailed import DetailedDram

    preset = load_preset("dram", name, DramPreset)
    memory = DramMemory(preset=preset, stacks=1, interleave_bytes=256, source="test: one device")
    nbytes = 4 * 2**20
    address = np.arange(0, nbytes, preset.organisation.access_bytes, dtype=np.int64)
    end_ns = float(DetailedDram(memory, queue_depth=128).submit(address, False, 0.0, keep_latency=False).max())
    share = nbytes / end_ns / memory.peak_bandwidth_GBps
    ceiling = 1 - preset.timings_ns.tRFC / preset.timings_ns.tREFI
    assert 0.9 * ceiling < share <= ceiling + 1e-9, (share, ceiling)
