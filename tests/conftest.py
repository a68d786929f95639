"""Test-session settings: one empty user cache per session (CI starts with none), so DRAM calibrations
are computed once per configuration and shared by every test and worker process of the session, and
never read from or written to the developer's own cache."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE: dict[str, str] = {}


def pytest_configure(config):
    _CACHE["previous"] = os.environ.get("HWSIM_CACHE_DIR", "")
    _CACHE["dir"] = tempfile.mkdtemp(prefix="hwsim-test-cache-")
    os.environ["HWSIM_CACHE_DIR"] = _CACHE["dir"]


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE.pop("dir", ""), ignore_errors=True)
    previous = _CACHE.pop("previous", "")
    if previous:
        os.environ["HWSIM_CACHE_DIR"] = previous
    else:
        os.environ.pop("HWSIM_CACHE_DIR", None)
