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


def random_streams(vocab_size: int, *, tokens: int, streams: int, seed: int = 0) -> list[Stream]:
    """Seeded random token streams (for tiny test models without a tokenizer)."""
    rng = np.random.default_rng(seed)
    return [Stream(f"random-{seed}-{k}", 0, rng.integers(0, vocab_size, tokens)) for k in range(streams)]
