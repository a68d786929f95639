"""Quality cost of a low-precision SSM state, measured on a real Mamba model (needs the [traces] extra).

Torch is imported only inside this package; core modules never import it. `evaluate_policy` is the
API the sweeps call: one policy config in, flat `quality_*` columns out.
"""

from __future__ import annotations


def evaluate_policy(policy, **kwargs) -> dict:
    """See `hwsim.quality.evaluate.evaluate_policy` (imported lazily: torch loads only when called)."""
    from hwsim.quality.evaluate import evaluate_policy as _evaluate

    return _evaluate(policy, **kwargs)


__all__ = ["evaluate_policy"]
