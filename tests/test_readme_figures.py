"""Every figure README.md quotes comes from a fresh run: the `hwsim run` summary (fast) and the default
sweep's verdict (slow, the whole default sweep)."""

from __future__ import annotations

import re

import pytest

from hwsim.cli import main
from hwsim.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def _block(name: str) -> str:
    found = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", README, flags=re.DOTALL)
    assert found, f"README.md has no {name} block"
    return found.group(1)


def test_readme_quotes_what_hwsim_run_prints(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("wrote ")]
    quoted = [line.strip() for line in _block("hwsim-run").splitlines() if line.strip() and "```" not in line]
    assert quoted == [line.strip() for line in printed]


@pytest.mark.slow
def test_readme_verdict_is_the_default_sweeps(tmp_path):
    from hwsim.sweeps.execute import run_sweep
    from hwsim.sweeps.spec import load_sweep
    from hwsim.sweeps.verdict import markdown

    spec, file = load_sweep()
    run_sweep(spec, file, tmp_path, progress=False, report=False)
    assert _block("verdict").strip() == markdown(tmp_path).strip()
