"""Load a Hugging Face Mamba / Mamba-2 causal LM on CPU and reach its per-layer states between steps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from hwsim.errors import HwsimInputError
from hwsim.paths import WORKLOADS_DIR

MODELS_DIR = WORKLOADS_DIR / "models"
DEFAULT_MODEL = "mamba2-smol-14m"


@dataclass
class LoadedModel:
    """The model (fp32, eval), its tokenizer (None for tiny test models) and a content id for caches."""

    model: torch.nn.Module
    tokenizer: object | None
    model_id: str
    name: str

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


def model_directory(ref: str | Path | None) -> Path:
    """A directory path, or a name under workloads/models (default: the shipped model)."""
    ref = DEFAULT_MODEL if ref is None else ref
    for candidate in (Path(ref), MODELS_DIR / str(ref)):
        if (candidate / "config.json").is_file():
            return candidate
    known = sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file()) \
        if MODELS_DIR.is_dir() else []
    raise HwsimInputError(f"no Hugging Face checkpoint (config.json) at {ref!r}", key="--model",
                          allowed=", ".join(known) + " (or a local checkpoint directory)")


def load_model(ref: str | Path | None = None) -> LoadedModel:
    """Load a local MambaForCausalLM / Mamba2ForCausalLM checkpoint in fp32 for the pure-PyTorch path."""
    import logging

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    # transformers warns on every model that the CUDA kernels are missing and it falls back to its
    # PyTorch path: that is the intended path here (CPU), so the warning is said once by hwsim instead
    for name in ("transformers.models.mamba.modeling_mamba", "transformers.models.mamba2.modeling_mamba2"):
        logging.getLogger(name).setLevel(logging.ERROR)
    directory = model_directory(ref)
    config = AutoConfig.from_pretrained(directory)
    if config.model_type not in ("mamba", "mamba2"):
        raise HwsimInputError(f"model_type {config.model_type!r} is not a Mamba model", file=directory,
                              allowed="mamba, mamba2")
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    has_tokenizer = any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json"))
    tokenizer = AutoTokenizer.from_pretrained(directory) if has_tokenizer else None  # None: random tokens
    digest = hashlib.sha256()
    for name in sorted(p.name for p in directory.glob("*.safetensors")) or ["config.json"]:
        digest.update((directory / name).read_bytes())
    return LoadedModel(model, tokenizer, digest.hexdigest()[:16], directory.name)


def tiny_model(architecture: str = "mamba", *, vocab_size: int = 64, seed: int = 0, **overrides) -> LoadedModel:
    """A small random-initialised model from a config (tests; no download)."""
    from transformers import Mamba2Config, Mamba2ForCausalLM, MambaConfig, MambaForCausalLM

    torch.manual_seed(seed)
    if architecture == "mamba":
        config = MambaConfig(vocab_size=vocab_size, hidden_size=32, state_size=8, num_hidden_layers=2,
                             **overrides)
        model = MambaForCausalLM(config)
    else:
        config = Mamba2Config(vocab_size=vocab_size, hidden_size=32, state_size=8, num_hidden_layers=2,
                              num_heads=8, head_dim=8, n_groups=1, expand=2, chunk_size=16, **overrides)
        model = Mamba2ForCausalLM(config)
    ident = hashlib.sha256(json.dumps([architecture, vocab_size, seed, sorted(overrides.items())],
                                      default=str).encode()).hexdigest()[:16]
    return LoadedModel(model.eval(), None, f"tiny-{ident}", f"tiny-{architecture}")


def layer_states(cache, n_layers: int, *, conv: bool) -> list[torch.Tensor]:
    """The cache's own state tensors (modified in place by the model each step): SSM states per layer,
    then conv states when `conv`."""
    states = [cache.get_recurrent_state(i, state_idx=0) for i in range(n_layers)]
    if conv:
        states += [cache.get_conv_state(i, state_idx=0) for i in range(n_layers)]
    if any(s is None for s in states):
        raise RuntimeError("cache holds no state yet: run one step first")
    return states
