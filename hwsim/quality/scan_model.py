"""A Mamba-1 language model for training on one CPU core: same weights as transformers' MambaForCausalLM.

transformers' pure-PyTorch Mamba trains at ~20 tokens/s on one core because autograd records every
step of its Python loop over time. Here the selective scan is one autograd node with a hand-written
backward (`SelectiveScan`): the forward and reverse recurrences are one fused multiply-add per step
on time-major tensors, everything else (projections, convolution, discretisation, the C contraction)
is vectorised over the whole sequence. The parameter names are MambaForCausalLM's, so
`model.state_dict()` loads into it 1:1 and the trained model is saved as a Hugging Face checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelectiveScan(torch.autograd.Function):
    """Mamba-1 selective scan over time-major inputs; returns y_t = C_t . h_t as [l, b, d].

    h_t = exp(dt_t A) * h_{t-1} + (dt_t x_t) B_t, h_{-1} = 0. Each step works on one [b, d, n]
    block that stays in cache, instead of streaming whole-sequence [l, b, d, n] temporaries through
    memory (which is what makes an autograd-recorded loop or a materialised parallel scan slow on a
    CPU); the states are written once for the backward. The backward is the reverse recurrence
    g_t = C_t gy_t + exp(dt_{t+1} A) g_{t+1}, with every gradient reduced inside the same step.
    """

    @staticmethod
    def forward(ctx, dt, dtx, a, b_in, c_in):  # dt, dtx [l, b, d]; a [d, n]; b_in, c_in [l, b, n]
        length = dt.shape[0]
        states = dt.new_empty(length, dt.shape[1], dt.shape[2], a.shape[1])
        y = dt.new_empty(dt.shape)
        for t in range(length):
            drive = dtx[t, :, :, None] * b_in[t, :, None, :]
            if t == 0:
                states[t] = drive
            else:
                torch.addcmul(drive, torch.exp(dt[t, :, :, None] * a), states[t - 1], out=states[t])
            torch.bmm(states[t], c_in[t, :, :, None], out=y[t, :, :, None])
        ctx.save_for_backward(dt, dtx, a, b_in, c_in, states)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        dt, dtx, a, b_in, c_in, states = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        grad_dt, grad_dtx = torch.zeros_like(dt), torch.empty_like(dtx)
        grad_b, grad_c = torch.empty_like(b_in), torch.empty_like(c_in)
        grad_a = torch.zeros_like(a)
        carry = None
        for t in range(dt.shape[0] - 1, -1, -1):
            g = grad_y[t, :, :, None] * c_in[t, :, None, :]                # dL/dh_t, [b, d, n]
            if carry is not None:
                g += carry
            torch.bmm(states[t].transpose(1, 2), grad_y[t, :, :, None], out=grad_c[t, :, :, None])
            torch.bmm(g, b_in[t, :, :, None], out=grad_dtx[t, :, :, None])
            torch.bmm(g.transpose(1, 2), dtx[t, :, :, None], out=grad_b[t, :, :, None])
            if t > 0:
                decay = torch.exp(dt[t, :, :, None] * a)
                weighted = g * states[t - 1] * decay                       # dL/d(dt_t A)
                grad_dt[t] = (weighted * a).sum(-1)
                grad_a += (weighted * dt[t, :, :, None]).sum(0)
                carry = decay * g
        return grad_dt, grad_dtx, grad_a, grad_b, grad_c


class ScanMixer(nn.Module):
    """MambaMixer's parameters and maths; the sequence form only (training, scoring)."""

    def __init__(self, d_model: int, d_inner: int, d_state: int, d_conv: int, dt_rank: int):
        super().__init__()
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, dt_rank
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(d_inner, d_state))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        length = hidden.shape[1]
        x, z = self.in_proj(hidden).chunk(2, dim=-1)                       # [b, l, d]
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length]).transpose(1, 2)
        dt_low, b_in, c_in = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt_low))                               # [b, l, d]
        a = -torch.exp(self.A_log.float())                                  # [d, n]
        # time-major [l, b, d, n] so each scan step touches one contiguous block
        dt_t, x_t = dt.transpose(0, 1), x.transpose(0, 1)
        y = SelectiveScan.apply(dt_t.contiguous(), (dt_t * x_t).contiguous(), a,
                                b_in.transpose(0, 1).contiguous(), c_in.transpose(0, 1).contiguous())
        y = y.transpose(0, 1)
        y = (y + x * self.D) * F.silu(z)
        return self.out_proj(y)


class RMSNorm(nn.Module):
    """MambaRMSNorm (weight * x / rms(x))."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class ScanBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mixer = ScanMixer(config.hidden_size, config.intermediate_size, config.state_size,
                               config.conv_kernel, int(config.time_step_rank))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.mixer(self.norm(hidden))


class ScanBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(ScanBlock(config) for _ in range(config.num_hidden_layers))
        self.norm_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)


class ScanMambaLM(nn.Module):
    """MambaForCausalLM with tied embeddings, fp32, for training: `state_dict()` keys match 1:1."""

    def __init__(self, config):
        super().__init__()
        if config.use_bias or not config.use_conv_bias or not config.tie_word_embeddings:
            raise ValueError("ScanMambaLM covers use_bias=False, use_conv_bias=True, tied embeddings")
        self.config = config
        self.backbone = ScanBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [batch, length, vocab] for input ids [batch, length]."""
        hidden = self.backbone.embeddings(input_ids)
        for layer in self.backbone.layers:
            hidden = layer(hidden)
        return self.lm_head(self.backbone.norm_f(hidden))


def init_like_transformers(model: ScanMambaLM, seed: int) -> None:
    """Initialise weights with transformers' own MambaForCausalLM init (seeded), then copy them in."""
    from transformers import MambaForCausalLM

    torch.manual_seed(seed)
    reference = MambaForCausalLM(model.config)
    missing = model.load_state_dict(reference.state_dict(), strict=False)
    if missing.missing_keys or missing.unexpected_keys:
        raise RuntimeError(f"state_dict mismatch: {missing}")
