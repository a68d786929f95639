"""Token streams to evaluate on: the shipped texts (workloads/texts) in the model's own tokenizer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimInputError
from hwsim.paths import WORKLOADS_DIR

TEXTS_DIR = WORKLOADS_DIR / "texts"


@dataclass(frozen=True)
class Stream:
    """One token stream: where it came from and a content key for caches."""

    source: str
    offset_tokens: int
    token_ids: np.ndarray
    text_tokens: int = 0  # tokens of the whole source text (aligns external traces proportionally)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.token_ids.astype(np.int64).tobytes()).hexdigest()[:16]


def text_streams(tokenizer, *, tokens: int, streams: int, texts_dir: Path = TEXTS_DIR) -> list[Stream]:
    """Stream k reads text k mod n (sorted names) from token (k div n) * tokens, so streams never overlap."""
    paths = sorted(texts_dir.glob("*.txt"))
    if not paths:
        raise HwsimInputError("no *.txt texts to evaluate on", file=texts_dir)
    encoded = {p.stem: np.asarray(tokenizer(p.read_text())["input_ids"], dtype=np.int64) for p in paths}
    names = list(encoded)
    out = []
    for k in range(streams):
        name, offset = names[k % len(names)], (k // len(names)) * tokens
        ids = encoded[name][offset:offset + tokens]
        if len(ids) < tokens:
            raise HwsimInputError(f"text {name} has {len(encoded[name])} tokens, stream {k} needs "
                                  f"{offset + tokens}; lower --tokens or --streams", key="--tokens")
        out.append(Stream(name, offset, ids, len(encoded[name])))
    return out


def same_tokenizer_as_traces(tokenizer, names: list[str] | None = None, probe_tokens: int = 64) -> bool:
    """True when `tokenizer` decodes the shipped traces' token ids to the traces' own token texts (the
    traces' tokenizer): streams can then be the traces' tokens, aligned exactly with their entropies."""
    from hwsim.traces import DEFAULT_TRACE_SET, load_trace

    if tokenizer is None:
        return False
    for name in names or DEFAULT_TRACE_SET:
        trace = load_trace(name, with_text=True)
        try:
            decoded = [tokenizer.decode([int(i)]) for i in trace.token_id[:probe_tokens]]
        except (IndexError, KeyError, ValueError, TypeError, OverflowError):
            return False
        if decoded != list(trace.token_text[:probe_tokens]):
            return False
    return True


def trace_streams(*, tokens: int, streams: int, names: list[str] | None = None,
                  start_tokens: int = 0) -> list[Stream]:
    """Stream k reads shipped trace k mod n (catalog order) from token start + (k div n) * tokens: the
    traces' own token ids, so an external gate on the trace's entropies is aligned exactly."""
    from hwsim.traces import DEFAULT_TRACE_SET, load_trace

    names = list(names or DEFAULT_TRACE_SET)
    ids = {name: load_trace(name).token_id.astype(np.int64) for name in names}
    out = []
    for k in range(streams):
        name, offset = names[k % len(names)], start_tokens + (k // len(names)) * tokens
        chosen = ids[name][offset:offset + tokens]
        if len(chosen) < tokens:
            raise HwsimInputError(f"trace {name} has {len(ids[name])} tokens, stream {k} needs "
                                  f"{offset + tokens}; lower --tokens or --streams", key="--tokens")
        out.append(Stream(name, offset, chosen, 0))
    return out


def random_streams(vocab_size: int, *, tokens: int, streams: int, seed: int = 0) -> list[Stream]:
    """Seeded random token streams (for tiny test models without a tokenizer)."""
    rng = np.random.default_rng(seed)
    return [Stream(f"random-{seed}-{k}", 0, rng.integers(0, vocab_size, tokens)) for k in range(streams)]
