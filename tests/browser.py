"""A real browser for the tests: Debian's Chromium driven by Playwright (no browser download: its executable path
is given), and axe-core, served by the console under test, to check each page's accessibility."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from deploy.processes import ROOT

# Debian's headless shell (Chromium's old headless mode, what Playwright itself runs for headless) rather than
# /usr/bin/chromium's new headless mode, which now and then renders no frame: a click then waits 30 s for the
# element to be "stable" (animation frames) and a full-page screenshot fails with "Unable to capture screenshot".
CHROMIUM = Path("/usr/bin/chromium-headless-shell")
# Without these, Chromium reaches for Google's hosts at start, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots"

AXE_SERIOUS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}));
}"""


def accessible(page: Page, base: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (the checker served by the console itself)."""
    page.add_script_tag(url=f"{base}/vendor/axe-core/axe.min.js")
    found: list[dict[str, Any]] = page.evaluate(AXE_SERIOUS)
    return found


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
