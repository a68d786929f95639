"""hwsim: memory-traffic simulator for entropy-gated state-space-model decode accelerators."""

__version__ = "0.1.0"

from hwsim.cache import configure_numba_cache as _configure_numba_cache

_configure_numba_cache()  # numba's kernel cache goes to the user cache, never into the package
