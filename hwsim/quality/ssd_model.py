"""A Mamba-2 language model for training on the CPU: the chunked SSD form, transformers' weights.

`SsdMamba2LM` holds exactly the parameters of transformers' `Mamba2ForCausalLM` (state_dict 1:1, so
a trained model is saved as, and evaluated through, the Hugging Face class), and computes the whole
sequence with the state-space dual (SSD) algorithm of Dao & Gu 2024 ("Transformers are SSMs",
Listing 1): within a chunk the output is a masked attention-like product, across chunks a short
recurrence over chunk states. Evaluation (`hwsim quality`) steps the recurrent form, token by token,
through the Hugging Face class; `tests/test_quality_ssd.py` checks both give the same logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def segsum(x: torch.Tensor) -> torch.Tensor:
    """exp(segsum(x))[..., i, j] = prod_{j < k <= i} exp(x_k) for j <= i, else 0 (log-space, stable)."""
    length = x.shape[-1]
    x = x[..., None].expand(*x.shape, length)
    below = torch.tril(torch.ones(length, length, dtype=torch.bool), diagonal=-1)
    x = x.masked_fill(~below, 0.0)
    sums = torch.cumsum(x, dim=-2)
    return sums.masked_fill(~torch.tril(torch.ones(length, length, dtype=torch.bool)), float("-inf"))


def ssd_scan(x, dt, A, B, C, chunk: int) -> torch.Tensor:
    """y for x [b, l, g, e, p] (g groups of e heads), dt [b, l, g, e] (after softplus), A [g, e]
    (negative), B, C [b, l, g, n] (shared by a group's heads).

    The recurrence h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T, y_t = h_t C_t, from a zero state,
    computed chunk by chunk. l must be a multiple of `chunk` (the caller pads). B and C keep their
    group axis (never repeated per head): C.B is computed once per group.
    """
    b, length, g, e, p = x.shape
    c = length // chunk
    x = (x * dt[..., None]).reshape(b, c, chunk, g, e, p)
    a = (dt * A).reshape(b, c, chunk, g, e).permute(0, 3, 4, 1, 2)      # b g e c l
    B = B.reshape(b, c, chunk, g, -1)
    C = C.reshape(b, c, chunk, g, -1)
    a_cum = torch.cumsum(a, dim=-1)
    scores = torch.einsum("bclgn,bcsgn->bgcls", C, B)[:, :, None] * torch.exp(segsum(a))  # b g e c l s
    y_diag = torch.einsum("bgecls,bcsgep->bclgep", scores, x)
    to_end = torch.exp(a_cum[..., -1:] - a_cum).permute(0, 3, 4, 1, 2)[..., None]           # b c l g e 1
    states = torch.einsum("bclgn,bclgep->bcgepn", B, x * to_end)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    chunk_decay = torch.exp(segsum(F.pad(a_cum[..., -1], (1, 0))))     # b g e c+1 c+1
    states = torch.einsum("bgezc,bcgepn->bzgepn", chunk_decay, states)[:, :-1]
    from_start = torch.exp(a_cum).permute(0, 3, 4, 1, 2)[..., None]    # b c l g e 1
    y_off = torch.einsum("bclgn,bcgepn->bclgep", C, states) * from_start
    return (y_diag + y_off).reshape(b, length, g, e, p)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float, group_size: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps, self.group_size = eps, group_size or size

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        if gate is not None:
            x = x * F.silu(gate)
        grouped = x.view(*x.shape[:-1], -1, self.group_size)
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * grouped.view(x.shape)


class Mixer(nn.Module):
    """Mamba2Mixer's parameters (names and shapes), the chunked forward."""

    def __init__(self, config):
        super().__init__()
        self.d_inner = int(config.expand * config.hidden_size)
        self.heads, self.head_dim = config.num_heads, config.head_dim
        self.groups, self.d_state, self.chunk = config.n_groups, config.state_size, config.chunk_size
        self.conv_dim = self.d_inner + 2 * self.groups * self.d_state
        self.in_proj = nn.Linear(config.hidden_size, self.d_inner + self.conv_dim + self.heads, bias=config.use_bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, config.conv_kernel, groups=self.conv_dim,
                                padding=config.conv_kernel - 1, bias=config.use_conv_bias)
        self.dt_bias = nn.Parameter(torch.zeros(self.heads))
        self.A_log = nn.Parameter(torch.zeros(self.heads))
        self.D = nn.Parameter(torch.ones(self.heads))
        self.norm = RMSNorm(self.d_inner, config.layer_norm_epsilon, self.d_inner // self.groups)
        self.out_proj = nn.Linear(self.d_inner, config.hidden_size, bias=config.use_bias)
        self.dt_limit = tuple(config.time_step_limit)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        b, length, _ = u.shape
        z, xbc, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, self.heads], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :length].transpose(1, 2))
        x, B, C = xbc.split([self.d_inner, self.groups * self.d_state, self.groups * self.d_state], dim=-1)
        dt = F.softplus(dt + self.dt_bias).clamp(*self.dt_limit)
        pad = (-length) % self.chunk
        g, e = self.groups, self.heads // self.groups

        def padded(t):  # pad the sequence (axis 1) to whole chunks
            return F.pad(t, (0,) * (2 * (t.dim() - 2)) + (0, pad))

        y = ssd_scan(padded(x.view(b, length, g, e, self.head_dim)), padded(dt.view(b, length, g, e)),
                     -torch.exp(self.A_log).view(g, e), padded(B.view(b, length, g, self.d_state)),
                     padded(C.view(b, length, g, self.d_state)), self.chunk)[:, :length]
        y = y.reshape(b, length, self.heads, self.head_dim)
        y = y + x.view(b, length, self.heads, self.head_dim) * self.D[:, None]
        return self.out_proj(self.norm(y.reshape(b, length, self.d_inner), z))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mixer = Mixer(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class Backbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)


class SsdMamba2LM(nn.Module):
    """Logits [b, l, vocab] for token ids [b, l]; tied input/output embeddings as in the config."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.backbone.embeddings(ids)
        for layer in self.backbone.layers:
            x = layer(x)
        return self.backbone.norm_f(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.hidden(ids))


def init_like_transformers(model: SsdMamba2LM, seed: int) -> None:
    """The initial weights transformers' Mamba2ForCausalLM would draw (copied from a fresh instance)."""
    from transformers import Mamba2ForCausalLM

    torch.manual_seed(seed)
    reference = Mamba2ForCausalLM(model.config)
    model.load_state_dict(reference.state_dict())
