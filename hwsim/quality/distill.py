"""Train the Mamba-2 quality model: SmolLM2's tokenizer, distilled from SmolLM2-135M-Instruct.

The student reads the same token streams as the shipped traces (same tokenizer), so its entropy can
be compared position by position with the teacher's, and gated by the traces' entropies exactly.
Two phases, one command, resumable (`state.pt` every `--save-every` steps; a killed run continues
from it with the same command):
1. steps < `--pretrain-steps`: plain next-token training on windows from the end of the teacher's
   window order (the part the teacher reaches last, if ever);
2. then distillation on the first `--distill-windows` windows of that order (the teacher's scored
   shards, waited for if not there yet), each batch mixing KL to the teacher's top-k distribution
   (plus the remaining mass as one bucket) with the true token's cross-entropy, and a share
   `--plain-share` of windows from the unscored tail with cross-entropy alone.
The batches depend only on the seed, the step and these arguments, so the command reproduces the
run. Matmuls run in bfloat16 (autocast: AMX or AVX512-BF16 where the CPU has them), the scan and the
losses in float32.

    python -m hwsim.quality.distill --out workloads/models/mamba2-smol-15m --teacher-dir ~/.cache/hwsim/teacher

Training spreads over machines whose caches do not survive by **stages**: `--stage 2 --init-from DIR`
starts from a saved checkpoint (fresh optimizer, its own warm-up and schedule), distils the windows
from `--first-window` on (scored by `teacher --first-shard`), and reads plain windows from
`--tail-offset` on, so no window is distilled twice; `training.json` keeps every stage's arguments,
and the catalog's command chains them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.files import write_atomic, write_text_atomic
from hwsim.paths import WORKLOADS_DIR
from hwsim.quality.teacher import (
    TEACHER,
    TEACHER_GGUF,
    domain_streams,
    load_shards,
    shard_number,
    shard_paths,
    window_order,
)

LN2 = math.log(2.0)


def distill_loss(logits: torch.Tensor, targets: torch.Tensor, topk_ids: torch.Tensor | None,
                 topk_logp: torch.Tensor | None, rest_logp: torch.Tensor | None,
                 alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(loss, cross-entropy, KL) in nats per position, averaged. Without teacher tensors: CE alone.

    KL(teacher || student) over the teacher's top-k tokens plus one bucket holding the rest of both
    distributions' mass: exact when k covers the teacher's support, a lower bound otherwise.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    ce = F.nll_loss(logp.reshape(-1, logp.shape[-1]), targets.reshape(-1))
    if topk_ids is None:
        return ce, ce, None
    student_top = logp.gather(-1, topk_ids.long())
    student_rest = torch.log1p(-student_top.exp().sum(-1).clamp(max=1.0 - 1e-6))
    teacher_top, teacher_rest = topk_logp.float(), rest_logp.float()
    kl = ((teacher_top.exp() * (teacher_top - student_top)).sum(-1)
          + teacher_rest.exp() * (teacher_rest - student_rest)).mean()
    return alpha * kl + (1.0 - alpha) * ce, ce, kl


def build_config(args, vocab_size: int, eos: int):
    from transformers import Mamba2Config

    return Mamba2Config(vocab_size=vocab_size, hidden_size=args.d_model, state_size=args.d_state,
                        num_hidden_layers=args.layers, expand=2, conv_kernel=4, head_dim=args.headdim,
                        num_heads=2 * args.d_model // args.headdim, n_groups=1, chunk_size=64,
                        tie_word_embeddings=True, pad_token_id=eos, bos_token_id=eos, eos_token_id=eos,
                        use_cache=True)


@torch.no_grad()
def teacher_agreement(model, shards: dict, batch: int = 8) -> dict:
    """Per domain on scored windows: student NLL (perplexity), KL to the teacher (bits, top-k bound),
    and the Pearson correlation of student and teacher entropies."""
    model.eval()
    rows = {"prose": [], "code": []}
    for i in range(0, len(shards["tokens"]), batch):
        tokens = torch.as_tensor(shards["tokens"][i:i + batch].astype(np.int64))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(tokens[:, :-1])
        logp = torch.log_softmax(logits.float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(-1) / LN2
        nll = -logp.gather(-1, tokens[:, 1:, None])[..., 0]
        for j in range(len(tokens)):
            k = i + j
            _, _, kl = distill_loss(logits[j:j + 1], tokens[j:j + 1, 1:],
                                    torch.as_tensor(shards["topk_ids"][k:k + 1].astype(np.int64)),
                                    torch.as_tensor(shards["topk_logp"][k:k + 1]),
                                    torch.as_tensor(shards["rest_logp"][k:k + 1]), 1.0)
            rows["code" if shards["domain"][k] else "prose"].append(
                (nll[j].numpy(), entropy[j].numpy(), shards["entropy_bits"][k], float(kl) / LN2))
    model.train()
    out = {}
    for domain, items in rows.items():
        if not items:
            continue
        nll = np.concatenate([r[0] for r in items])
        student = np.concatenate([r[1] for r in items])
        teacher = np.concatenate([r[2] for r in items])
        out[domain] = {"tokens": int(nll.size), "perplexity": float(np.exp(nll.mean())),
                       "kl_to_teacher_bits": float(np.mean([r[3] for r in items])),
                       "student_entropy_bits": float(student.mean()), "teacher_entropy_bits": float(teacher.mean()),
                       "entropy_correlation": float(np.corrcoef(student, teacher)[0, 1])}
    return out


def save_checkpoint(model, config, tokenizer, out: Path, dtype: torch.dtype) -> None:
    """transformers Mamba2ForCausalLM checkpoint (safetensors) + the teacher's tokenizer files."""
    from transformers import Mamba2ForCausalLM

    hf = Mamba2ForCausalLM(config)
    hf.load_state_dict(model.state_dict())
    hf.to(dtype).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher-dir", type=Path, required=False, help="shards of hwsim.quality.teacher")
    parser.add_argument("--evaluate", action="store_true",
                        help="only add the shipped traces' agreement (`evaluation`) to OUT/training.json")
    parser.add_argument("--texts", type=Path, default=WORKLOADS_DIR / "texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-state", type=int, default=128)
    parser.add_argument("--headdim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4, help="windows per step")
    parser.add_argument("--steps", type=int, default=600, help="planned steps (sets the LR schedule)")
    parser.add_argument("--pretrain-steps", type=int, default=150)
    parser.add_argument("--distill-windows", type=int, default=1024)
    parser.add_argument("--plain-share", type=float, default=0.25, help="tail windows in a distillation batch")
    parser.add_argument("--alpha", type=float, default=0.8, help="KL weight in the distillation loss")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--stop-at-step", type=int, default=None, help="stop early, schedule unchanged")
    parser.add_argument("--save-every", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--stage", type=int, default=1, help="training stage (2 on: continues --init-from)")
    parser.add_argument("--init-from", type=Path, default=None, help="checkpoint the stage starts from")
    parser.add_argument("--first-window", type=int, default=0, help="first distilled window of the order")
    parser.add_argument("--tail-offset", type=int, default=0, help="plain windows earlier stages read")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        record = json.loads((args.out / "training.json").read_text())
        record["evaluation"] = trace_agreement(args.out)
        write_text_atomic(args.out / "training.json", json.dumps(record, indent=1, default=str) + "\n")
        return 0
    if args.teacher_dir is None:
        parser.error("--teacher-dir is required for training")
    if (args.stage > 1) != (args.init_from is not None):
        parser.error("--init-from is required from --stage 2 on, and only there")
    if args.init_from is not None and not (args.init_from / "training.json").is_file():
        parser.error(f"--init-from {args.init_from}: no training.json (not a checkpoint of this script)")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "train_log.txt", "a", buffering=1) as log:
        return _train(args, log)


def _train(args, log) -> int:
    from hwsim.quality.corpus import documents
    from hwsim.quality.ssd_model import SsdMamba2LM, init_like_transformers
    from hwsim.traces.extract import load_model

    started = time.time()
    manifest = json.loads((args.teacher_dir / "manifest.json").read_text())
    teacher = load_model(TEACHER, gguf=TEACHER_GGUF)  # for its tokenizer (and provenance) only
    tokenizer, eos = teacher.tokenizer, int(manifest["eos_id"])
    window = int(manifest["window"])
    streams = domain_streams(documents(args.texts), tokenizer, "train")
    order = window_order(streams, window, manifest["prose_share"], manifest["seed"])
    first, end = args.first_window, args.first_window + args.distill_windows
    if first % manifest["windows_per_shard"]:
        raise SystemExit(f"--first-window {first}: not a multiple of the teacher's "
                         f"{manifest['windows_per_shard']} windows per shard")
    tail = (order[:first] + order[end:])[::-1]  # read from the end: the teacher reaches it last
    config = build_config(args, len(tokenizer), eos)
    model = SsdMamba2LM(config)
    init_like_transformers(model, args.seed)
    earlier = previous_stages(args)
    if args.init_from is not None:
        model.load_state_dict(_checkpoint_state(args.init_from, config))
    no_decay = [p for n, p in model.named_parameters() if n.endswith(("A_log", "D", "dt_bias", "norm.weight",
                                                                        "norm_f.weight", "bias"))]
    decay = [p for p in model.parameters() if all(p is not q for q in no_decay)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    state_path = args.out / ("state.pt" if args.stage == 1 else f"state-stage{args.stage}.pt")
    step, history, train_seconds = 0, [], 0.0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, train_seconds = state["step"], state["history"], state["train_seconds"]
        print(f"resumed at step {step}", file=log)

    def tail_window(index: int) -> np.ndarray:
        domain, start = tail[(args.tail_offset + index) % len(tail)]
        return streams[domain][start:start + window + 1]

    distill = None
    last = args.steps if args.stop_at_step is None else min(args.steps, args.stop_at_step)
    validation = load_shards(args.teacher_dir, "validation")
    model.train()
    while step < last:
        rng = np.random.default_rng([args.seed, step])
        for group in optimizer.param_groups:
            group["lr"] = _lr(args, step)
        tick = time.time()
        if step < args.pretrain_steps:
            tokens = np.stack([tail_window(step * args.batch + j) for j in range(args.batch)])
            teacher_rows = None
        else:
            if distill is None:
                distill = _wait_for_shards(args, log)
            plain = rng.random(args.batch) < args.plain_share
            picks = rng.integers(0, len(distill["tokens"]), args.batch)
            tokens = np.stack([tail_window(args.pretrain_steps * args.batch + step * args.batch + j) if p
                               else distill["tokens"][k] for j, (p, k) in enumerate(zip(plain, picks))])
            teacher_rows = [None if p else k for p, k in zip(plain, picks)]
        ids = torch.as_tensor(tokens.astype(np.int64))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids[:, :-1])
        losses, kls, ces = [], [], []
        for j in range(len(ids)):
            k = None if teacher_rows is None else teacher_rows[j]
            teacher = (None, None, None) if k is None else tuple(
                torch.as_tensor(distill[name][k:k + 1].astype(np.int64 if name == "topk_ids" else np.float32))
                for name in ("topk_ids", "topk_logp", "rest_logp"))
            loss, ce, kl = distill_loss(logits[j:j + 1], ids[j:j + 1, 1:], *teacher, args.alpha)
            losses.append(loss)
            ces.append(ce.item())
            if kl is not None:
                kls.append(kl.item())
        loss = torch.stack(losses).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        train_seconds += time.time() - tick
        step += 1
        record = {"step": step, "lr": _lr(args, step - 1), "ce_nats": float(np.mean(ces)),
                  "kl_nats": float(np.mean(kls)) if kls else None, "seconds": round(train_seconds, 1)}
        history.append(record)
        if step % 10 == 0 or step == last:
            print(json.dumps(record), file=log)
        if (validation and step % args.eval_every == 0) or step == last:
            scores = teacher_agreement(model, validation) if validation else {}
            history[-1]["validation"] = scores
            print(json.dumps({"step": step, "validation": scores}), file=log)
        if step % args.save_every == 0 or step == last:
            state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "history": history, "train_seconds": train_seconds}
            write_atomic(state_path, lambda tmp, state=state: torch.save(state, tmp))

    dtype = getattr(torch, args.dtype)
    save_checkpoint(model, config, tokenizer, args.out, dtype)
    model.load_state_dict({k: v.to(dtype).float() for k, v in model.state_dict().items()})
    final = teacher_agreement(model, validation) if validation else {}
    record = {
        "name": args.out.name,
        "architecture": "mamba2 (transformers Mamba2ForCausalLM)",
        "params": sum(p.numel() for p in model.parameters()),
        "config": {"d_model": args.d_model, "n_layers": args.layers, "d_state": args.d_state,
                   "headdim": args.headdim, "n_heads": config.num_heads, "ngroups": 1, "expand": 2, "d_conv": 4,
                   "vocab_size": config.vocab_size},
        "checkpoint_dtype": args.dtype,
        "tokenizer": "SmolLM2-135M-Instruct's (from the teacher's GGUF file), 49152 tokens",
        "teacher": manifest["teacher"],
        "training": (stage := {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "steps_run": step, "tokens_seen": step * args.batch * window,
            "distilled_windows": args.distill_windows, "window_tokens": window,
            "train_wall_s": round(train_seconds, 1), "total_wall_s": round(time.time() - started, 1),
            "torch_version": torch.__version__}),
        "stages": [*earlier, stage],
        "data": manifest["corpus"],
        "validation": {"split": "validation documents (sha256 rule in hwsim.quality.corpus), scored by the "
                                "teacher", **final},
    }
    write_text_atomic(args.out / "training.json", json.dumps(record, indent=1, default=str) + "\n")
    write_text_atomic(args.out / "history.json", json.dumps(history) + "\n")
    return 0


