"""Train the shipped small Mamba language model on Python's own documentation and standard library.

One CPU core, seeded, reproducible: `python -m hwsim.quality.train --out workloads/models/NAME`.
The texts the shipped traces were made from (`workloads/texts/*.txt`, their topics and files named in
the `.json` sidecars) are held out of training and are the validation split, so quality is measured
on text the model never saw. Training uses `ScanMambaLM` (the same weights as transformers'
MambaForCausalLM with a fast scan); the result is saved as a Hugging Face checkpoint (safetensors)
with its BPE tokenizer and a `training.json` of provenance and metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import sysconfig
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hwsim.files import write_atomic, write_text_atomic
from hwsim.paths import WORKLOADS_DIR
from hwsim.quality.corpus import SKIP_PARTS, held_out  # the one rule for both models

EOS = "<|endoftext|>"
def training_documents(texts_dir: Path, code_bytes: int) -> tuple[list[str], list[str], dict]:
    """(prose documents, code documents, provenance): pydoc topics and stdlib files, held-out removed."""
    import pydoc_data.topics

    topics_out, files_out = held_out(texts_dir)
    prose_keys = sorted(k for k in pydoc_data.topics.topics if k not in topics_out)
    prose = [pydoc_data.topics.topics[k] for k in prose_keys]
    lib = Path(sysconfig.get_paths()["stdlib"])
    code, code_files, total = [], [], 0
    for path in sorted(lib.rglob("*.py")):
        rel = "Lib/" + path.relative_to(lib).as_posix()
        if rel in files_out or any(part in SKIP_PARTS for part in path.relative_to(lib).parts[:-1]):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if total + len(text) > code_bytes:
            break
        code.append(text)
        code_files.append(rel)
        total += len(text)
    provenance = {
        "python_version": sys.version.split()[0],
        "licence": "PSF-2.0 (Python Software Foundation License Version 2)",
        "prose_source": f"pydoc_data.topics, {len(prose_keys)} topics (held out: {sorted(topics_out)})",
        "prose_bytes": sum(len(t) for t in prose),
        "code_source": f"standard library *.py in sorted path order up to {code_bytes} bytes, "
                       f"skipping {list(SKIP_PARTS)} and held-out files {sorted(files_out)}",
        "code_files": len(code_files),
        "code_first_last": [code_files[0], code_files[-1]] if code_files else [],
        "code_bytes": total,
    }
    return prose, code, provenance


def train_tokenizer(documents: list[str], vocab_size: int):
    """Byte-level BPE (lossless on code whitespace), EOS as the one special token (id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(documents, trainer=trainer)
    return tokenizer


def encode_stream(tokenizer, documents: list[str]) -> torch.Tensor:
    """One token stream: documents joined by EOS."""
    eos = tokenizer.token_to_id(EOS)
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(documents):
        ids.extend(encoding.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def stream_nll_nats(model, ids: torch.Tensor, window: int = 1024) -> tuple[float, int]:
    """Summed next-token NLL (nats) and token count over non-overlapping windows of one stream."""
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start:start + window + 1]
        if len(chunk) < 2:
            break
        logits = model(chunk[None, :-1])
        total += F.cross_entropy(logits[0].float(), chunk[1:], reduction="sum").item()
        count += len(chunk) - 1
    return total, count


def validation_perplexity(model, tokenizer, texts_dir: Path) -> dict:
    """Perplexity per held-out shipped text and over all of them (token-weighted)."""
    model.eval()
    result, total, count = {}, 0.0, 0
    for path in sorted(texts_dir.glob("*.txt")):
        nll, n = stream_nll_nats(model, torch.tensor(tokenizer.encode(path.read_text()).ids))
        result[path.stem] = {"tokens": n, "perplexity": math.exp(nll / n)}
        total, count = total + nll, count + n
    result["all"] = {"tokens": count, "perplexity": math.exp(total / count)}
    model.train()
    return result


def build_config(args, vocab_size: int):
    from transformers import MambaConfig

    return MambaConfig(vocab_size=vocab_size, hidden_size=args.d_model, state_size=args.d_state,
                       num_hidden_layers=args.layers, expand=2, conv_kernel=4, use_cache=True,
                       pad_token_id=0, bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)


def save_checkpoint(model, tokenizer, config, out: Path, dtype: torch.dtype) -> None:
    """Hugging Face MambaForCausalLM checkpoint (safetensors) + fast tokenizer files."""
    from transformers import MambaForCausalLM, PreTrainedTokenizerFast

    hf = MambaForCausalLM(config)
    hf.load_state_dict(model.state_dict())
    hf.to(dtype).save_pretrained(out, safe_serialization=True)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                            unk_token=None).save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--texts", type=Path, default=WORKLOADS_DIR / "texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1000, help="planned steps (sets the LR schedule)")
    parser.add_argument("--stop-at-step", type=int, default=None, help="stop early, schedule unchanged")
    parser.add_argument("--max-train-minutes", type=float, default=None,
                        help="wall-clock guard; the steps run are recorded, so `--stop-at-step` reproduces it")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--prose-share", type=float, default=0.35, help="share of windows drawn from prose")
    parser.add_argument("--code-bytes", type=int, default=6_000_000)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "train_log.txt", "a", buffering=1) as log:
        return _train(args, log)


