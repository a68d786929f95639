"""The committed example report: every link works in a clone, and the main job cannot dirty the tree."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hwsim.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "docs" / "example-report"
pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists(),
                                reason="needs a git checkout")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, check=False)


def test_every_link_of_the_example_report_is_a_committed_file():
    page = (EXAMPLE / "report.html").read_text(encoding="utf-8")
    page = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)  # plotly.js names URLs of its own
    links = set(re.findall(r'(?:href|src)="([^"#][^"]*)"', page)) - {""}
    links = {link for link in links if not link.startswith("data:")}
    assert links >= {"results.csv", "sweep.yaml"} and any(link.endswith(".svg") for link in links)
    tracked = set(_git("ls-files", "docs/example-report").stdout.split())
    missing = [link for link in links if f"docs/example-report/{link}" not in tracked]
    assert not missing, f"links to files not committed: {missing}"
    assert not any(link.startswith(("http:", "https:", "/")) for link in links)


@pytest.mark.parametrize("written", ["reports/default/report.html", "reports/default/figures/timeline.png",
                                     "reports/default/points/x/summary.json", "reports/runs/default/summary.json",
                                     "reports/default/results.csv"])
def test_what_the_main_job_writes_is_ignored(written):
    assert _git("check-ignore", "-q", "--no-index", written).returncode == 0, f"{written} is not ignored"


def test_nothing_the_main_job_writes_is_tracked():
    assert _git("ls-files", "reports/default", "reports/runs").stdout.strip() == ""
