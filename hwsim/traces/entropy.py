"""Next-token entropy in bits: the production path (torch, float32) and a float64 numpy reference.

The reference exists so tests can bound the float32 error of the path that writes the traces.
"""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def entropy_stats_torch(logits, next_token_ids=None):
    """Entropy, top-1 probability and surprisal (bits) from logits of shape (positions, vocab).

    float32 log_softmax is what the shipped traces use; `next_token_ids` (positions,) gives the
    surprisal of the token that actually came next, with -1 meaning unknown (NaN surprisal).
    Returns three float64 numpy arrays.
    """
    import torch

    log_probs = torch.log_softmax(logits.detach().to(torch.float32), dim=-1)
    probs = log_probs.exp()
    # xlogy: 0 * log 0 = 0 for masked (-inf) logits.
    entropy_nats = -torch.special.xlogy(probs, probs).sum(dim=-1)
    entropy_bits = (entropy_nats / LN2).clamp_min(0.0)
    top1_prob = probs.max(dim=-1).values
    surprisal_bits = torch.full(entropy_bits.shape, float("nan"), dtype=torch.float32)
    if next_token_ids is not None:
        ids = torch.as_tensor(next_token_ids, dtype=torch.long)
        known = ids >= 0
        picked = log_probs[known].gather(-1, ids[known].unsqueeze(-1)).squeeze(-1)
        surprisal_bits[known] = -picked / LN2
    as_np = lambda t: t.numpy().astype(np.float64)
    return as_np(entropy_bits), as_np(top1_prob), as_np(surprisal_bits)


def entropy_bits_reference(logits: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of softmax(logits) along the last axis, in float64 (reference only)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    log_p = z - log_norm
    p = np.exp(log_p)
    plogp = np.where(p > 0, p * log_p, 0.0)
    return -plogp.sum(axis=-1) / LN2
