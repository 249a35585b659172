"""Headless Chromium (Debian's package) looking at the daemon's page as a person would: the DOM
after the page's scripts ran, and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _command(profile: Path) -> list[str]:
    browser = chromium()
    assert browser is not None, "chromium is not installed (.ci/run installs it)"
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]


def rendered_dom(url: str, profile: Path, budget_ms: int = 5000) -> str:
    """The page's DOM once its scripts have had ``budget_ms`` of (virtual) time."""
    command = [*_command(profile), f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


def screenshot(url: str, out: Path, profile: Path, size: str = "1280,900", budget_ms: int = 5000) -> Path:
    command = [*_command(profile), f"--window-size={size}", f"--virtual-time-budget={budget_ms}"]
    subprocess.run([*command, f"--screenshot={out}", url], capture_output=True, timeout=120)
    return out
