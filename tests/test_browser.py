"""The report in a real browser (headless Chromium): what it parses, logs, requests and shows.

One Chromium run per page, no JavaScript and no CDP client: ``--dump-dom`` gives the DOM as the
browser parsed it, ``--enable-logging=stderr`` prints every console message as a ``CONSOLE``
line, ``--log-net-log`` records every network request, and ``--screenshot`` renders the page.
Set ``VEILBENCH_SCREENSHOT_DIR`` to keep the screenshot (``report-screenshot.png``) there, and
``VEILBENCH_BROWSER_RESULTS=path/to/results.json`` to run the same checks on a real run's report
instead of the generated document (this is how the docs' screenshot is made).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageStat

from tests.test_report import (
    cell_value,
    expected_value,
    heat_cells,
    make_doc,
    msr_of,
    parse,
)
from veilbench.report import render_report
from veilbench.results import ResultsDocument, read_results

CHROMIUM = Path(os.environ.get("VEILBENCH_CHROMIUM", "/usr/bin/chromium"))
WINDOW = (1280, 2400)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"headless browser not found at {CHROMIUM} "
    "(apt-get install chromium, or set VEILBENCH_CHROMIUM)",
)


@dataclass
class BrowserRun:
    """What one headless Chromium run of a page left behind."""

    dom: str
    console: list[str]
    page_requests: list[str]
    screenshot: Path


def open_in_browser(page: Path, work: Path) -> BrowserRun:
    """Load ``page`` once: parsed DOM, console lines, page-initiated requests and a screenshot."""
    shot, netlog = work / "screenshot.png", work / "netlog.json"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={work / 'profile'}",
        # offline on purpose: a page that needs the network must fail here, not hang
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={netlog}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return BrowserRun(done.stdout, console, _page_requests(netlog), shot)


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for (Chromium's own update/sync traffic has no file:// origin)."""
    log: dict[str, Any] = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
    ]


ReportRun = tuple[ResultsDocument, BrowserRun]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> ReportRun:
    work = tmp_path_factory.mktemp("browser")
    real = os.environ.get("VEILBENCH_BROWSER_RESULTS")
    doc = read_results(real) if real else make_doc()
    page = render_report(doc, work / "report.html")
    run = open_in_browser(page, work)
    if target := os.environ.get("VEILBENCH_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.screenshot, Path(target) / "report-screenshot.png")
    return doc, run


def test_heatmaps_as_the_browser_parsed_them(
    report_run: ReportRun,
) -> None:
    doc, run = report_run
    page = parse(run.dom)
    for subset in ("craft", "held_out"):
        msr = msr_of(doc, subset)
        cells = heat_cells(page, subset)
        assert set(cells) == set(msr)
        for (s, t), cell in cells.items():
            assert cell_value(cell) == expected_value(msr[(s, t)]), (subset, s, t)
            assert ("white-box" in cell["class"].split()) == (t in s.split("+"))


def test_no_console_messages_and_no_requests(
    report_run: ReportRun,
) -> None:
    _, run = report_run
    assert run.console == []
    assert run.page_requests == []


def test_screenshot_shows_the_page(report_run: ReportRun) -> None:
    _, run = report_run
    with Image.open(run.screenshot) as image:
        assert image.size == WINDOW
        grey = image.convert("L")
        assert ImageStat.Stat(grey).stddev[0] > 20  # text, tables and heatmaps, not a blank page
        # the heatmap's darkest blue (#08306b-ish) is on screen: the colours rendered
        r, g, b = np.asarray(image.convert("RGB"), dtype=np.int16).transpose(2, 0, 1)
        assert ((b > 90) & (r < 40) & (g < 80)).any()


def test_harness_catches_errors_and_requests(tmp_path: Path) -> None:
    """The checks above could pass vacuously; a broken page must trip both of them."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><img src="http://example.invalid/x.png">'
        "<script>console.error('boom'); missing();</script>"
    )
    run = open_in_browser(bad, tmp_path)
    assert any("boom" in line for line in run.console)
    assert any("missing is not defined" in line for line in run.console)
    assert run.page_requests == ["http://example.invalid/x.png"]
