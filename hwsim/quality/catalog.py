"""workloads/models/catalog.yaml: one entry per shipped model, derived from its `training.json`.

`python -m hwsim.quality.catalog` rewrites the catalog from the model folders, so the figures in it
are never typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from hwsim.files import write_text_atomic
from hwsim.quality.model import MODELS_DIR
from hwsim.quality.teacher import WINDOWS_PER_SHARD


def stage_command(name: str, training: dict) -> str:
    """The distill command of one training stage, from the arguments its training.json kept."""
    flags = ("steps", "pretrain_steps", "distill_windows", "plain_share", "alpha", "batch", "layers", "d_model",
             "d_state", "headdim", "lr", "seed")
    stage = int(training.get("stage", 1))
    later = ("warmup", "first_window", "tail_offset") if stage > 1 else ()
    return (f"python -m hwsim.quality.distill --out workloads/models/{name} --teacher-dir TEACHER_DIR "
            + " ".join(f"--{k.replace('_', '-')} {training[k]}" for k in (*flags, *later))
            + (f" --stage {stage} --init-from workloads/models/{name}" if stage > 1 else "")
            + (f" --stop-at-step {training['steps_run']}" if training["steps_run"] < training["steps"] else ""))


def distilled_entry(directory: Path, record: dict) -> dict:
    """A model distilled from the traces' teacher (`hwsim.quality.distill`), over one or more stages."""
    training = record["training"]
    stages = record.get("stages", [training])
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    teacher = [  # the teacher's defaults (64 validation windows per domain, WINDOWS_PER_SHARD); only the
        # shards the stage distils (scoring the whole corpus would take hours)
        "python -m hwsim.quality.teacher --out TEACHER_DIR"
        + (f" --first-shard {s['first_window'] // WINDOWS_PER_SHARD}" if s.get("first_window") else "")
        + f" --max-shards {-(-(s.get('first_window', 0) + s['distill_windows']) // WINDOWS_PER_SHARD)}"
        for s in stages]
    command = (" && ".join(f"{t} && {stage_command(record['name'], s)}" for t, s in zip(teacher, stages))
               + f" && python -m hwsim.quality.distill --out workloads/models/{record['name']} --evaluate")
    round3 = lambda d: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}
    out = {
        "name": record["name"], "architecture": record["architecture"], "params": record["params"],
        "config": record["config"], "checkpoint_dtype": record["checkpoint_dtype"], "size_on_disk_bytes": size,
        "tokenizer": record["tokenizer"],
        "teacher": {k: record["teacher"].get(k) for k in ("model_package", "model_package_version", "model_file",
                                                          "model_file_sha256", "model_architecture")},
        "training": {"tokens_seen": sum(s["tokens_seen"] for s in stages),
                     "steps": sum(s["steps_run"] for s in stages),
                     "distilled_windows": sum(s["distilled_windows"] for s in stages),
                     "window_tokens": training["window_tokens"],
                     "train_wall_s": round(sum(s["train_wall_s"] for s in stages), 1),
                     "total_wall_s": round(sum(s["total_wall_s"] for s in stages), 1),
                     "torch_threads": training["threads"], "command": command,
                     "stages": [{"stage": int(s.get("stage", 1)), "tokens_seen": s["tokens_seen"],
                                 "steps": s["steps_run"], "planned_steps": s["steps"],
                                 "distilled_windows": s["distilled_windows"],
                                 "first_distilled_window": s.get("first_window", 0), "lr": s["lr"],
                                 "seed": s["seed"], "train_wall_s": s["train_wall_s"],
                                 "torch_version": s.get("torch_version")} for s in stages]},
        "data": {k: v for k, v in record["data"].items()},
        "validation": {"split": record["validation"]["split"],
                       **{d: round3(v) for d, v in record["validation"].items() if isinstance(v, dict)}},
    }
    if "evaluation" in record:
        out["evaluation"] = {"split": record["evaluation"]["split"],
                             "by_domain": {d: round3(v) for d, v in record["evaluation"]["by_domain"].items()},
                             "by_trace": {t: round3(v) for t, v in record["evaluation"]["by_trace"].items()}}
    return out


def entry(directory: Path) -> dict:
    record = json.loads((directory / "training.json").read_text())
    if "teacher" in record:
        return distilled_entry(directory, record)
    training, data, validation = record["training"], record["data"], record["validation"]
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    return {
        "name": record["name"],
        "architecture": record["architecture"],
        "params": record["params"],
        "config": record["config"],
        "checkpoint_dtype": record["checkpoint_dtype"],
        "size_on_disk_bytes": size,
        "tokenizer": f"byte-level BPE, {record['config']['vocab_size']} tokens, trained on the training split "
                     "(tokenizer.json)",
        "training": {
            "tokens_seen": training["tokens_seen"],
            "steps": training["steps_run"],
            "planned_steps": training["steps"],
            "batch": training["batch"],
            "seq_len": training["seq_len"],
            "train_wall_s": training["train_wall_s"],
            "total_wall_s": training["total_wall_s"],
            "torch_threads": training["torch_threads"],
            "seed": training["seed"],
            "command": "python -m hwsim.quality.train --out workloads/models/{} --steps {} --stop-at-step {}"
                       .format(record["name"], training["steps"], training["steps_run"]),
        },
        "data": {
            "prose": data["prose_source"].split(" (held out")[0],
            "prose_tokens": data["prose_tokens"],
            "code": f"{data['code_files']} standard-library files, {data['code_bytes']} bytes "
                    f"({data['code_first_last'][0]} .. {data['code_first_last'][-1]})",
            "code_tokens": data["code_tokens"],
            "python_version": data["python_version"],
            "licence": data["licence"],
        },
        "validation": {
            "split": validation["split"],
            "tokens": validation["all"]["tokens"],
            "perplexity": round(validation["all"]["perplexity"], 3),
            "perplexity_by_text": {k: round(v["perplexity"], 3) for k, v in validation.items()
                                   if isinstance(v, dict) and k != "all"},
        },
    }


def write_catalog(models_dir: Path = MODELS_DIR) -> Path:
    models = [entry(d) for d in sorted(models_dir.iterdir()) if (d / "training.json").is_file()]
    path = models_dir / "catalog.yaml"
    header = ("# Shipped language models for `hwsim quality` (generated by python -m hwsim.quality.catalog "
              "from each folder's training.json).\n")
    write_text_atomic(path, header + yaml.safe_dump({"models": models}, sort_keys=False, width=110))
    return path


if __name__ == "__main__":
    print(write_catalog())
    sys.exit(0)
