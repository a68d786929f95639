"""hwsim's Mamba-2 decode step computes exactly what transformers' PyTorch step computes.

The gated evaluation steps through `hwsim.quality.mamba2_step.decode_step` (fewer passes over the
state) after transformers' first step; these tests hold it to the reference bit for bit, logits and
both cached states, on tiny random models (no download) with the variations the code branches on.
"""

import pytest

torch = pytest.importorskip("torch")

from hwsim.quality.mamba2_step import decode_step
from hwsim.quality.model import tiny_model

pytestmark = pytest.mark.torch


def _grouped_model():
    from transformers import Mamba2Config, Mamba2ForCausalLM

    torch.manual_seed(5)
    config = Mamba2Config(vocab_size=50, hidden_size=32, state_size=16, num_hidden_layers=2, num_heads=4,
                          head_dim=16, n_groups=2, expand=2, chunk_size=16, residual_in_fp32=False)
    return Mamba2ForCausalLM(config).eval()


@pytest.mark.parametrize("model", [
    pytest.param(lambda: tiny_model("mamba2", vocab_size=64, seed=3).model, id="tiny"),
    pytest.param(_grouped_model, id="two-groups-bf-residual"),
])
@pytest.mark.parametrize("rows", [1, 7])
@torch.no_grad()
def test_decode_step_is_transformers_step_bit_for_bit(model, rows):
    model = model()
    # scale A so decays are far from 1 and differences would show within a few steps
    for layer in model.backbone.layers:
        layer.mixer.A_log.data.uniform_(-1.0, 2.0)
        layer.mixer.dt_bias.data.uniform_(-2.0, 1.0)
    ids = torch.randint(0, model.config.vocab_size, (rows, 24), generator=torch.Generator().manual_seed(rows))
    ours, theirs = (model(ids[:, :1], use_cache=True).cache for _ in range(2))
    for t in range(1, ids.shape[1]):
        expected = model(ids[:, t:t + 1], cache=theirs, use_cache=True).logits[:, -1].float()
        got = decode_step(model, ids[:, t], ours)
        assert torch.equal(got, expected), f"logits differ at step {t}"
        for layer in range(model.config.num_hidden_layers):
            assert torch.equal(ours.get_recurrent_state(layer, state_idx=0),
                               theirs.get_recurrent_state(layer, state_idx=0))
            assert torch.equal(ours.get_conv_state(layer, state_idx=0), theirs.get_conv_state(layer, state_idx=0))


@torch.no_grad()
def test_decode_step_follows_a_state_rewritten_between_steps():
    """The gate overwrites the cache's state tensors in place between steps; the step must read them."""
    model = tiny_model("mamba2", vocab_size=64, seed=1).model
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(0))
    ours, theirs = (model(ids[:, :1], use_cache=True).cache for _ in range(2))
    for cache in (ours, theirs):
        cache.get_recurrent_state(0, state_idx=0).mul_(0.5)
    expected = model(ids[:, 1:2], cache=theirs, use_cache=True).logits[:, -1].float()
    assert torch.equal(decode_step(model, ids[:, 1], ours), expected)
