"""hwsim: memory-traffic simulator for entropy-gated state-space-model decode accelerators."""

__version__ = "0.1.0"
