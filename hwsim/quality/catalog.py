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


def distilled_entry(directory: Path, record: dict) -> dict:
    """A model distilled from the traces' teacher (`hwsim.quality.distill`)."""
    training = record["training"]
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    flags = ("steps", "pretrain_steps", "distill_windows", "plain_share", "alpha", "batch", "layers", "d_model",
             "d_state", "headdim", "lr", "seed")
    command = ("python -m hwsim.quality.teacher --out TEACHER_DIR && "  # its default 64 validation windows per domain
               f"python -m hwsim.quality.distill --out workloads/models/{record['name']} --teacher-dir TEACHER_DIR "
               + " ".join(f"--{k.replace('_', '-')} {training[k]}" for k in flags)
               + (f" --stop-at-step {training['steps_run']}" if training["steps_run"] < training["steps"] else "")
               + f" && python -m hwsim.quality.distill --out workloads/models/{record['name']} --evaluate")
    round3 = lambda d: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}  # noqa: E731
    out = {
        "name": record["name"], "architecture": record["architecture"], "params": record["params"],
        "config": record["config"], "checkpoint_dtype": record["checkpoint_dtype"], "size_on_disk_bytes": size,
        "tokenizer": record["tokenizer"],
        "teacher": {k: record["teacher"].get(k) for k in ("model_package", "model_package_version", "model_file",
                                                          "model_file_sha256", "model_architecture")},
        "training": {"tokens_seen": training["tokens_seen"], "steps": training["steps_run"],
                     "planned_steps": training["steps"], "distilled_windows": training["distilled_windows"],
                     "window_tokens": training["window_tokens"], "train_wall_s": training["train_wall_s"],
                     "total_wall_s": training["total_wall_s"], "torch_threads": training["threads"],
                     "seed": training["seed"], "command": command},
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
