"""Extraction end to end on tiny random-initialised models (llama-style and Mamba) built offline here."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hwsim.cli import main as hwsim_main
from hwsim.traces import load_trace
from hwsim.traces.entropy import entropy_bits_reference, entropy_stats_torch
from hwsim.traces.extract import generate, load_model, score, score_windows

pytestmark = pytest.mark.torch

WORDS = ["the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with", "as", "was", "by", "at", "be", "this", "from", "or", "an", "are", "not", "but", "had", "his", "they", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when", "who", "will", "more", "no"]
VOCAB = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
LOG2_VOCAB = math.log2(len(VOCAB))


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}the{% endif %}"
    return fast


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Directories of a tiny LlamaForCausalLM and a tiny MambaForCausalLM with the same tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM, MambaConfig, MambaForCausalLM

    common = {"vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 2, "bos_token_id": None,
              "eos_token_id": None, "pad_token_id": 1}
    built = {}
    for name, model in [
        ("llama", lambda: LlamaForCausalLM(LlamaConfig(intermediate_size=64, num_attention_heads=4,
                                                       num_key_value_heads=2, max_position_embeddings=512,
                                                       **common))),
        ("mamba", lambda: MambaForCausalLM(MambaConfig(state_size=8, **common))),
    ]:
        torch.manual_seed(0)
        directory = tmp_path_factory.mktemp(name)
        _tokenizer().save_pretrained(directory)
        model().save_pretrained(directory)
        built[name] = directory
    return built


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("text") / "words.txt"
    path.write_text(" ".join(rng.choice(WORDS, 300)))
    return path


@pytest.fixture(scope="module")
def llama(models):
    return load_model(str(models["llama"]))


def test_entropy_two_ways_agree_on_random_logits():
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(0, 1, (50, 1000)), rng.normal(0, 30, (50, 1000))])
    logits[0] = 0.0  # uniform: entropy = log2(1000)
    reference = entropy_bits_reference(logits)
    production, top1, _ = entropy_stats_torch(torch.tensor(logits, dtype=torch.float32))
    np.testing.assert_allclose(production, reference, atol=1e-4)
    assert reference[0] == pytest.approx(math.log2(1000))
    np.testing.assert_allclose(top1, np.exp(logits - logits.max(1, keepdims=True)).max(1)
                               / np.exp(logits - logits.max(1, keepdims=True)).sum(1), rtol=1e-5)


def test_entropy_two_ways_agree_on_model_logits(llama, text_file):
    ids = llama.tokenizer(text_file.read_text())["input_ids"][:100]
    with torch.inference_mode():
        logits = llama.model(input_ids=torch.tensor([ids])).logits[0]
    production, _, surprisal = entropy_stats_torch(logits, [*ids[1:], -1])
    np.testing.assert_allclose(production, entropy_bits_reference(logits.double().numpy()), atol=1e-4)
    assert np.isnan(surprisal[-1]) and np.all(surprisal[:-1] >= 0)


@pytest.mark.parametrize("n,context,stride", [(1, 4, 2), (10, 4, 3), (100, 16, 16), (100, 16, 5), (7, 32, 8)])
def test_windows_score_each_token_once_with_left_context(n, context, stride):
    windows = score_windows(n, context, stride)
    scored = np.concatenate([np.arange(first, end) for _, first, end in windows])
    np.testing.assert_array_equal(scored, np.arange(n))
    for start, first, end in windows:
        assert end - start <= context
        assert start == 0 or first - start >= context - stride
    # Windows do not depend on the text length, so a prefix gets the same entropies.
    assert all(w in windows for w in score_windows(n // 2, context, stride) if w[2] - w[0] == context)


def test_windowed_scoring_prefix_stable_and_bounded(llama, text_file):
    ids = llama.tokenizer(text_file.read_text())["input_ids"]
    full = score(llama, ids, context=64, stride=40, progress=False)
    prefix = score(llama, ids[:150], context=64, stride=40, progress=False)
    assert len(full) == len(ids) > 64
    np.testing.assert_allclose(prefix["entropy_bits"], full["entropy_bits"][:150], atol=1e-5)
    assert full["entropy_bits"].between(0, LOG2_VOCAB + 1e-4).all()
    # Windows with less context than the text change the numbers (they are not one pass).
    one_pass = score(llama, ids, context=512, stride=512, progress=False)
    assert not np.allclose(one_pass["entropy_bits"], full["entropy_bits"], atol=1e-4)
    np.testing.assert_allclose(one_pass["entropy_bits"][:64], full["entropy_bits"][:64], atol=1e-5)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generate_equals_one_pass_scoring(llama, temperature):
    prompt = llama.tokenizer("the history of")["input_ids"]
    gen = generate(llama, prompt, max_tokens=40, temperature=temperature, seed=7, progress=False)
    assert len(gen) == 40 and gen["position"].iloc[0] == len(prompt) - 1
    sequence = prompt + gen["token_id"].tolist()[1:]
    scored = score(llama, sequence, context=512, stride=512, progress=False).iloc[len(prompt) - 1:]
    np.testing.assert_allclose(gen["entropy_bits"], scored["entropy_bits"], atol=1e-4)
    np.testing.assert_allclose(gen["surprisal_bits"][:-1], scored["surprisal_bits"][:-1], atol=1e-4)
    again = generate(llama, prompt, max_tokens=40, temperature=temperature, seed=7, progress=False)
    np.testing.assert_array_equal(again["token_id"], gen["token_id"])


@pytest.mark.parametrize("name", ["llama", "mamba"])
def test_cli_extract_score_and_generate(models, text_file, tmp_path, name, capsys):
    out = tmp_path / "score.parquet"
    assert hwsim_main(["trace", "extract", "--model", str(models[name]), "--text", str(text_file), "--mode", "score",
                       "--context", "64", "--stride", "48", "--max-tokens", "250", "--quiet",
                       "--out", str(out)]) == 0
    trace = load_trace(out, with_text=True)
    assert len(trace) == 250 and trace.position.tolist() == list(range(250))
    assert np.all((trace.entropy_bits >= 0) & (trace.entropy_bits <= LOG2_VOCAB + 1e-4))
    assert np.isnan(trace.surprisal_bits[-1]) and not np.isnan(trace.surprisal_bits[:-1]).any()
    assert trace.token_text[:3] == tuple(text_file.read_text().split()[:3])
    p = trace.provenance
    assert p["mode"] == "score" and p["vocab_size"] == len(VOCAB) and p["tokens"] == 250
    assert p["context_tokens"] == 64 and p["stride_tokens"] == 48 and len(p["text_sha256"]) == 64
    assert {"hwsim", "torch", "transformers", "python"} <= set(p["tool_versions"])
    assert p["command"].startswith("hwsim trace extract --model ") and p["created"]

    out = tmp_path / "gen.parquet"
    assert hwsim_main(["trace", "extract", "--model", str(models[name]), "--prompt", "the history of", "--mode",
                       "generate", "--max-tokens", "12", "--temperature", "1", "--seed", "3", "--quiet",
                       "--out", str(out)]) == 0
    trace = load_trace(out)
    assert len(trace) == 12 and not np.isnan(trace.surprisal_bits).any()
    assert np.all((trace.entropy_bits >= 0) & (trace.entropy_bits <= LOG2_VOCAB + 1e-4))
    assert trace.provenance["decoding"] == "sampled" and trace.provenance["seed"] == 3
    assert trace.provenance["prompt_format"] == "raw"
    assert hwsim_main(["trace", "extract", "--model", str(models[name]), "--prompt", "history of", "--chat", "--mode",
                       "generate", "--max-tokens", "5", "--quiet", "--out", str(out)]) == 0
    trace = load_trace(out, with_text=True)
    assert trace.provenance["prompt_format"] == "chat" and "--chat" in trace.provenance["command"]
    assert trace.position[0] == 2 and trace.token_text[0] == "the"  # "history of the": the template adds "the"
    assert "wrote" in capsys.readouterr().out


def test_cli_extract_bad_input_is_an_input_error(models, tmp_path, capsys):
    assert hwsim_main(["trace", "extract", "--model", str(tmp_path / "nothing"), "--prompt", "x", "--mode", "generate",
                       "--max-tokens", "3", "--quiet", "--out", str(tmp_path / "x.parquet")]) == 2
    assert hwsim_main(["trace", "extract", "--model", str(models["llama"]), "--prompt", "x", "--mode", "score",
                       "--quiet", "--out", str(tmp_path / "x.parquet")]) == 2
    assert "score mode needs --text" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("the a of")
    assert hwsim_main(["trace", "extract", "--model", str(models["llama"]), "--text", str(tmp_path / "t.txt"), "--mode",
                       "score", "--context", "4096", "--quiet", "--out", str(tmp_path / "x.parquet")]) == 2
    assert "exceeds the model's 512 positions" in capsys.readouterr().err


def test_sampling_uses_the_full_model_distribution(llama, monkeypatch):
    """transformers fills unset options with top_k=50; a sampled trace must not be truncated that way."""
    model_class = type(llama.model)
    original = model_class._get_logits_processor
    seen = []

    def spy(self, *args, **kwargs):
        processors = original(self, *args, **kwargs)
        seen.append([type(p).__name__ for p in processors])
        return processors

    monkeypatch.setattr(model_class, "_get_logits_processor", spy)
    generate(llama, [3, 4, 5], max_tokens=3, temperature=1.0, seed=0, progress=False)
    generate(llama, [3, 4, 5], max_tokens=3, temperature=0.7, seed=0, progress=False)
    assert seen == [[], ["TemperatureLogitsWarper"]]
