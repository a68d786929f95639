"""The user cache: --cache-dir / HWSIM_CACHE_DIR, numba's kernel cache inside it, never the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hwsim.cache import cache_dir, cache_root

ROOT = Path(__file__).resolve().parent.parent


def test_env_var_moves_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" and cache_dir("quality") == tmp_path / "c" / "quality"
    assert (tmp_path / "c" / "quality").is_dir()


def test_cache_dir_flag_sets_the_cache_and_numba_before_numba_loads(tmp_path):
    code = ("import json, os, sys; from hwsim.cli import main; "
            "rc = main(['export-trace', 'configs/experiments/default.yaml', '--steps', '0', '--out', 'x.trace', "
            f"'--cache-dir', {str(tmp_path / 'cache')!r}]); "
            "print(json.dumps([rc, os.environ['HWSIM_CACHE_DIR'], os.environ['NUMBA_CACHE_DIR'], "
            "'numba' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k not in ("HWSIM_CACHE_DIR", "NUMBA_CACHE_DIR")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          check=True)
    rc, hwsim_cache, numba_cache, numba_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert rc == 2 and hwsim_cache == str(tmp_path / "cache")
    assert numba_cache == str(tmp_path / "cache" / "numba") and not numba_loaded


def test_a_users_numba_cache_dir_is_respected(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    env.pop("HWSIM_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", "import hwsim, os; print(os.environ['NUMBA_CACHE_DIR'])"],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert done.stdout.strip() == str(tmp_path / "mine")