@torch.no_grad()
def trace_agreement(model_dir: Path) -> dict:
    """Per shipped trace (held-out texts and the teacher's own generations) and per domain: the saved
    student's perplexity and the Pearson correlation of its entropy with the trace's (the teacher's)
    at the same positions (same tokenizer, so the alignment is exact)."""
    from transformers import AutoModelForCausalLM

    from hwsim.quality.ssd_model import SsdMamba2LM
    from hwsim.traces import DEFAULT_TRACE_SET, load_trace
    from hwsim.traces.catalog import catalog_entry

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    student = SsdMamba2LM(hf.config)  # the chunked form: fast over a whole trace
    student.load_state_dict(hf.state_dict())
    student.eval()
    per_trace, pooled = {}, {}
    for name in DEFAULT_TRACE_SET:
        trace = load_trace(name)
        ids = torch.as_tensor(trace.token_id.astype(np.int64))[None]
        logp = torch.log_softmax(student(ids)[0].float(), dim=-1)
        entropy = (-(logp.exp() * logp).sum(-1) / LN2).numpy()
        nll = -logp[:-1].gather(-1, ids[0, 1:, None])[:, 0].numpy()
        domain = catalog_entry(name).domain
        per_trace[name] = {"domain": domain, "tokens": int(ids.shape[1]), "perplexity": float(np.exp(nll.mean())),
                           "student_entropy_bits": float(entropy.mean()),
                           "teacher_entropy_bits": float(trace.entropy_bits.mean()),
                           "entropy_correlation": float(np.corrcoef(entropy, trace.entropy_bits)[0, 1])}
        part = pooled.setdefault(domain, ([], [], []))
        part[0].append(entropy), part[1].append(trace.entropy_bits), part[2].append(nll)
    by_domain = {d: {"tokens": int(sum(len(e) for e in s)),
                     "perplexity": float(np.exp(np.concatenate(n).mean())),
                     "entropy_correlation": float(np.corrcoef(np.concatenate(s), np.concatenate(t))[0, 1])}
                 for d, (s, t, n) in pooled.items()}
    return {"split": "the shipped traces (texts held out of training; generated by the teacher)",
            "by_domain": by_domain, "by_trace": per_trace}


