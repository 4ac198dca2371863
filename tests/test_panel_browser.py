"""The job panel in a real browser: Debian's Chromium, headless, driven by Playwright for Python.

A test host page (tests/browser/host.js: the extension's own AppBridge and the TypeScript SDK client,
bundled here with rolldown) on its own origin, http://host.test:PORT, connects to the real server over
HTTP through CORS, renders the panel's ui:// resource in a sandboxed iframe under the extension's default
content security policy, and proxies the panel's tool calls. The jobs are real local jobs.

Screenshots for the README: `UPDATE_SCREENSHOTS=1 python -m pytest tests/test_panel_browser.py`
writes docs/panel-light.png and docs/panel-dark.png (otherwise they go to a temporary directory).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    REPO,
    HttpServer,
    process_group_alive,
    show,
    submit,
    wait_for_process_group,
    wait_until,
)
from .mcp_wire import INITIALIZE
from .node_tools import NODE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

CHROMIUM = Path("/usr/bin/chromium")
EXT_APPS = REPO / ".cache" / "ext-apps" / "node_modules"
ROLLDOWN = EXT_APPS / ".bin" / "rolldown"
BROWSER_SOURCES = REPO / "tests" / "browser"
TOKEN = "panel-token-0123456789abcdef"
HOST = "host.test"  # the host page's origin, allowed with --allowed-origin
STRANGER = "evil.test"  # another page's origin, not allowed
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP {STRANGER} 127.0.0.1",
]
TIMEOUT_MS = 30_000


def missing_tools() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing: run .ci/install-chromium.sh"
    if not ROLLDOWN.is_file() or not NODE.is_file():
        return "the MCP Apps host side is missing: run .ci/install-node-tools.sh and .ci/install-ext-apps.sh"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


@dataclass(frozen=True)
class Site:
    port: int

    def url(self, name: str, page: str = "host.html") -> str:
        return f"http://{name}:{self.port}/{page}"

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The host page and its bundle, served on loopback (reached as host.test and evil.test)."""
    if reason := missing_tools():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("site")
    shutil.copy(BROWSER_SOURCES / "host.html", root / "host.html")
    shutil.copy(BROWSER_SOURCES / "host.js", root / "host.js")
    (root / "node_modules").symlink_to(EXT_APPS)  # rolldown resolves imports from the entry's directory
    env = {**os.environ, "PATH": f"{NODE.parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(ROLLDOWN), "host.js", "--file", "host.bundle.js", "--format", "iife", "--platform", "browser"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright starts the system Chromium (never a downloaded one) headless, with a fresh temporary
    # --user-data-dir, and --no-sandbox (chromium_sandbox=False: the sandbox needs privileges we lack).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def servers(module_http_servers: Callable[..., HttpServer], site: Site) -> dict[str, HttpServer]:
    allowed = ("--allowed-origin", site.origin)
    return {
        "full": module_http_servers(*allowed, CANCEL_JOB_MCP_HTTP_TOKENS=TOKEN),
        "read-only": module_http_servers("--read-only", *allowed, CANCEL_JOB_MCP_HTTP_TOKENS=TOKEN),
    }


def open_panel(
    browser: Any,
    site: Site,
    server: HttpServer,
    tool: str = "list_jobs",
    styles: dict[str, Any] | None = None,
    **arguments: Any,
) -> tuple[Any, Any, list[Any]]:
    """A page on the host origin showing the panel for a call of `tool` on project demo; returns the
    page, the panel's frame and every request the page and its frames made."""
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    page.goto(site.url(HOST))
    arguments = {"project_reference": "demo", **arguments}
    options = {
        "serverUrl": server.url,
        "token": TOKEN,
        "tool": tool,
        "styles": styles,
        "theme": "light",
        "args": arguments,
    }
    page.evaluate("options => openPanel(options)", options)
    return page, page.frame_locator("iframe"), requests


def test_cors_from_a_real_browser_page(browser: Any, site: Site, servers: dict[str, HttpServer]) -> None:
    """fetch() from the allowed origin reads the answer and its Mcp-Session-Id; from any other origin
    (a stranger, or a loopback page not named) the browser gets no readable answer."""
    fetch = """async ({url, token, body}) => {
        try {
            const answer = await fetch(url, {method: "POST", body: JSON.stringify(body), headers: {
                "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "Authorization": `Bearer ${token}`, "Mcp-Protocol-Version": "2025-11-25"}});
            return {status: answer.status, session: answer.headers.get("Mcp-Session-Id")};
        } catch (error) { return {error: String(error)}; }
    }"""
    server = servers["full"]
    outcomes = {}
    for name in (HOST, STRANGER, "localhost"):
        page = browser.new_page()
        page.goto(site.url(name))
        outcomes[name] = page.evaluate(fetch, {"url": server.url, "token": TOKEN, "body": INITIALIZE})
        page.close()
    assert outcomes[HOST]["status"] == 200
    assert outcomes[HOST]["session"]
    assert outcomes[STRANGER] == {"error": "TypeError: Failed to fetch"}
    assert outcomes["localhost"] == {"error": "TypeError: Failed to fetch"}


def test_the_panel_shows_tails_and_cancels_real_jobs(
    browser: Any, site: Site, servers: dict[str, HttpServer], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server = servers["full"]
    home = server.home
    done = submit(home, "demo", "true", options=("--name", "nightly-report"))
    broken = submit(home, "demo", "sh", "-c", "echo starting; exit 3", options=("--name", "import-orders"))
    # Ignores SIGTERM, so the cancel lasts its grace period (and the button is seen disabled meanwhile).
    loop = "trap '' TERM; i=0; while :; do i=$((i+1)); echo step $i; sleep 0.2; done"
    running = submit(home, "demo", "sh", "-c", loop, options=("--name", "train-model", "--grace-period", "2"))
    pgid = wait_for_process_group(home, running["id"])

    page, panel, requests = open_panel(browser, site, server)
    rows = panel.locator("tbody tr[data-job-id]")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-job-id", running["id"])  # newest first
    expect(panel.locator(f'tr[data-job-id="{done["id"]}"]')).to_have_attribute("data-status", "completed")
    failed_row = panel.locator(f'tr[data-job-id="{broken["id"]}"]')
    expect(failed_row).to_have_attribute("data-status", "failed")
    expect(failed_row.locator(".chip")).to_have_text("✕ failed")  # the status in words, not colour alone
    expect(failed_row.locator("td").nth(4)).to_have_text("3")
    running_row = panel.locator(f'tr[data-job-id="{running["id"]}"]')
    expect(running_row.locator(".chip")).to_have_text("▶ working")
    expect(panel.locator('[data-action="cancel"]')).to_have_count(1)  # only the active job
    # The host sizes the frame from the panel's ui/notifications/size-changed.
    expect(page.locator("iframe")).to_have_attribute("style", re.compile(r"height: \d+px"))

    # The detail: its record, and the log tail refreshed while it runs (where get_job_logs is served).
    running_row.locator('[data-action="open"]').click()
    expect(panel.locator("#detail-title")).to_have_text("train-model")
    if "get_job_logs" in panel.locator('meta[name="cancel-job-mcp-tools"]').get_attribute("content"):
        tail = panel.locator("#log-tail")
        expect(tail).to_contain_text("step")
        first = tail.inner_text()
        expect(tail).not_to_have_text(first)  # it updates
    else:
        expect(panel.locator("#logs")).to_be_hidden()

    screenshots = REPO / "docs" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    frame = page.locator("iframe")
    frame.screenshot(path=str(screenshots / "panel-light.png"))
    page.evaluate("setTheme('dark')")
    expect(panel.locator("html")).to_have_attribute("data-theme", "dark")
    frame.screenshot(path=str(screenshots / "panel-dark.png"))

    # Cancel, by keyboard: the question is asked in the view; Escape keeps the job running.
    cancel = running_row.locator('[data-action="cancel"]')
    cancel.focus()
    page.keyboard.press("Enter")
    expect(panel.locator("#confirm")).to_be_visible()
    expect(panel.locator("#confirm-question")).to_have_text("Cancel train-model?")
    expect(panel.locator("#confirm-no")).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel.locator("#confirm")).to_be_hidden()
    assert process_group_alive(pgid)
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    expect(panel.locator("#confirm-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(cancel).to_be_disabled()  # while cancel_job runs (the job ignores SIGTERM for its grace period)
    expect(panel.locator("#notice")).to_contain_text("train-model: canceled.")  # cancel_job answered:
    assert not process_group_alive(pgid)  # the job's processes are gone
    expect(running_row).to_have_attribute("data-status", "canceled")
    expect(running_row.locator(".chip")).to_have_text("⊘ canceled")
    expect(panel.locator('[data-action="cancel"]')).to_have_count(0)

    # Every request came from the host page: the panel itself fetched nothing.
    assert requests
    assert all(request.frame == page.main_frame for request in requests)
    page.close()


def test_a_read_only_server_shows_no_cancel_button_and_pages_follow_the_cursor(
    browser: Any, site: Site, servers: dict[str, HttpServer]
) -> None:
    from playwright.sync_api import expect

    server = servers["read-only"]
    # A project of its own: the other tests' jobs on this shared server would change its pages.
    oldest = [submit(server.home, "pages", "true", options=("--name", f"batch-{n}"))["id"] for n in (1, 2)]
    job = submit(server.home, "pages", "sleep", "30", options=("--name", "long-sleep"))
    pgid = wait_for_process_group(server.home, job["id"])
    try:
        host_styles = {"variables": {"--color-background-primary": "rgb(250, 240, 230)"}}
        page, panel, _ = open_panel(
            browser, site, server, styles=host_styles, project_reference="pages", limit=2
        )
        rows = panel.locator("tbody tr[data-job-id]")
        expect(rows).to_have_count(2)
        expect(panel.locator(f'tr[data-job-id="{job["id"]}"]')).to_have_attribute("data-status", "working")
        expect(panel.locator('[data-action="cancel"]')).to_have_count(0)
        expect(panel.locator("th.cancel-column")).to_be_hidden()
        expect(panel.locator("body")).to_have_css("background-color", "rgb(250, 240, 230)")  # the host's
        panel.locator("#older").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-job-id", oldest[0])
        expect(panel.locator("#page")).to_have_text("Page 2")
        expect(panel.locator("#older")).to_be_disabled()
        panel.locator("#newer").click()
        expect(rows).to_have_count(2)
        expect(rows.last).to_have_attribute("data-job-id", oldest[1])
        # Shown for a call that already had a cursor: that page, and "Newer" leads to the first one.
        call = "a => panelHost.client.callTool({name: 'list_jobs', arguments: a})"
        first = page.evaluate(
            f"a => ({call})(a).then(r => r.structuredContent)", {"project_reference": "pages", "limit": 2}
        )
        page.close()
        page, panel, _ = open_panel(
            browser, site, server, project_reference="pages", limit=2, cursor=first["next_cursor"]
        )
        rows = panel.locator("tbody tr[data-job-id]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-job-id", oldest[0])
        expect(panel.locator("#page")).to_have_text("")  # its number is not known
        panel.locator("#newer").click()
        expect(rows).to_have_count(2)
        expect(panel.locator("#page")).to_have_text("Page 1")
        page.close()
    finally:
        os.killpg(pgid, 9)
        wait_until(lambda: not process_group_alive(pgid))


@pytest.mark.parametrize("tool", ["get_job", "get_job_logs"])
def test_the_panel_shows_one_job_for_get_job_and_its_logs(
    browser: Any, site: Site, servers: dict[str, HttpServer], tool: str
) -> None:
    from playwright.sync_api import expect

    server = servers["read-only"]
    name = '<img src=x onerror="parent.postMessage(1, `*`)">report'  # shown as text, never as markup
    job = submit(server.home, "demo", "sh", "-c", "echo first; echo last; exit 4", options=("--name", name))
    wait_until(lambda: show(server.home, "demo", job["id"])["status"] == "failed")
    page, panel, _ = open_panel(browser, site, server, tool, job_id=job["id"])
    expect(panel.locator("#detail-title")).to_have_text(name)
    expect(panel.locator("img")).to_have_count(0)
    expect(panel.locator("#fields")).to_contain_text("failed")
    expect(panel.locator("#fields")).to_contain_text(job["id"])
    expect(panel.locator("#log-tail")).to_have_text("first\nlast")
    expect(panel.locator('[data-action="cancel"]')).to_have_count(0)
    page.close()


def test_a_cancel_refused_by_the_server_is_shown_in_its_words(
    browser: Any, site: Site, servers: dict[str, HttpServer], tmp_path: Path
) -> None:
    """The job completes while "Cancel <name>?" is asked: confirming gets the server's not_cancellable,
    shown as an alert, and the job's row ends completed."""
    from playwright.sync_api import expect

    server = servers["full"]
    release = tmp_path / "release"
    waiting = f"while [ ! -e {release} ]; do sleep 0.05; done"
    job = submit(server.home, "late", "sh", "-c", waiting, options=("--name", "quick-one"))
    wait_for_process_group(server.home, job["id"])
    page, panel, _ = open_panel(browser, site, server, project_reference="late")
    panel.locator('[data-action="cancel"]').click()
    expect(panel.locator("#confirm-question")).to_have_text("Cancel quick-one?")
    release.touch()
    wait_until(lambda: show(server.home, "late", job["id"])["status"] == "completed")
    panel.locator("#confirm-yes").click()
    notice = panel.locator("#notice")
    expect(notice).to_have_attribute("role", "alert")
    expect(notice).to_contain_text("not_cancellable")
    expect(panel.locator(f'tr[data-job-id="{job["id"]}"]')).to_have_attribute("data-status", "completed")
    page.close()
