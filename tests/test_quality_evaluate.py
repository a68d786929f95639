"""Functional evaluation on tiny random-initialised models: semantics shared with the hardware model."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import hwsim.quality  # noqa: F401
from hwsim.errors import HwsimInputError
from hwsim.policies.kinds import HysteresisPolicy, ThresholdPolicy
from hwsim.quality.evaluate import evaluate_policy, verdict
from hwsim.quality.model import tiny_model
from hwsim.quality.quantise import StateFormat
from hwsim.quality.run import FixedGate, PolicyGate, gated_run, reference_run
from hwsim.quality.streams import random_streams

pytestmark = pytest.mark.torch
STEPS, STREAMS = 24, 2


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    loaded = tiny_model("mamba")
    tokens = np.stack([s.token_ids for s in random_streams(64, tokens=STEPS, streams=STREAMS)])
    return loaded, tokens, reference_run(loaded, tokens, snapshot_every=8)


def test_full_precision_store_reproduces_the_reference(tiny):
    loaded, tokens, ref = tiny
    result = gated_run(loaded, tokens, ref, [FixedGate(np.full((STEPS, STREAMS), 32))], StateFormat())
    assert result.kl_bits.max() < 1e-5
    assert result.top1_agree.all()
    assert result.state_rel_error.max() < 1e-5


def test_fewer_bits_cost_more(tiny):
    loaded, tokens, ref = tiny
    gates = [FixedGate(np.full((STEPS, STREAMS), b)) for b in (16, 8, 4, 2)]
    result = gated_run(loaded, tokens, ref, gates, StateFormat(group_size=8))
    error = result.state_rel_error.reshape(4, STREAMS, -1).mean(axis=(1, 2))
    kl = result.kl_bits.reshape(4, STREAMS, -1).mean(axis=(1, 2))
    assert error[0] < error[1] < error[2] < error[3]
    assert kl[1] < kl[3]


@pytest.mark.parametrize("make", [lambda t: ThresholdPolicy(threshold_bits=t),
                                  lambda t: ThresholdPolicy(threshold_bits=t, gate_on="current"),
                                  lambda t: HysteresisPolicy(threshold_bits=t, min_dwell_steps=3)])
def test_gate_writes_exactly_what_the_policy_plans(tiny, make):
    """Same policy object, same entropy -> the same per-step precisions as the hardware model."""
    loaded, tokens, ref = tiny
    entropy = ref.entropy_bits.T.copy()
    policy = make(float(np.median(entropy)))
    result = gated_run(loaded, tokens, ref, [PolicyGate(policy, entropy)], StateFormat())
    fresh = np.zeros_like(entropy, dtype=bool)
    fresh[0] = True
    planned = policy.plan(entropy, fresh).write_bits.T
    assert np.array_equal(result.write_bits, planned)
    assert 0 < (planned < 16).mean() < 1


def test_self_gating_sees_its_own_entropy(tiny):
    loaded, tokens, ref = tiny
    policy = ThresholdPolicy(threshold_bits=5.9, low_bits=2, group_size=512)
    result = gated_run(loaded, tokens, ref, [PolicyGate(policy)], StateFormat(group_size=512))
    fresh = np.zeros((STEPS, STREAMS), dtype=bool)
    fresh[0] = True
    own = policy.plan(result.entropy_bits.T, fresh).write_bits.T
    assert np.array_equal(result.write_bits, own)


def test_evaluate_policy_columns_controls_and_cache(tiny, tmp_path):
    loaded, _, _ = tiny
    kwargs = {"loaded": loaded, "tokens": STEPS, "streams": STREAMS, "seeds": 2, "cache_dir": tmp_path}
    policy = {"kind": "threshold", "threshold_bits": 5.9, "low_bits": 4, "group_size": 8}
    row = evaluate_policy(policy, **kwargs)
    for key in ("quality_kl_bits_mean", "quality_kl_bits_p99", "quality_top1_agreement", "quality_ppl_change_pct",
                "quality_state_rel_error_mean", "quality_low_share", "quality_random_kl_bits_mean_mean",
                "quality_random_kl_bits_mean_std", "quality_all_high_kl_bits_mean", "quality_all_low_kl_bits_mean",
                "quality_entropy_vs_random", "quality_eval_tokens_per_s"):
        assert key in row, key
    assert 0 < row["quality_low_share"] < 1
    assert row["quality_all_low_low_share"] == 1 and row["quality_all_high_low_share"] == 0
    assert row["quality_random_low_share_mean"] == pytest.approx(row["quality_low_share"])  # equal share
    assert row["quality_all_high_state_rel_error_mean"] < row["quality_state_rel_error_mean"]
    # int4 with a 16-bit scale per 8 elements: 6 of 16 bits per element, on the low share of writes
    assert row["quality_state_bytes_saving_pct"] == pytest.approx(100 * row["quality_low_share"] * 10 / 16)
    again = evaluate_policy(policy, **kwargs)
    assert again["quality_cached"] and not row["quality_cached"]
    assert again["quality_kl_bits_mean"] == row["quality_kl_bits_mean"]


def test_mamba2_and_conv_state_gating(tmp_path):
    loaded = tiny_model("mamba2")
    row = evaluate_policy({"kind": "static", "bits": 4, "low_bits": 4, "gate_conv_state": True},
                          loaded=loaded, tokens=16, streams=2, seeds=0, cache_dir=None)
    assert row["quality_low_share"] == 1.0
    assert row["quality_state_rel_error_mean"] > 0.01
    assert row["quality_entropy_vs_random"] == "n/a"


def test_speculative_rollback_replays_at_high_precision(tiny):
    """Rolling back every step is the all-high run; never rolling back is the all-low run (the
    checkpoints only feed the replay)."""
    from hwsim.policies.kinds import SpeculativePolicy

    loaded, tokens, ref = tiny
    fmt = StateFormat(group_size=8)
    always = PolicyGate(SpeculativePolicy(low_bits=2, rollback_threshold_bits=0.0, checkpoint_interval_steps=4))
    never = PolicyGate(SpeculativePolicy(low_bits=2, rollback_threshold_bits=1e6, checkpoint_interval_steps=4))
    high, low = (FixedGate(np.full((STEPS, STREAMS), b)) for b in (16, 2))
    result = gated_run(loaded, tokens, ref, [always, never, high, low], fmt)
    kl = result.kl_bits.reshape(4, STREAMS, STEPS)
    assert np.allclose(kl[0], kl[2], atol=1e-6) and np.allclose(kl[1], kl[3], atol=1e-6)
    error = result.state_rel_error.reshape(4, STREAMS, -1)
    # same fp16 store either way; batch rows differ in float32 rounding, which can flip an fp16 rounding
    assert np.allclose(error[0], error[2], rtol=0.6) and np.allclose(error[1], error[3], atol=1e-6)
    assert error[3].mean() > 100 * error[2].mean()


def test_bad_input():
    with pytest.raises(HwsimInputError, match="rounding"):
        evaluate_policy({"kind": "static"}, loaded=object(), rounding="up")


def test_verdict_needs_a_clear_margin():
    assert verdict(1.0, [2.0, 2.1, 1.9], 0.5) == "better"
    assert verdict(3.0, [2.0, 2.1, 1.9], 0.5) == "worse"
    assert verdict(1.95, [2.0, 2.1, 1.9], 0.5) == "indistinguishable"
    assert verdict(1.0, [2.0, 2.1], 0.0) == "n/a"


def test_external_gate_sources(tiny, tmp_path):
    from hwsim.quality.evaluate import _gate_entropy
    from hwsim.quality.streams import Stream

    _, tokens, ref = tiny
    streams = [Stream("prose-pydocs", 0, tokens[0], 0), Stream("prose-pydocs", STEPS, tokens[1], 0)]
    assert np.array_equal(_gate_entropy("reference", streams, ref), ref.entropy_bits.T)
    assert _gate_entropy("self", streams, ref) is None
    with pytest.raises(HwsimInputError, match="--gate"):
        _gate_entropy(str(tmp_path / "missing.parquet"), streams, ref)


def test_domain_columns_split_the_overall_figures(tiny, tmp_path):
    """One prose and one code stream of equal length: the overall KL is the mean of the two domains',
    the spread over streams is |a - b| / sqrt(2), and the random control is reported per domain."""
    import dataclasses

    loaded, _, _ = tiny
    streams = [dataclasses.replace(s, source=name) for s, name in
               zip(random_streams(64, tokens=STEPS, streams=2), ("prose-one", "code-two"))]
    policy = {"kind": "threshold", "threshold_bits": 5.9, "low_bits": 4, "group_size": 8}
    row = evaluate_policy(policy, loaded=loaded, stream_list=streams, seeds=2, cache_dir=tmp_path)
    prose, code = row["quality_prose_kl_bits_mean"], row["quality_code_kl_bits_mean"]
    assert row["quality_prose_streams"] == row["quality_code_streams"] == 1
    assert row["quality_kl_bits_mean"] == pytest.approx((prose + code) / 2)
    assert row["quality_kl_bits_mean_stream_std"] == pytest.approx(abs(prose - code) / 2 ** 0.5)
    assert row["quality_random_kl_bits_mean_mean"] == pytest.approx(
        (row["quality_random_prose_kl_bits_mean"] + row["quality_random_code_kl_bits_mean"]) / 2)
