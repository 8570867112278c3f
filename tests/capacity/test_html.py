"""The HTML report in a real headless browser (Debian's ``chromium``, installed by ``make setup``): it renders,
logs nothing to the console, draws its charts, and a screenshot comes out. It must also be self-contained."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.capacity.fixtures import gpu
from tests.conftest import invoke_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make setup installs it)")
PNG = b"\x89PNG\r\n\x1a\n"


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={page.parent / 'profile'}", *args, page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def console_messages(stderr: str) -> list[str]:
    """Lines chromium logs for the page's console (``INFO:CONSOLE``) or failed loads."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Failed to load" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("html")
    snap = d / "cluster.json"
    snap.write_text(json.dumps(gpu().doc))
    out = d / "report.html"
    r = invoke_cli(["capacity", "--snapshot", str(snap), "--format", "html", "--output", str(out)])
    assert r.returncode == 0, r.stderr
    return out


def test_the_page_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text.lower()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", text)
    assert urls == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}  # the SVG namespace


@needs_chromium
def test_chromium_renders_it_without_console_messages(report: Path) -> None:
    r = chromium(report, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    dom = r.stdout
    assert "Capacity report: which servers can be off" in dom
    # one stacked bar per node (4 nodes) with six categories at most, and the cluster chart
    assert dom.count('aria-label="capacity per node"') == 1 and dom.count('aria-label="cluster before and after"') == 1
    assert "gpu0 (off)" in dom and "cpu1" in dom
    assert dom.count("<rect") >= 4 + 6


@needs_chromium
def test_chromium_takes_a_screenshot(report: Path) -> None:
    shot = report.parent / "report.png"
    r = chromium(report, f"--screenshot={shot}", "--window-size=1200,1800", "--hide-scrollbars")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == PNG and len(data) > 20_000  # a drawn page, not a blank one


@needs_chromium
def test_the_console_check_catches_a_console_error(tmp_path: Path) -> None:
    """The check above can fail: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>')
    r = chromium(page, "--dump-dom")
    assert any("boom" in line for line in console_messages(r.stderr))
