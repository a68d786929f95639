"""Run a local causal LM over a text (teacher-forced) or a prompt (free-running) and record entropies.

Everything here imports torch/transformers lazily: only `hwsim trace extract` needs them.
Any model transformers loads offline works: llama-style, Mamba / Mamba-2, and GGUF files (dequantised).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import hwsim
from hwsim.errors import HwsimInputError
from hwsim.traces.entropy import entropy_stats_torch
from hwsim.traces.format import write_trace

#: `--model pkg:NAME` names the directory of an installed Python package that ships a model file.
PACKAGE_PREFIX = "pkg:"


@dataclass(frozen=True)
class LoadedModel:
    model: object
    tokenizer: object
    provenance: dict


def resolve_model_dir(model: str) -> tuple[str, dict]:
    """Turn `pkg:NAME` into the package's folder (found without importing it); pass others through."""
    if not model.startswith(PACKAGE_PREFIX):
        return model, {}
    package = model[len(PACKAGE_PREFIX):]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HwsimInputError(f"no installed package {package!r}", key="--model")
    dist = package.replace("_", "-")
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return next(iter(spec.submodule_search_locations)), {"model_package": dist, "model_package_version": version}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(model: str, gguf: str | None = None, revision: str | None = None) -> LoadedModel:
    """Load model and tokenizer offline (local_files_only), in float32 on CPU, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, provenance = resolve_model_dir(model)
    kwargs = {"local_files_only": True}
    if revision:
        kwargs["revision"] = revision
    if gguf:
        kwargs["gguf_file"] = gguf
        gguf_path = Path(directory) / gguf
        if not gguf_path.is_file():
            raise HwsimInputError("GGUF file not found", file=gguf_path, key="--gguf")
        provenance.update(model_file=gguf, model_file_sha256=sha256_file(gguf_path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(directory, dtype="float32", **kwargs)
    except OSError as error:
        raise HwsimInputError(f"cannot load the model offline: {error}", key="--model") from None
    lm.eval()
    provenance.update(
        model=model,
        model_revision=revision or getattr(lm.config, "_commit_hash", None),
        model_architecture=type(lm).__name__,
        tokenizer=f"{type(tokenizer).__name__} from {'the GGUF file' if gguf else model}",
        vocab_size=int(lm.get_output_embeddings().weight.shape[0]),
    )
    return LoadedModel(lm, tokenizer, provenance)


def score_windows(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(window_start, first_scored, end) triples: each position scored once, in windows of `context`.

    Window k starts at k*stride whatever the text length, so a prefix of a text gets the same
    windows (and entropies) as the whole text. After the first window every scored token has at
    least context-stride tokens of left context.
    """
    if not 0 < stride <= context:
        raise HwsimInputError(f"need 0 < stride <= context, got stride={stride}, context={context}",
                              key="--stride")
    windows, scored_to, k = [], 0, 0
    while scored_to < n_tokens:
        start = k * stride
        end = min(start + context, n_tokens)
        windows.append((start, scored_to, end))
        scored_to, k = end, k + 1
    return windows


def score(lm: LoadedModel, token_ids: list[int], context: int, stride: int, progress: bool = True) -> pd.DataFrame:
    """Teacher-forced entropies for every position of `token_ids`."""
    import torch
    from tqdm import tqdm

    limit = getattr(lm.model.config, "max_position_embeddings", None)  # attention models only
    if limit and context > limit:
        raise HwsimInputError(f"context {context} exceeds the model's {limit} positions", key="--context")
    ids = torch.tensor(token_ids, dtype=torch.long)
    next_ids = np.append(np.asarray(token_ids[1:], dtype=np.int64), -1)
    parts = []
    with torch.inference_mode(), tqdm(total=len(token_ids), unit="tok", disable=not progress) as bar:
        for start, first, end in score_windows(len(token_ids), context, stride):
            logits = lm.model(input_ids=ids[start:end].unsqueeze(0), use_cache=False).logits[0]
            parts.append(entropy_stats_torch(logits[first - start:], next_ids[first:end]))
            bar.update(end - first)
    entropy, top1, surprisal = (np.concatenate(p) for p in zip(*parts))
    return _frame(lm, np.arange(len(token_ids)), token_ids, entropy, top1, surprisal)


class _TqdmStreamer:
    """transformers streamer protocol (put/end): advances a tqdm bar per generated token."""

    def __init__(self, bar):
        self.bar, self.seen_prompt = bar, False

    def put(self, value):
        if self.seen_prompt:
            self.bar.update(1)
        self.seen_prompt = True

    def end(self):
        pass


