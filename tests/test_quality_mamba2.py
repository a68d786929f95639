"""The Mamba-2 quality model: SSD training form vs the recurrent form, distillation, gate signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hwsim.quality.distill import distill_loss
from hwsim.quality.quantise import StateFormat
from hwsim.quality.signals import lowest_share, one_step_costs, previous, signal_bits
from hwsim.quality.ssd_model import SsdMamba2LM, init_like_transformers, ssd_scan


def _config(**overrides):
    from transformers import Mamba2Config

    fields = {"vocab_size": 61, "hidden_size": 32, "state_size": 16, "num_hidden_layers": 2, "num_heads": 8,
              "head_dim": 8, "n_groups": 2, "expand": 2, "chunk_size": 8, "tie_word_embeddings": True}
    return Mamba2Config(**(fields | overrides))


def _student(seed: int = 0, **overrides) -> SsdMamba2LM:
    model = SsdMamba2LM(_config(**overrides))
    init_like_transformers(model, seed)
    with torch.no_grad():  # away from the initial values, so every parameter matters
        generator = torch.Generator().manual_seed(seed + 1)
        for layer in model.backbone.layers:
            for name in ("A_log", "dt_bias", "D"):
                getattr(layer.mixer, name).copy_(torch.rand(layer.mixer.heads, generator=generator) * 2 - 1)
    return model


def test_ssd_scan_equals_the_recurrence_step_by_step():
    generator = torch.Generator().manual_seed(0)
    b, length, g, e, p, n = 2, 12, 2, 3, 4, 5
    x = torch.randn(b, length, g, e, p, generator=generator)
    dt = torch.rand(b, length, g, e, generator=generator)
    A = -torch.rand(g, e, generator=generator) - 0.1
    B = torch.randn(b, length, g, n, generator=generator)
    C = torch.randn(b, length, g, n, generator=generator)
    y = ssd_scan(x, dt, A, B, C, chunk=4)
    h = torch.zeros(b, g, e, p, n)
    for t in range(length):  # h_t = exp(dt A) h + dt x B^T ; y_t = h C
        decay = torch.exp(dt[:, t] * A)[..., None, None]
        h = decay * h + dt[:, t][..., None, None] * x[:, t][..., None] * B[:, t][:, :, None, None, :]
        expected = (h * C[:, t][:, :, None, None, :]).sum(-1)
        assert torch.allclose(y[:, t], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("length", [8, 21])  # a whole number of chunks, and a padded last chunk
def test_training_form_equals_the_recurrent_form_of_transformers(length):
    from transformers import Mamba2ForCausalLM

    model = _student()
    hf = Mamba2ForCausalLM(model.config).eval()
    hf.load_state_dict(model.state_dict())
    ids = torch.randint(0, 61, (3, length), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        chunked = model(ids)
        cache, steps = None, []
        for t in range(length):
            out = hf(ids[:, t:t + 1], cache=cache, use_cache=True)
            cache = out.cache
            steps.append(out.logits[:, -1])
    recurrent = torch.stack(steps, 1)
    assert torch.allclose(chunked, recurrent, atol=1e-4), (chunked - recurrent).abs().max()


def test_distill_loss_is_the_exact_kl_when_top_k_covers_the_vocabulary():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(1, 5, 7, generator=generator)
    teacher = torch.log_softmax(torch.randn(1, 5, 7, generator=generator), -1)
    targets = torch.randint(0, 7, (1, 5), generator=generator)
    top_logp, top_ids = teacher.topk(7, dim=-1)
    rest = torch.full((1, 5), -30.0)
    _, ce, kl = distill_loss(student, targets, top_ids, top_logp, rest, alpha=1.0)
    exact = torch.nn.functional.kl_div(torch.log_softmax(student, -1), teacher, log_target=True,
                                       reduction="none").sum(-1).mean()
    assert kl.item() == pytest.approx(exact.item(), rel=1e-4)
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(student[0], targets[0]).item(), rel=1e-6)
    # with k < V the rest bucket makes it a lower bound of the exact KL (merging outcomes loses information)
    top_logp, top_ids = teacher.topk(3, dim=-1)
    rest = torch.log1p(-top_logp.exp().sum(-1))
    _, _, bound = distill_loss(student, targets, top_ids, top_logp, rest, alpha=1.0)
    assert 0.0 <= bound.item() <= exact.item() + 1e-6


def test_distillation_on_a_tiny_teacher_and_student_lowers_the_loss():
    from hwsim.quality.teacher import topk_targets

    torch.manual_seed(0)
    teacher = _student(seed=5).eval()
    student = _student(seed=9, num_hidden_layers=1)
    ids = torch.randint(0, 61, (4, 17), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        targets = topk_targets(teacher(ids[:, :-1]), k=8)
    tensors = [torch.as_tensor(targets["topk_ids"].astype(np.int64)), torch.as_tensor(targets["topk_logp"]),
               torch.as_tensor(targets["rest_logp"])]
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, _, kl = distill_loss(student(ids[:, :-1]), ids[:, 1:], *tensors, alpha=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(kl.item())
    assert losses[-1] < 0.5 * losses[0]


def test_lowest_share_picks_the_cheapest_steps_and_the_oracle_follows_its_costs():
    costs = np.array([[3.0, 1.0, 2.0, 0.0], [0.5, 0.5, 9.0, 0.1]])
    low = lowest_share(costs, 0.5)
    assert low.tolist() == [[False, True, False, True], [True, False, False, True]]  # tie: earlier step
    # steps scored +inf (nothing known yet) go low only when nothing else is left
    assert lowest_share(previous(np.array([[1.0, 2.0, 3.0]])), 2 / 3).tolist() == [[False, True, True]]


def test_signal_bits_write_exactly_the_share_and_masks_keep_their_units_high():
    from hwsim.quality.run import Reference

    rng = np.random.default_rng(0)
    streams, steps, layers = 3, 16, 2
    ref = Reference(np.log(rng.dirichlet(np.ones(5), (streams, steps))).astype(np.float32),
                    rng.random((streams, steps)), rng.random((streams, steps - 1)), np.array([], int),
                    np.zeros((streams, 0, layers, 0), np.float32), rng.random((streams, steps)))
    decay = np.array([[0.1, 0.5, 0.9, 1.3], [0.2, 0.6, 1.0, 1.4]])  # (layers, 4 heads)
    for name in ("random", "entropy", "top1", "surprisal", "update_norm", "oracle", "entropy_keep_layer",
                 "entropy_keep_heads"):
        bits, share = signal_bits(name, 0.25, ref=ref, oracle_cost=rng.random((streams, steps)), keep_layer=1,
                                  decay=decay, layers=layers, low_bits=4, high_bits=16)
        assert share == pytest.approx(0.25, abs=1 / steps), name
        if name == "entropy_keep_layer":
            assert (bits[:, :, 1] == 16).all()
        if name == "entropy_keep_heads":
            assert (bits[:, :, 0, 0] == 16).all() and (bits[:, :, 1, 0] == 16).all()  # slowest two of eight


def test_one_step_costs_are_zero_for_a_lossless_store_and_positive_for_a_coarse_one():
    from hwsim.quality.model import tiny_model
    from hwsim.quality.run import reference_run

    loaded = tiny_model("mamba2", vocab_size=32, seed=1)
    tokens = np.random.default_rng(0).integers(0, 32, (2, 12))
    ref = reference_run(loaded, tokens, snapshot_every=100)
    lossless = one_step_costs(loaded, tokens, ref, 32, StateFormat())
    coarse = one_step_costs(loaded, tokens, ref, 2, StateFormat())
    assert np.abs(lossless).max() < 1e-9
    assert (coarse >= 0).all() and coarse[:, :-1].mean() > 1e3 * max(np.abs(lossless).max(), 1e-12)
    assert (coarse[:, -1] == 0).all()


def test_per_head_bits_store_only_the_chosen_heads_low():
    from hwsim.quality.run import _store_rows

    state = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))  # rows, heads, p, n
    bits = np.full((2, 1, 4), 32, dtype=np.int16)
    bits[0, 0, 2] = 2
    stored = _store_rows(state, bits, 0, conv=False, fmt=StateFormat(group_size=15), generator=None)
    changed = ~torch.isclose(stored, state).reshape(2, 4, -1).all(-1)
    assert changed.tolist() == [[False, False, True, False], [False, False, False, False]]


def test_corpus_splits_by_document_and_keeps_the_shipped_texts_out_of_training():
    from hwsim.paths import WORKLOADS_DIR
    from hwsim.quality.corpus import documents, held_out

    docs = documents(WORKLOADS_DIR / "texts")
    topics, files = held_out(WORKLOADS_DIR / "texts")
    evaluation = {d.name for d in docs if d.split == "evaluation"}
    assert {f"topic:{t}" for t in topics} <= evaluation
    assert all(d.split == "evaluation" for d in docs if d.name in files or d.name.removeprefix("docstrings:") in files)
    names = [d.name for d in docs]
    assert len(names) == len(set(names))
    assert {d.split for d in docs} == {"train", "validation", "evaluation"}


def test_window_order_is_seeded_and_keeps_the_prose_share_while_prose_lasts():
    from hwsim.quality.teacher import window_order

    streams = {"prose": np.arange(10 * 9 + 2), "code": np.arange(40 * 9 + 2)}
    order = window_order(streams, 8, 0.25, seed=0)
    assert order == window_order(streams, 8, 0.25, seed=0) != window_order(streams, 8, 0.25, seed=1)
    assert len(order) == len(set(order)) == 11 + 45
    first = order[:40]
    assert sum(d == "prose" for d, _ in first) == pytest.approx(10, abs=1)


def test_trace_streams_are_the_traces_own_tokens():
    from hwsim.quality.streams import trace_streams
    from hwsim.traces import load_trace

    streams = trace_streams(tokens=32, streams=9, start_tokens=5)
    assert streams[7].source == streams[0].source and streams[7].offset_tokens == 5 + 32
    trace = load_trace(streams[8].source)
    assert (streams[8].token_ids == trace.token_id[37:69]).all()


def test_gate_signals_rejects_bad_input_with_exit_2(capsys):
    from hwsim.cli import main

    assert main(["gate-signals", "--shares", "0.5,1.5"]) == 2
    assert "--shares" in capsys.readouterr().err
    assert main(["gate-signals", "--signals", "entropy,vibes"]) == 2
    assert "vibes" in capsys.readouterr().err


def test_gate_signals_on_a_tiny_model_ranks_against_random(tmp_path):
    from hwsim.quality.model import tiny_model
    from hwsim.quality.signals import compare_signals, summarise
    from hwsim.quality.signals_command import report, verdicts
    from hwsim.quality.streams import random_streams

    loaded = tiny_model("mamba2", vocab_size=32, seed=0)
    streams = random_streams(32, tokens=24, streams=2)
    frame = compare_signals(loaded, streams, streams, shares=[0.5], signals=["random", "entropy", "oracle"], seeds=2)
    summary = summarise(frame)
    assert set(summary["signal"]) == {"random", "entropy", "oracle"}
    assert (summary["low_share"] == 0.5).all()
    assert math.isfinite(summary["kl_bits_mean"].sum())
    text = report(summary, frame.groupby(["signal", "share", "domain"])["kl_bits_mean"].mean().unstack("domain"),
                  {"model": "tiny", "streams": 2, "tokens": 24, "low_bits": 4, "group_size": 64, "seeds": 2,
                   "seconds": 1.0, "tokens_per_s": 1.0, "alignment": "random tokens"})
    assert "best signal" in text and len(verdicts(summary)) == 1
    assert "](signals.png)" in text  # the saving-vs-KL curves, one per signal, drawn in the report


def test_the_cli_lists_every_signal():
    from hwsim.quality.signals import SIGNALS
    from hwsim.quality.signals_command import SIGNAL_NAMES

    assert SIGNAL_NAMES == tuple(SIGNALS)


def test_a_later_stage_starts_from_the_saved_checkpoint_and_refuses_another_geometry(tmp_path):
    """`--init-from`: the checkpoint's parameters exactly (not a fresh init); a different geometry is refused
    naming the key; the stage list comes from the checkpoint's training.json."""
    import argparse
    import json

    from transformers import Mamba2ForCausalLM

    from hwsim.quality.distill import _checkpoint_state, previous_stages

    saved = _student(seed=4)
    hf = Mamba2ForCausalLM(_config())
    hf.load_state_dict(saved.state_dict())
    hf.save_pretrained(tmp_path, safe_serialization=True)
    restored = _student(seed=11)
    restored.load_state_dict(_checkpoint_state(tmp_path, _config()))
    ids = torch.randint(0, 61, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(restored(ids), saved(ids))
    with pytest.raises(SystemExit, match="hidden_size is 32, the flags give 64"):
        _checkpoint_state(tmp_path, _config(hidden_size=64, num_heads=16))

    first = {"stage": 1, "tokens_seen": 100, "steps_run": 2}
    (tmp_path / "training.json").write_text(json.dumps({"training": first}))
    args = lambda stage: argparse.Namespace(init_from=tmp_path, stage=stage)
    assert previous_stages(args(2)) == [first]
    with pytest.raises(SystemExit, match="has 1 stage"):
        previous_stages(args(3))
    assert previous_stages(argparse.Namespace(init_from=None, stage=1)) == []


def test_shards_load_from_a_first_shard_number(tmp_path):
    """A later stage's teacher numbers its shards from --first-shard; loading takes them by number."""
    from hwsim.quality.teacher import load_shards, shard_number, shard_paths

    for number in (3, 4, 5, 9):
        np.savez(tmp_path / f"train-{number:05d}.npz", tokens=np.full((2, 3), number))
    assert load_shards(tmp_path, "train", 2, first=4)["tokens"][:, 0].tolist() == [4, 4, 5, 5]
    assert load_shards(tmp_path, "train")["tokens"][::2, 0].tolist() == [3, 4, 5, 9]
    assert load_shards(tmp_path, "validation") == {}
    assert [shard_number(p) for p in shard_paths(tmp_path, "train", 3, first=4)] == [4, 5, 9]  # the gap shows


def test_the_catalog_command_chains_every_training_stage(tmp_path):
    """Two stages: the catalog sums their tokens and its command reruns both, the second from the first's
    checkpoint with its own window offsets, then the evaluation."""
    from hwsim.quality.catalog import distilled_entry

    common = {"pretrain_steps": 1, "distill_windows": 32, "distilled_windows": 32, "plain_share": 0.25,
              "alpha": 0.8, "batch": 4, "layers": 4, "d_model": 256, "d_state": 128, "headdim": 64,
              "window_tokens": 512, "threads": 1, "train_wall_s": 1.0, "total_wall_s": 2.0, "torch_version": "x"}
    one = dict(common, stage=1, steps=10, steps_run=10, tokens_seen=20480, lr=3e-3, seed=0)
    two = dict(common, stage=2, steps=8, steps_run=6, tokens_seen=12288, lr=1e-3, seed=1, warmup=4,
               first_window=32, tail_offset=60)
    record = {"name": "m", "architecture": "mamba2", "params": 1, "config": {}, "checkpoint_dtype": "float16",
              "tokenizer": "t", "teacher": {}, "training": two, "stages": [one, two], "data": {},
              "validation": {"split": "v"}}
    training = distilled_entry(tmp_path, record)["training"]
    assert training["tokens_seen"] == 20480 + 12288 and training["steps"] == 16
    parts = training["command"].split(" && ")
    assert [p.split()[2] for p in parts] == ["hwsim.quality.teacher", "hwsim.quality.distill"] * 2 + [
        "hwsim.quality.distill"]
    assert "--first-shard 2 --max-shards 4" in parts[2] and parts[0].endswith("TEACHER_DIR --max-shards 2")
    assert "--stage 2 --init-from workloads/models/m" in parts[3] and "--stop-at-step 6" in parts[3]
    assert "--first-window 32 --tail-offset 60" in parts[3] and "--stage" not in parts[1]
    assert parts[4].endswith("--evaluate")