def _lr(args, step: int) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def previous_stages(args) -> list[dict]:
    """The training arguments of the stages before this one, from `--init-from`'s training.json."""
    if args.init_from is None:
        return []
    record = json.loads((args.init_from / "training.json").read_text())
    stages = record.get("stages", [record["training"]])[:args.stage - 1]
    if len(stages) != args.stage - 1:
        raise SystemExit(f"--init-from {args.init_from}: has {len(stages)} stage(s), --stage {args.stage} "
                         f"needs {args.stage - 1}")
    return stages


def _checkpoint_state(directory: Path, config) -> dict:
    """A saved checkpoint's parameters in float32, checked to have the geometry the flags give."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    for key in ("vocab_size", "hidden_size", "state_size", "num_hidden_layers", "head_dim", "num_heads"):
        if getattr(hf.config, key) != getattr(config, key):
            raise SystemExit(f"--init-from {directory}: {key} is {getattr(hf.config, key)}, the flags give "
                             f"{getattr(config, key)}")
    return hf.state_dict()


def _wait_for_shards(args, log) -> dict:
    """`--distill-windows` scored windows from `--first-window` on; waits (polling) while the teacher is
    behind."""
    per_shard = json.loads((args.teacher_dir / "manifest.json").read_text())["windows_per_shard"]
    first, needed = args.first_window // per_shard, math.ceil(args.distill_windows / per_shard)

    def complete() -> bool:  # consecutive: a gap would let a later shard stand in for a missing one
        paths = shard_paths(args.teacher_dir, "train", needed, first)
        return len(paths) == needed and shard_number(paths[-1]) == first + needed - 1

    while not complete():
        print(f"waiting for {needed} teacher shards from shard {first}", file=log)
        time.sleep(60)
    shards = load_shards(args.teacher_dir, "train", needed, first=first)
    return {name: value[:args.distill_windows] for name, value in shards.items()}


if __name__ == "__main__":
    sys.exit(main())
