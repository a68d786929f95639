"""The training model's fast scan against transformers' MambaForCausalLM on the same weights."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.torch


def _pair(seed=0):
    from transformers import MambaConfig, MambaForCausalLM

    import hwsim.quality  # noqa: F401
    from hwsim.quality.scan_model import ScanMambaLM

    torch.manual_seed(seed)
    config = MambaConfig(vocab_size=50, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2,
                         use_cache=False)
    reference = MambaForCausalLM(config).eval()
    with torch.no_grad():  # a trained-looking spread of decays, not only the init's
        for layer in reference.backbone.layers:
            layer.mixer.A_log.add_(torch.randn_like(layer.mixer.A_log) * 0.5)
    model = ScanMambaLM(config)
    model.load_state_dict(reference.state_dict())
    return reference, model


def test_state_dict_maps_one_to_one():
    reference, model = _pair()
    assert set(model.state_dict()) == set(reference.state_dict())


def test_forward_matches_transformers_within_1e4():
    reference, model = _pair()
    ids = torch.randint(0, 50, (3, 37), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(ids, use_cache=False).logits
        got = model(ids)
    assert (got - expected).abs().max().item() < 1e-4


def test_gradients_match_transformers_within_1e4():
    reference, model = _pair(seed=3)
    reference.train()
    ids = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(2))
    for net, logits in ((reference, lambda: reference(ids, use_cache=False).logits), (model, lambda: model(ids))):
        loss = torch.nn.functional.cross_entropy(logits()[:, :-1].reshape(-1, 50), ids[:, 1:].reshape(-1))
        loss.backward()
    ref_grads = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        expected = ref_grads[name].grad
        assert (param.grad - expected).abs().max().item() < 1e-4 * max(1.0, expected.abs().max().item()), name


def test_selective_scan_backward_is_exact():
    from hwsim.quality.scan_model import SelectiveScan

    g = torch.Generator().manual_seed(0)
    args = (torch.rand(6, 2, 3, generator=g, dtype=torch.double).requires_grad_(),
            torch.randn(6, 2, 3, generator=g, dtype=torch.double).requires_grad_(),
            (-torch.rand(3, 4, generator=g, dtype=torch.double)).requires_grad_(),
            torch.randn(6, 2, 4, generator=g, dtype=torch.double).requires_grad_(),
            torch.randn(6, 2, 4, generator=g, dtype=torch.double).requires_grad_())
    assert torch.autograd.gradcheck(SelectiveScan.apply, args)
