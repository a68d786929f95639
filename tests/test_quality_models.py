"""The shipped model catalog (workloads/models) and the training script."""

import json
from pathlib import Path

import pytest
import yaml

from hwsim.paths import WORKLOADS_DIR

CATALOG = WORKLOADS_DIR / "models" / "catalog.yaml"


def _entries():
    return yaml.safe_load(CATALOG.read_text())["models"] if CATALOG.is_file() else []


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["name"])
def test_catalog_entry_matches_its_files(entry):
    directory = WORKLOADS_DIR / "models" / entry["name"]
    record = json.loads((directory / "training.json").read_text())
    assert entry["params"] == record["params"]
    stages = record.get("stages", [record["training"]])
    assert entry["training"]["tokens_seen"] == sum(s["tokens_seen"] for s in stages)
    if "teacher" in record:  # distilled: validation per domain, against the teacher
        for domain in ("prose", "code"):
            assert entry["validation"][domain]["perplexity"] == pytest.approx(
                record["validation"][domain]["perplexity"], rel=1e-3)
        assert set(entry["evaluation"]["by_domain"]) == {"prose", "code", "generated"}
    else:
        assert entry["validation"]["perplexity"] == pytest.approx(record["validation"]["all"]["perplexity"],
                                                                  rel=1e-4)
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    assert entry["size_on_disk_bytes"] == pytest.approx(size, rel=0.05)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training.json"):
        assert (directory / name).is_file(), name


@pytest.mark.torch
@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["name"])
def test_shipped_model_steps_like_the_training_model(entry):
    """The checkpoint's step-by-step (cached-state) logits equal the training model's sequence logits."""
    torch = pytest.importorskip("torch")
    import hwsim.quality  # noqa: F401
    from hwsim.quality.model import load_model
    from hwsim.quality.scan_model import ScanMambaLM
    from hwsim.quality.ssd_model import SsdMamba2LM

    torch.set_num_threads(1)
    loaded = load_model(entry["name"])
    ids = torch.tensor([loaded.tokenizer("def f(x):\n    return x + 1\n")["input_ids"][:16]])
    scan = (SsdMamba2LM if entry["architecture"].startswith("mamba2") else ScanMambaLM)(loaded.model.config)
    scan.load_state_dict(loaded.model.state_dict())
    with torch.no_grad():
        expected = scan(ids)[0]
        out, steps = None, []
        for t in range(ids.shape[1]):
            out = loaded.model(ids[:, t:t + 1], cache=None if out is None else out.cache, use_cache=True)
            steps.append(out.logits[0, -1])
    assert (torch.stack(steps) - expected).abs().max().item() < 1e-3


@pytest.mark.slow
@pytest.mark.torch
def test_training_script_end_to_end(tmp_path: Path):
    pytest.importorskip("tokenizers")
    from hwsim.quality import train

    out = tmp_path / "m"
    args = ["--out", str(out), "--steps", "3", "--code-bytes", "100000", "--batch", "2", "--seq-len", "32",
            "--d-model", "32", "--layers", "1", "--vocab", "400", "--dtype", "float32"]
    assert train.main(args) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["training"]["steps_run"] == 3 and record["validation"]["all"]["perplexity"] > 1
    from hwsim.quality.model import load_model

    loaded = load_model(out)
    assert loaded.model.config.vocab_size == 400 and loaded.tokenizer is not None
