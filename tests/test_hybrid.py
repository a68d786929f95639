"""Hybrid stacks: one-layer cases worked out by hand per kind, invariants, presets, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import load_experiment
from hwsim.config.loading import known_presets, load_preset
from hwsim.config.model import ModelSpec
from hwsim.errors import HwsimInputError
from hwsim.geometry import footprint
from hwsim.kv import kv_plan
from hwsim.runner import simulate_experiment
from hwsim.sizing import kv_position_bytes, state_bytes
from hwsim.stack import expected_distinct_experts

HYBRID_PRESETS = [name for name in known_presets("model")
                  if load_preset("model", name, ModelSpec).architecture == "hybrid"]

TINY_MAMBA2 = {"kind": "mamba2", "d_state": 16, "d_conv": 4, "headdim": 64, "ngroups": 1}


def tiny_hybrid(kinds: dict, pattern: dict, n_layers: int = 1, **fields) -> dict:
    return {"name": "tiny-hybrid", "architecture": "hybrid", "source": "test: hand-sized", "n_layers": n_layers,
            "d_model": 64, "vocab_size": 256, "tie_embeddings": True, "layer_kinds": kinds, "pattern": pattern,
            **fields}


def experiment(model: dict, policy: dict | None = None, **workload):
    raw = {"hardware": {"preset": "hbm3-accel", "sram": {"residency": {"order": []}}}, "model": model,
           "policy": policy or {"kind": "static", "bits": 16},
           "workload": {"batch_size": 2, "steps": 2, "seed": 0, **workload}, "run": {"baseline": False}}
    return load_experiment(raw=raw)


ATTENTION_ONLY = tiny_hybrid({"attn": {"kind": "attention", "q_heads": 4, "kv_heads": 2, "head_dim": 16}},
                             {"default": ["attn"]})


def test_kv_bytes_at_context_by_hand():
    # one attention layer, 2 KV heads x head_dim 16: K and V = 2 x 2 x 16 = 64 elements per position,
    # 128 B at fp16. Batch 2 at context 100: step 0 reads 2 x 100 x 128 = 25600 B and appends 2 x 128 B;
    # step 1 reads 2 x 101 x 128 = 25856 B.
    exp = experiment(ATTENTION_ONLY, context_tokens=100)
    _, steps = simulate_experiment(exp, [np.full(100, 0.5)], keep_steps=True)
    assert steps["dram_read_bytes_kv_cache"].tolist() == [25600.0, 25856.0]
    assert steps["dram_write_bytes_kv_cache"].tolist() == [256.0, 256.0]
    # int4 with a 16-bit scale per 64 elements: 64 x 4 / 8 + 2 = 34 B per position
    assert float(kv_position_bytes(64, "int4", 64, 16)) == 34.0
    exp4 = experiment({**ATTENTION_ONLY, "kv_precision": "int4"}, context_tokens=100)
    _, steps4 = simulate_experiment(exp4, [np.full(100, 0.5)], keep_steps=True)
    assert steps4["dram_read_bytes_kv_cache"].tolist() == [2 * 100 * 34.0, 2 * 101 * 34.0]


def test_sliding_window_caps_the_positions_read():
    windowed = tiny_hybrid({"attn": {"kind": "attention", "q_heads": 4, "kv_heads": 2, "head_dim": 16,
                                     "sliding_window": 64}}, {"default": ["attn"]})
    _, steps = simulate_experiment(experiment(windowed, context_tokens=100), [np.full(100, 0.5)], keep_steps=True)
    assert steps["dram_read_bytes_kv_cache"].tolist() == [2 * 64 * 128.0] * 2


def test_mla_caches_one_latent_per_position():
    mla = tiny_hybrid({"attn": {"kind": "attention", "q_heads": 4, "mla": {
        "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16}}},
        {"default": ["attn"]})
    _, steps = simulate_experiment(experiment(mla, context_tokens=10), [np.full(100, 0.5)], keep_steps=True)
    assert steps["dram_read_bytes_kv_cache"].iloc[0] == 2 * 10 * (32 + 8) * 2.0


@pytest.mark.parametrize(("experts", "k", "tokens", "expected"), [
    (8, 2, 1, 2.0),                       # one token: exactly its k experts
    (8, 2, 2, 8 * (1 - (6 / 8) ** 2)),    # 3.5: the second token misses a given expert with p 3/4
    (16, 2, 64, 16 * (1 - (14 / 16) ** 64)),
    (4, 4, 3, 4.0),                       # k = E: every expert
])
def test_expected_distinct_experts_by_hand(experts, k, tokens, expected):
    assert float(expected_distinct_experts(experts, k, tokens)) == pytest.approx(expected, rel=1e-12)


def test_expected_distinct_experts_matches_sampling():
    rng = np.random.default_rng(0)
    experts, k, tokens, trials = 32, 4, 12, 4000
    picks = np.argsort(rng.random((trials, tokens, experts)), axis=2)[:, :, :k]
    distinct = np.array([len(np.unique(trial)) for trial in picks])
    assert distinct.mean() == pytest.approx(float(expected_distinct_experts(experts, k, tokens)), rel=0.01)


@settings(max_examples=60, deadline=None)
@given(experts=st.integers(1, 512), k=st.integers(1, 16), tokens=st.integers(1, 4096))
def test_distinct_experts_between_k_and_min_of_e_and_kb(experts, k, tokens):
    k = min(k, experts)
    d = float(expected_distinct_experts(experts, k, tokens))
    more = float(expected_distinct_experts(experts, k, tokens + 1))
    assert k - 1e-9 <= d <= min(experts, k * tokens) + 1e-9
    assert more >= d - 1e-9


def test_moe_layer_reads_only_routed_experts_by_hand():
    # 8 experts of 3 x 64 x 32 = 6144 params (12288 B at fp16), 2 per token, batch 2: 3.5 experts
    # expected -> 43008 B per step; the router 64 x 8 and the pre-norm 64 are dense weights.
    moe = tiny_hybrid({"moe": {"kind": "moe", "experts": 8, "experts_per_token": 2, "expert_hidden": 32}},
                      {"default": ["moe"]})
    _, steps = simulate_experiment(experiment(moe), [np.full(100, 0.5)], keep_steps=True)
    assert steps["dram_read_bytes_experts"].tolist() == [3.5 * 12288] * 2
    assert steps["dram_read_bytes_weights"].iloc[0] == (64 * 8 + 64) * 2.0


def test_gated_deltanet_state_bytes_by_hand():
    # Qwen3-Next's Gated DeltaNet: 32 value heads, each a 128 x 128 state: 524288 elements, 1 MiB at
    # fp16; at 4 bits with a 16-bit scale per 64 elements 262144 + 8192 x 2 = 278528 B.
    qwen = load_preset("model", "qwen3-next-80b-a3b", ModelSpec)
    stack = footprint(qwen).stack
    assert stack.linear_state_elements[0] == 32 * 128 * 128
    assert stack.linear_state_elements[3] == 0          # layer 3 is full attention
    assert float(state_bytes(32 * 128 * 128, 16, 64, 16)) == 2**20
    assert float(state_bytes(32 * 128 * 128, 4, 64, 16)) == 278528
    # conv state over q, k, v: (2 x 16 x 128 + 32 x 128) x 4 = 32768 elements per layer
    assert stack.conv_state_elements[0] == (2 * 16 * 128 + 32 * 128) * 4


def test_gate_states_selects_what_the_gate_touches():
    gdn = tiny_hybrid({"gdn": {"kind": "gated_deltanet", "key_heads": 2, "value_heads": 2, "key_head_dim": 16,
                               "value_head_dim": 16}}, {"default": ["gdn"]})
    low = {"kind": "threshold", "threshold_bits": 10.0, "low_bits": 4}   # every known entropy is low
    gated = simulate_experiment(experiment(gdn, low, steps=3), [np.full(100, 0.5)])[0]
    ungated = simulate_experiment(experiment(gdn, {**low, "gate_states": ["ssm"]}, steps=3), [np.full(100, 0.5)])[0]
    assert gated["dram_bytes_per_token_ssm_state"] < ungated["dram_bytes_per_token_ssm_state"]
    # 2 x 16 x 16 = 512 elements: fp16 1024 B read and written per stream and step, ungated
    assert ungated["dram_bytes_per_token_ssm_state"] == 2 * 1024.0


def test_hybrid_of_one_mamba_kind_equals_the_pure_model():
    pure = load_preset("model", "mamba2-130m", ModelSpec).model_dump()
    kind = {"kind": "mamba2", "d_state": pure["d_state"], "d_conv": pure["d_conv"], "expand": pure["expand"],
            "headdim": pure["headdim"], "ngroups": pure["ngroups"]}
    hybrid = {**{k: v for k, v in pure.items() if k not in ("d_state", "d_conv", "expand", "headdim", "ngroups",
                                                            "dt_rank", "layer_kinds", "pattern")},
              "architecture": "hybrid", "layer_kinds": {"mamba": kind}, "pattern": {"default": ["mamba"]}}
    runs = []
    for model in (pure, hybrid):
        raw = {"hardware": "hbm3-accel", "model": model, "policy": {"kind": "threshold", "threshold_bits": 2.0},
               "workload": {"batch_size": 8, "steps": 48, "seed": 1}, "run": {"baseline": False}}
        runs.append(simulate_experiment(load_experiment(raw=raw), [np.linspace(0, 4, 300)])[0])
    assert footprint(ModelSpec.model_validate(hybrid)).total_params == footprint(
        ModelSpec.model_validate(pure)).total_params
    assert runs[0] == runs[1]


JAMBA_LIKE = tiny_hybrid({"mamba": {"kind": "mamba1", "d_state": 8}, "attn": {"kind": "attention", "q_heads": 4},
                          "moe": {"kind": "moe", "experts": 4, "experts_per_token": 1, "expert_hidden": 64},
                          "mlp": {"kind": "mlp", "hidden": 128}},
                         {"default": ["mamba", "mlp"], "indices": {"attn": [1], "moe": [1, 3]}}, n_layers=4)


@settings(max_examples=8, deadline=None)
@given(short=st.integers(0, 3000), extra=st.integers(1, 3000))
def test_traffic_grows_with_context(short, extra):
    def dram(context):
        summary, _ = simulate_experiment(experiment(JAMBA_LIKE, steps=4, context_tokens=context),
                                         [np.full(100, 0.5)])
        return summary
    a, b = dram(short), dram(short + extra)
    assert b["dram_bytes_per_token_kv_cache"] > a["dram_bytes_per_token_kv_cache"]
    assert b["dram_bytes_per_token"] > a["dram_bytes_per_token"]
    assert b["simulated_time_ns"] >= a["simulated_time_ns"]


def test_pattern_places_kinds():
    spec = ModelSpec.model_validate(JAMBA_LIKE)
    assert spec.stack_names == (("mamba", "mlp"), ("attn", "moe"), ("mamba", "mlp"), ("mamba", "moe"))
    block = ModelSpec.model_validate(tiny_hybrid(
        {"m": TINY_MAMBA2, "a": {"kind": "attention", "q_heads": 4}}, {"block": "mma", "symbols": {"m": ["m"], "a": ["a"]}},
        n_layers=5))
    assert block.stack_names == (("m",), ("m",), ("a",), ("m",), ("m",))


def test_kv_gate_stores_low_entries_and_reads_them_later():
    # context 0, every step low: at step t the stream has t cached entries, all low (after step 0)
    fresh = np.zeros((4, 1), bool)
    fresh[0] = True
    plan = kv_plan((0,), fresh, np.ones((4, 1), bool), windows=(0, 2))
    assert plan.context[:, 0].tolist() == [0, 1, 2, 3]
    assert plan.low_cached[0][:, 0].tolist() == [0, 1, 2, 3]
    assert plan.low_cached[2][:, 0].tolist() == [0, 1, 2, 2]
    policy = {"kind": "threshold", "threshold_bits": 10.0, "low_bits": 4, "gate_kv": True, "kv_low_precision": "int4"}
    gated = simulate_experiment(experiment(ATTENTION_ONLY, policy, steps=6, context_tokens=4), [np.full(100, 0.5)])[0]
    plain = simulate_experiment(experiment(ATTENTION_ONLY, {**policy, "gate_kv": False}, steps=6, context_tokens=4),
                                [np.full(100, 0.5)])[0]
    assert gated["dram_bytes_per_token_kv_cache"] < plain["dram_bytes_per_token_kv_cache"]
    assert 0 < gated["kv_low_precision_share"] < 1
    assert plain["kv_low_precision_share"] == 0


@pytest.mark.parametrize("name", HYBRID_PRESETS)
def test_hybrid_preset_params_within_one_percent(name):
    spec = load_preset("model", name, ModelSpec)
    fp = footprint(spec)
    assert "config" in spec.source
    if spec.declared_params is None:   # the card gives only a rounded figure; the preset file says why
        assert "declared_params:" in (Path(__file__).parents[1] / "configs" / "models" / f"{name}.yaml").read_text()
        pytest.skip(f"{name}: no published count to 1% (derived {fp.total_params:,})")
    error = fp.total_params / spec.declared_params - 1
    print(f"{name}: derived {fp.total_params:,} vs declared {spec.declared_params:,} ({100 * error:+.2f}%)")
    assert abs(error) <= 0.01


def test_presets_cover_the_issue():
    assert {"jamba-1.5-mini", "qwen3-next-80b-a3b", "nemotron-h-8b", "kimi-linear-48b-a3b", "falcon-h1-1.5b",
            "falcon-h1-7b", "granite-4.0-h-tiny", "zamba2-2.7b"} <= set(HYBRID_PRESETS)


@pytest.mark.parametrize(("change", "key"), [
    ({"pattern": {"default": ["attn", "nope"]}}, "model"),
    ({"pattern": {"block": "ax", "symbols": {"a": ["attn"]}}}, "model.pattern"),
    ({"layer_kinds": {"attn": {"kind": "attention", "q_heads": 4, "kv_heads": 3}}}, "model.layer_kinds.attn"),
    ({"layer_kinds": {"attn": {"kind": "transformer"}}}, "model.layer_kinds.attn"),
    ({"kv_precision": "int3"}, "model.kv_precision"),
    ({"d_state": 16}, "model"),
])
def test_bad_hybrid_input_names_the_key(change, key):
    with pytest.raises(HwsimInputError) as error:
        experiment({**ATTENTION_ONLY, **change})
    assert key in str(error.value)


def test_hybrid_on_gpu_kind_is_a_clear_error():
    raw = {"hardware": "h100-sxm", "model": "jamba-1.5-mini", "policy": {"kind": "static", "bits": 16}}
    with pytest.raises(HwsimInputError, match="dataflow only"):
        load_experiment(raw=raw)


def test_cli_bad_pattern_exits_2_without_traceback(tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "hwsim.cli", "run", "--set", "model=jamba-1.5-mini",
                             "--set", "model.pattern.default=[mamba, mlpx]"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "mlpx" in result.stderr


def test_kv_capacity_counts_in_the_fit_check():
    with pytest.raises(HwsimInputError, match="KV cache"):
        experiment_raw = {"hardware": "hbm3-accel", "model": "jamba-1.5-mini", "policy": {"kind": "static", "bits": 16},
                          "workload": {"batch_size": 256, "context_tokens": 262144, "steps": 2}}
        exp = load_experiment(raw=experiment_raw)
        simulate_experiment(exp, [np.full(10, 0.5)])
    assert math.isfinite(1.0)


def test_hybrid_prefill_is_refused_with_a_clear_error():
    raw = {"hardware": "hbm3e-accel", "model": "jamba-1.5-mini", "policy": {"kind": "static", "bits": 16},
           "workload": {"prompt_tokens": 128, "steps": 4}}
    with pytest.raises(HwsimInputError, match="prefill of hybrid"):
        load_experiment(raw=raw)


def shared_block(shared: bool) -> dict:
    return tiny_hybrid(
        {"attn": {"kind": "attention", "q_heads": 4, "kv_heads": 2, "head_dim": 16, "concat_embedding": True,
                  "output_projection": True, "shared_weights": shared},
         "mlp": {"kind": "mlp", "hidden": 32, "shared_weights": shared, "adapter_rank": 4}},
        {"block": "a", "symbols": {"a": ["attn", "mlp"]}}, n_layers=3)


def test_shared_block_counts_weights_once_and_adapters_kv_per_application_by_hand():
    # d 64, applied at 3 layers. Attention reads the 128-wide concat [h, embedding]: q 128x64 + k, v 2 x 128x32
    # + o 64x64 = 20480 shared, + its own 64x64 output linear 4096; pre-norm 128. MLP gate/up/down 3 x 64x32 =
    # 6144 shared + its own LoRA 4 x (64 + 2 x 32) = 512; pre-norm 64.
    stored = 20480 + 128 + 3 * 4096 + 6144 + 64 + 3 * 512
    fp = footprint(ModelSpec.model_validate(shared_block(True)))
    assert fp.stack.stored_params == stored == 40640
    assert fp.total_params == stored + 256 * 64 + 64          # tied embeddings, final norm
    unshared = footprint(ModelSpec.model_validate(shared_block(False)))
    assert unshared.stack.stored_params == 3 * (24576 + 128 + 6656 + 64)
    # every application reads the whole block (shared weights too) and keeps its own KV cache:
    # 2 KV heads x 16 x (K, V) = 64 elements, 128 B per position and application
    _, steps = simulate_experiment(experiment(shared_block(True), context_tokens=10), [np.full(100, 0.5)],
                                   keep_steps=True)
    assert steps["dram_read_bytes_weights"].iloc[0] == 3 * (24576 + 6656 + 128 + 64) * 2.0
    assert steps["dram_read_bytes_kv_cache"].iloc[0] == 2 * 10 * 128.0 * 3


def test_zamba2_shares_its_two_blocks():
    zamba = load_preset("model", "zamba2-2.7b", ModelSpec)
    hybrid = [i for i, layer in enumerate(zamba.stack_names) if len(layer) > 1]
    assert hybrid == [6, 12, 18, 24, 30, 36, 42, 47, 51]
    assert [zamba.stack_names[i][0] for i in hybrid[:3]] == ["attn_a", "attn_b", "attn_a"]
    stack = footprint(zamba).stack
    unshared = footprint(ModelSpec.model_validate({**zamba.model_dump(), "layer_kinds": {
        name: {**kind.model_dump(), "shared_weights": False} if "shared_weights" in kind.model_dump()
        else kind.model_dump() for name, kind in zamba.layer_kinds.items()}})).stack
    # unshared, the 7 applications beyond the two blocks store their block again: q, k, v 3 x 5120 x 5120 (from the
    # 5120-wide concat), o_proj 5120 x 2560, MLP 3 x 2560 x 10240, pre-norms 5120 + 2560
    block = 3 * 5120 * 5120 + 5120 * 2560 + 3 * 2560 * 10240 + 5120 + 2560
    assert unshared.stored_params - stack.stored_params == 7 * block
    assert stack.kv_elements_per_position[hybrid].tolist() == [2 * 32 * 160] * 9


def test_crossover_figure_series_and_file(tmp_path):
    from types import SimpleNamespace

    from hwsim.sweeps.hybrid_figure import CONTEXTS, crossover_figure, crossover_series
    points = [SimpleNamespace(experiment=experiment(JAMBA_LIKE, batch_size=b)) for b in (2, 8)]
    series = crossover_series(points)["tiny-hybrid"]
    for data in series.values():
        kv = data["KV cache"]
        assert np.all(np.diff(kv) > 0)                               # grows with context
        assert np.ptp(data["recurrent state"]) == 0                  # the state does not
        # per token, KV is per stream: 1 attention layer x 4 heads x 16 x (K, V) x 2 B x (context + 1)
        assert kv[0] == pytest.approx(4 * 16 * 2 * 2 * (CONTEXTS[0] + 1))
    assert series[2]["weights + experts"][0] > series[8]["weights + experts"][0]   # weights shared by the batch
    figure = crossover_figure(points, tmp_path)
    assert figure.png.stat().st_size > 0 and figure.svg.exists()