def _train(args, log) -> int:
    from hwsim.quality.scan_model import ScanMambaLM, init_like_transformers

    started = time.time()

    prose, code, provenance = training_documents(args.texts, args.code_bytes)
    tokenizer = train_tokenizer(prose + code, args.vocab)
    prose_ids, code_ids = encode_stream(tokenizer, prose), encode_stream(tokenizer, code)
    print(f"prose {len(prose_ids)} tokens, code {len(code_ids)} tokens", file=log)

    config = build_config(args, tokenizer.get_vocab_size())
    model = ScanMambaLM(config)
    init_like_transformers(model, args.seed)
    no_decay = [p for n, p in model.named_parameters() if n.endswith(("A_log", "D", "bias", "norm.weight",
                                                                        "norm_f.weight"))]
    decay = [p for n, p in model.named_parameters() if all(p is not q for q in no_decay)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(args.seed)
    window = args.seq_len + 1

    def batch() -> torch.Tensor:
        rows = []
        for _ in range(args.batch):
            source = prose_ids if torch.rand((), generator=generator) < args.prose_share else code_ids
            start = int(torch.randint(0, len(source) - window, (), generator=generator))
            rows.append(source[start:start + window])
        return torch.stack(rows)

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))

    last = args.steps if args.stop_at_step is None else min(args.steps, args.stop_at_step)
    model.train()
    train_started, ema = time.time(), None
    steps_run = 0
    for step in range(last):
        if args.max_train_minutes is not None and time.time() - train_started > 60 * args.max_train_minutes:
            break
        steps_run = step + 1
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        ids = batch()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 10 == 0 or step == last - 1:
            rate = (step + 1) * args.batch * args.seq_len / (time.time() - train_started)
            print(f"step {step} loss {loss.item():.4f} ema {ema:.4f} lr {lr_at(step):.2e} "
                  f"tokens_per_s {rate:.0f}", file=log)
        if (step + 1) % args.save_every == 0 and step + 1 < last:
            state = {"step": step + 1, "model": model.state_dict()}
            write_atomic(args.out / "partial.pt", lambda tmp, state=state: torch.save(state, tmp))
    train_seconds = time.time() - train_started

    dtype = getattr(torch, args.dtype)
    save_checkpoint(model, tokenizer, config, args.out, dtype)
    # Validation on the weights as saved (rounded to the checkpoint dtype), run in fp32.
    model.load_state_dict({k: v.to(dtype).float() for k, v in model.state_dict().items()})
    validation = validation_perplexity(model, tokenizer, args.texts)
    params = sum(p.numel() for p in model.parameters())
    record = {
        "name": args.out.name,
        "architecture": "mamba1 (transformers MambaForCausalLM)",
        "params": params,
        "config": {"d_model": args.d_model, "n_layers": args.layers, "d_state": args.d_state, "expand": 2,
                   "d_conv": 4, "vocab_size": config.vocab_size, "dt_rank": int(config.time_step_rank)},
        "checkpoint_dtype": args.dtype,
        "training": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "steps_run": steps_run, "tokens_seen": steps_run * args.batch * args.seq_len,
                     "train_wall_s": round(train_seconds, 1), "total_wall_s": round(time.time() - started, 1),
                     "torch_threads": 1, "torch_version": torch.__version__,
                     "final_train_loss_ema_nats": ema},
        "data": {**provenance, "prose_tokens": len(prose_ids), "code_tokens": len(code_ids)},
        "validation": {"split": "workloads/texts/*.txt (held out of training)", **validation},
    }
    write_text_atomic(args.out / "training.json", json.dumps(record, indent=1) + "\n")
    (args.out / "partial.pt").unlink(missing_ok=True)
    print(json.dumps(record["validation"]), file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
