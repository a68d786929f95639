"""The state store: what a write at some precision reads back."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import hwsim.quality  # noqa: F401
from hwsim.quality.quantise import StateFormat, quantise_rows, relative_error, store

pytestmark = pytest.mark.torch


def _state(rows=4, elements=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, elements, generator=g) * torch.rand(rows, elements, generator=g) ** 2


def test_float_widths():
    x = _state()
    assert torch.equal(quantise_rows(x, 32, StateFormat()), x)
    assert torch.equal(quantise_rows(x, 16, StateFormat()), x.half().float())


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("scale_bits", [8, 16, 32])
def test_integer_error_is_at_most_half_a_step_and_never_clips(bits, scale_bits):
    x = _state()
    fmt = StateFormat(group_size=16, scale_bits=scale_bits)
    y = quantise_rows(x, bits, fmt)
    groups_x, groups_y = x.view(4, -1, 16), y.view(4, -1, 16)
    levels = 2 ** (bits - 1) - 1
    # the stored scale is absmax / levels rounded up (a power of two at 8 bits), so nothing clips and
    # every value is within half a scale step
    scale_upper = groups_x.abs().amax(-1, keepdim=True) / levels * (2.0 if scale_bits == 8 else 1.001)
    assert ((groups_x - groups_y).abs() <= scale_upper / 2 + 1e-7).all()


def test_finer_groups_and_more_bits_lose_less():
    x = _state(elements=1024)
    errors = {(b, g): relative_error(quantise_rows(x, b, StateFormat(g)), x).mean().item()
              for b in (4, 8) for g in (16, 64, 1024)}
    assert errors[8, 16] < errors[4, 16]
    assert errors[4, 16] < errors[4, 64] < errors[4, 1024]


def test_store_applies_each_rows_own_width():
    x = _state(rows=3).view(3, 16, 16)
    y = store(x, torch.tensor([32, 16, 4]), StateFormat(group_size=16))
    assert torch.equal(y[0], x[0])
    assert torch.equal(y[1], x[1].half().float())
    assert torch.equal(y[2].reshape(1, -1), quantise_rows(x[2].reshape(1, -1), 4, StateFormat(group_size=16)))


def test_stochastic_rounding_is_seeded_and_unbiased():
    x = torch.full((1, 4096), 0.3)
    x[0, 0] = 1.0  # sets the scale: int4 step 1/7
    fmt = StateFormat(group_size=4096, scale_bits=32, rounding="stochastic")
    a = quantise_rows(x, 4, fmt, torch.Generator().manual_seed(5))
    b = quantise_rows(x, 4, fmt, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    nearest = quantise_rows(x, 4, StateFormat(group_size=4096, scale_bits=32))
    assert abs(a[0, 1:].mean().item() - 0.3) < 0.005 < abs(nearest[0, 1:].mean().item() - 0.3)


def test_eight_bit_scales_are_powers_of_two():
    x = _state()
    y = quantise_rows(x, 4, StateFormat(group_size=256, scale_bits=8))
    scale = torch.exp2(torch.ceil(torch.log2(x.abs().amax(-1, keepdim=True) / 7)))
    codes = y / scale
    assert torch.equal(codes, torch.round(codes))
    assert codes.abs().max() <= 7


@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.sampled_from([2, 4, 8, 16, 32]), min_size=1, max_size=6),
       group=st.sampled_from([7, 16, 64, 300]), seed=st.integers(0, 2**16))
def test_store_equals_each_row_quantised_alone(widths, group, seed):
    """The gather/scatter of `store` (and its one-width shortcut) changes no value: each row reads
    back exactly what quantising that row alone gives, whatever the mix of widths and padding."""
    fmt = StateFormat(group_size=group)
    x = _state(rows=len(widths), elements=200, seed=seed).view(len(widths), 8, 25)
    y = store(x, torch.tensor(widths), fmt)
    assert y.shape == x.shape and y.dtype == x.dtype
    for row, bits in enumerate(widths):
        assert torch.equal(y[row].reshape(1, -1), quantise_rows(x[row].reshape(1, -1), bits, fmt))
