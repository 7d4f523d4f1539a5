"""The book in a real headless browser with the network off.

A local HTTP server serves the pages; Chromium resolves every other host to nothing, so a page
that needs a CDN shows it: raw LaTeX where MathJax should have run, or a request to a foreign
host in the browser's network log.

The explorer test runs on its own. The whole-book tests need a built book: ``make test`` runs
this file again after its book build, with ``HYPERLR_BOOK_HTML`` naming the HTML folder.
Both skip, saying why, where Chromium or its driver is missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BOOK_HTML = os.environ.get("HYPERLR_BOOK_HTML")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
)
# What is left of math that MathJax did not typeset, in a page's visible text.
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|\\begin\{")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        # The network is off: every host but the local server resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def serve():
    """Serve a folder on 127.0.0.1; returns the base URL of the folder given."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (the performance log drains)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def foreign(urls: list[str]) -> list[str]:
    return [
        u
        for u in urls
        if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        and urlsplit(u).hostname != "127.0.0.1"
    ]


def wait_for_mathjax(driver, timeout: float = 30) -> None:
    """Wait until MathJax (version 2) has typeset the page, where the page loads it."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = """
        if (typeof MathJax === 'undefined' || !MathJax.Hub) { return 'none'; }
        if (!window.__typeset) {
            window.__typeset = 'pending';
            MathJax.Hub.Queue(function () { window.__typeset = 'done'; });
        }
        return window.__typeset;
    """
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script) in ("none", "done"))


def trace_path(driver, index: int = 0) -> str:
    return driver.execute_script(
        "return document.querySelectorAll('#schedule-explorer g.trace.scatter path.js-line')"
        f"[{index}].getAttribute('d');"
    )


def drag_slider(driver, slider: int, fraction: float) -> None:
    """Click the ``slider``-th slider's rail at ``fraction`` of its length, as a reader would."""
    from selenium.webdriver.common.action_chains import ActionChains

    rail = driver.find_elements(
        "css selector", "#schedule-explorer g.slider-container rect.slider-rail-touch-rect"
    )[slider]
    width = rail.size["width"]
    ActionChains(driver).move_to_element_with_offset(
        rail, int((fraction - 0.5) * width), 0
    ).click().perform()


def check_sliders_redraw(driver) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return !!document.querySelector('#schedule-explorer g.trace.scatter path.js-line');"
        )
    )
    # N moves P, U moves H, the infimum moves C; each slider goes to the end it is not at.
    for slider, trace in ((0, 0), (1, 3), (2, 1)):
        before = trace_path(driver, trace)
        active = driver.execute_script(
            f"var s = document.getElementById('schedule-explorer').layout.sliders[{slider}];"
            "return s.active / (s.steps.length - 1);"
        )
        drag_slider(driver, slider, 0.05 if active > 0.5 else 0.95)
        WebDriverWait(driver, 10).until(lambda d, old=before, i=trace: trace_path(d, i) != old)


def test_explorer_sliders_redraw_the_curves_offline(browser, serve, tmp_path):
    from hyperlr.lab.explorer import explorer_html, schedule_explorer

    figure = schedule_explorer(budgets=(20, 40), upper_bounds=(40, 80), infima=(1e-6, 1e-3))
    page = tmp_path / "explorer.html"
    page.write_text(f"<!doctype html><meta charset='utf-8'><body>{explorer_html(figure)}</body>")
    requested_urls(browser)
    browser.get(serve(tmp_path) + "explorer.html")
    check_sliders_redraw(browser)
    assert not foreign(requested_urls(browser))


book = pytest.mark.skipif(
    BOOK_HTML is None, reason="needs a built book: set HYPERLR_BOOK_HTML (make test does)"
)


def book_pages() -> list[Path]:
    root = Path(BOOK_HTML)
    pages = sorted(
        p
        for p in root.rglob("*.html")
        if not p.relative_to(root).parts[0].startswith("_")
        and p.name not in ("search.html",)
        and p.relative_to(root).parts[0] not in ("reports",)
    )
    assert pages, f"no HTML pages under {root}"
    return pages


@book
def test_every_page_renders_its_math_with_no_network(browser, serve):
    root = Path(BOOK_HTML)
    base = serve(root)
    requested_urls(browser)
    problems = []
    for page in book_pages():
        browser.get(base + page.relative_to(root).as_posix())
        wait_for_mathjax(browser)
        text = browser.find_element("tag name", "body").text
        raw = RAW_MATH.findall(text)
        if raw:
            problems.append(f"{page.name}: raw math {sorted(set(raw))}")
        outside = foreign(requested_urls(browser))
        if outside:
            problems.append(f"{page.name}: requests {sorted(set(outside))[:3]}")
    assert not problems, "\n".join(problems)


@book
def test_the_books_explorer_redraws_offline(browser, serve):
    root = Path(BOOK_HTML)
    pages = [p for p in book_pages() if 'id="schedule-explorer"' in p.read_text()]
    assert pages, "no page of the book holds the schedule explorer"
    browser.get(serve(root) + pages[0].relative_to(root).as_posix())
    check_sliders_redraw(browser)
    assert not foreign(requested_urls(browser))