def generate(lm: LoadedModel, prompt_ids: list[int], max_tokens: int, temperature: float, seed: int,
             progress: bool = True) -> pd.DataFrame:
    """Free-running decode (KV / SSM cache via `generate`); one row per decode step.

    Row i is the step that reads token `token_id` at `position` and emits the next token; its
    entropy is of the model's raw distribution (temperature 1), whatever temperature sampled it.
    Greedy when temperature == 0. Generation stops early at the end-of-sequence token.
    """
    import torch
    from tqdm import tqdm
    from transformers import GenerationConfig

    sampled = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_tokens, min_new_tokens=0, do_sample=sampled,
        # Explicit neutral values: unset ones would be filled from the model's or transformers'
        # defaults (top_k=50), and the sampled distribution would no longer be the model's.
        temperature=temperature if sampled else None, top_k=0 if sampled else None, top_p=1.0 if sampled else None,
        min_p=None, typical_p=1.0, repetition_penalty=1.0, no_repeat_ngram_size=0,
        output_logits=True, return_dict_in_generate=True,
        eos_token_id=lm.model.generation_config.eos_token_id,
        pad_token_id=lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None
        else lm.model.generation_config.eos_token_id,
    )
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]), \
            tqdm(total=max_tokens, unit="tok", disable=not progress) as bar:
        torch.manual_seed(seed)
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                streamer=_TqdmStreamer(bar))
    new_ids = out.sequences[0, len(prompt_ids):].tolist()
    logits = torch.cat([step[0:1] for step in out.logits], dim=0)
    entropy, top1, surprisal = entropy_stats_torch(logits, new_ids)
    read_ids = [prompt_ids[-1], *new_ids[:-1]]
    positions = np.arange(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(new_ids))
    return _frame(lm, positions, read_ids, entropy, top1, surprisal)


def _frame(lm, positions, token_ids, entropy, top1, surprisal) -> pd.DataFrame:
    texts = lm.tokenizer.batch_decode([[int(t)] for t in token_ids])
    return pd.DataFrame({
        "position": np.asarray(positions, dtype=np.int64), "token_id": np.asarray(token_ids, dtype=np.int64),
        "token_text": texts, "entropy_bits": entropy, "top1_prob": top1, "surprisal_bits": surprisal,
    })


def prompt_token_ids(tokenizer, prompt: str, chat: bool = False) -> list[int]:
    """The prompt as token ids: raw text, or one user message in the tokenizer's chat template."""
    if not chat:
        return tokenizer(prompt)["input_ids"]
    if not tokenizer.chat_template:
        raise HwsimInputError("the tokenizer has no chat template", key="--chat")
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tool_versions() -> dict:
    import torch
    import transformers

    return {"hwsim": hwsim.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def text_provenance(text_path: Path) -> dict:
    """Source and licence of a text, from its sidecar `<text>.json` (written by `hwsim trace source`)."""
    sidecar = text_path.with_name(text_path.name + ".json")
    found = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    return {f"text_{k}" if not k.startswith("text_") else k: v for k, v in found.items()}


def extract(*, model: str, out: Path, mode: str, text: Path | None = None, prompt: str | None = None,
            gguf: str | None = None, revision: str | None = None, max_tokens: int | None = None,
            temperature: float = 0.0, seed: int = 0, context: int = 1024, stride: int = 768,
            chat: bool = False, threads: int = 1, command: str | None = None,
            progress: bool = True) -> pd.DataFrame:
    """Load, run, and write one trace with its provenance. Returns the trace as a DataFrame."""
    import torch

    torch.set_num_threads(threads)
    if mode == "score" and text is None:
        raise HwsimInputError("score mode needs --text", key="--mode")
    if mode == "generate" and prompt is None:
        raise HwsimInputError("generate mode needs --prompt", key="--mode")
    if mode == "generate" and not max_tokens:
        raise HwsimInputError("generate mode needs --max-tokens", key="--max-tokens")
    lm = load_model(model, gguf=gguf, revision=revision)
    provenance = {**lm.provenance, "mode": mode, "threads": threads, "tool_versions": tool_versions(),
                  "created": _dt.date.today().isoformat(), "command": command}
    started = _dt.datetime.now()
    if mode == "score":
        text_path = Path(text)
        if not text_path.is_file():
            raise HwsimInputError("text file not found", file=text_path, key="--text")
        body = text_path.read_text(encoding="utf-8")
        token_ids = lm.tokenizer(body, add_special_tokens=False)["input_ids"]
        if max_tokens:
            token_ids = token_ids[:max_tokens]
        if not token_ids:
            raise HwsimInputError("text has no tokens", file=text_path)
        provenance.update(text_provenance(text_path), text_file=text_path.name,
                          text_sha256=hashlib.sha256(body.encode()).hexdigest(),
                          context_tokens=context, stride_tokens=stride, max_tokens=max_tokens)
        frame = score(lm, token_ids, context, stride, progress)
    elif mode == "generate":
        prompt_ids = prompt_token_ids(lm.tokenizer, prompt, chat)
        provenance.update(prompt=prompt, prompt_format="chat" if chat else "raw",
                          prompt_tokens=len(prompt_ids), max_tokens=max_tokens,
                          decoding="sampled" if temperature > 0 else "greedy",
                          temperature=temperature, seed=seed if temperature > 0 else None,
                          entropy_of="raw next-token distribution (temperature 1)")
        frame = generate(lm, prompt_ids, max_tokens, temperature, seed, progress)
    else:
        raise HwsimInputError(f"unknown mode {mode!r}", key="--mode", allowed="score, generate")
    seconds = (_dt.datetime.now() - started).total_seconds()
    provenance.update(tokens=len(frame), run_seconds=round(seconds, 1),
                      tokens_per_second=round(len(frame) / seconds, 1))
    write_trace(out, frame, provenance)
    return frame
