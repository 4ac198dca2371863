"""Shared test helpers: a state directory per test, the real CLI, and the server as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from mcp import StdioServerParameters

from cancel_job_mcp.schemas import load_schema

from .cluster_support import poll

pytest_plugins = ["tests.fakes.fixtures"]

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
CLI = [sys.executable, "-m", "cancel_job_mcp"]

# Job scripts for `python -c`. Logs each SIGTERM to argv[1], then exits 0 on it; argv[1] + ".ready"
# appears once the handler is installed (a SIGTERM before that would kill it silently).
TERM_LOGGER = (
    "import signal, sys, time\n"
    "def on_term(*_):\n"
    "    open(sys.argv[1], 'a').write('TERM\\n')\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "open(sys.argv[1] + '.ready', 'w').close()\n"
    "time.sleep(600)\n"
)
# Ignores SIGTERM: only SIGKILL stops it.
IGNORES_TERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"


DISCOVER_TIMEOUT_SECONDS = 120.0

# Under pytest-xdist, `--dist loadgroup` (pyproject's addopts) keeps each group's tests on one worker. A
# module whose tests use a real cluster (a session fixture) carries `pytest.mark.xdist_group("<fixture>")`,
# so that the modules of one cluster share one worker and one cluster; a module with module-scoped fixtures
# (servers: a start costs about a second of CPU) carries `pytest.mark.xdist_group(__name__)`, so that they
# start once. The hooks below fail a test whose module lacks its mark.
CLUSTERS = ("ray_head", "slurm_cluster", "temporal_server")

# What stops each cluster started this session: it stops as soon as its group's tests are done (a Ray head
# node idles at ~0.09 s of CPU a second), not at the end of the session.
RUNNING_CLUSTERS: dict[str, Callable[[], None]] = {}
# The modules without a group that set up a module-scoped fixture, each with one such fixture.
UNGROUPED_MODULE_FIXTURES: dict[str, str] = {}


def group_of(node: pytest.Item | pytest.Collector) -> str | None:
    marker = node.get_closest_marker("xdist_group")
    return None if marker is None else str(marker.args[0] if marker.args else marker.kwargs["name"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of one group run one after the other (test_ray.py right after test_ray_e2e.py), the
    rest in their order."""
    first_of_group: dict[str, int] = {}
    for index, item in enumerate(items):
        if (group := group_of(item)) is not None:
            first_of_group.setdefault(group, index)
    ranks = {
        id(item): (first_of_group[group] if (group := group_of(item)) else index, index)
        for index, item in enumerate(items)
    }
    items.sort(key=lambda item: ranks[id(item)])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test fails at once, saying why, when its group would not keep it with its cluster or servers: it
    uses a cluster its module is not grouped with, or (on an xdist worker) the group is missing from its
    node id, where pytest-xdist's loadgroup puts it for the controller to see."""
    group = group_of(item)
    if needed := sorted(set(CLUSTERS) & set(item.fixturenames) - {group}):
        pytest.fail(
            f"{item.nodeid} uses the cluster {needed[0]}: its module needs `pytestmark ="
            f" pytest.mark.xdist_group({needed[0]!r})`, so that it runs on that cluster's worker"
        )
    if group is not None and "PYTEST_XDIST_WORKER" in os.environ and not item.nodeid.endswith(f"@{group}"):
        pytest.fail(
            f"{item.nodeid} lost its xdist_group {group!r}: it may run on a worker of its own, starting its"
            " cluster or servers again. Run with `--dist loadgroup` (the default in pyproject.toml), on a"
            " pytest that keeps the group in the node id (9.2 does not: pytest-dev/pytest-xdist#1386;"
            " pyproject.toml pins pytest below it: pip install -e '.[test]')"
        )


def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
    """Note a module-scoped fixture set up for a module without a group (its tests then fail): it is shared
    by the module's tests only if they stay on one worker."""
    if fixturedef.scope == "module" and group_of(request.node) is None:
        UNGROUPED_MODULE_FIXTURES[request.node.nodeid] = fixturedef.argname


def pytest_runtest_call(item: pytest.Item) -> None:
    module = item.getparent(pytest.Module)
    if module is not None and (fixture := UNGROUPED_MODULE_FIXTURES.get(module.nodeid)):
        pytest.fail(
            f"{module.nodeid} has the module-scoped fixture {fixture}: the module needs `pytestmark ="
            " pytest.mark.xdist_group(__name__)`, so that it is set up once under pytest-xdist"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last test of a cluster's group (and their module fixtures' teardown), stop the cluster."""
    result = yield
    group = group_of(item)
    if group in RUNNING_CLUSTERS and (nextitem is None or group_of(nextitem) != group):
        RUNNING_CLUSTERS.pop(group)()
    return result


@contextlib.contextmanager
def running_cluster(name: str, stop: Callable[[], None]) -> Iterator[None]:
    """Stop the cluster `name` at the end of its group's tests, or at the latest when this ends."""
    RUNNING_CLUSTERS[name] = stop
    try:
        yield
    finally:
        if (pending := RUNNING_CLUSTERS.pop(name, None)) is not None:
            pending()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per CPU. Most tests spend much of their time waiting for other processes
    (servers starting, jobs stopping, providers trickling), so one worker per CPU leaves the CPUs idle."""
    return 2 * len(os.sched_getaffinity(0))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "CANCEL_JOB_MCP_HOME": str(home), **extra}


def run_cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env_for(home), capture_output=True, text=True, check=check, timeout=60
    )


def submit(home: Path, project: str, *command: str, options: tuple[str, ...] = ()) -> dict[str, Any]:
    """Submit a local job through the real CLI; returns its record."""
    done = run_cli(home, "submit", "--project", project, *options, "--", *command)
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def stdio_server(home: Path, *args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "cancel_job_mcp", *args], env=env_for(home, **env)
    )


def wait_until(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `condition()` until it returns something truthy; fail the test at the deadline."""
    try:
        return poll(condition, timeout=timeout, what=f"{condition}", interval=interval)
    except TimeoutError as error:
        pytest.fail(str(error))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpServer:
    def __init__(self, process: subprocess.Popen[str], port: int, announcement: str, home: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.announcement = announcement  # the start-up line on stderr
        self.home = home


ANNOUNCEMENT = re.compile(r"^cancel-job-mcp: serving MCP at http://\S+?:(\d+)/mcp ")


def start_http_server(home: Path, *args: str, **env: str) -> HttpServer:
    """Serve HTTP on a free port the server picks itself, read from its start-up line."""
    process = subprocess.Popen(
        [*CLI, "serve", "--transport", "http", "--port", "0", *args],
        env=env_for(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = process.stderr
    assert stderr is not None
    lines: queue.Queue[str] = queue.Queue()

    def read_until_announced() -> None:  # then stop: the rest stays for communicate()
        for line in stderr:
            lines.put(line)
            if ANNOUNCEMENT.match(line):
                return
        lines.put("")

    threading.Thread(target=read_until_announced, daemon=True).start()
    seen = ""
    announcement = None
    deadline = time.monotonic() + 30
    while announcement is None and (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if not line:
            break
        seen += line
        announcement = ANNOUNCEMENT.match(line)
    if announcement is None:
        process.kill()
        raise RuntimeError(f"the server did not announce itself: {seen}{process.communicate()[1]}")
    return HttpServer(process, int(announcement[1]), announcement.string, home)


def stop_http_server(server: HttpServer) -> str:
    """Stop the server; returns what it wrote on stdout (which must stay empty)."""
    server.process.terminate()
    try:
        stdout, _ = server.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        stdout, _ = server.process.communicate()
    return stdout


@pytest.fixture
def stdio_servers(home: Path, tmp_path: Path) -> Iterator[Any]:
    """Start raw stdio servers with `.start()`; all are killed when the test ends."""
    from .battery_support import StdioServers

    servers = StdioServers(home, tmp_path)
    yield servers
    servers.close()


@pytest.fixture
def http_server(home: Path) -> Iterator[HttpServer]:
    server = start_http_server(home)
    yield server
    assert stop_http_server(server) == "", "the HTTP server wrote to stdout"


@pytest.fixture(scope="module")
def module_http_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., HttpServer]]:
    """`start(*args, **env)`: an HTTP server, with a state directory of its own, that the module's tests
    share (a server start costs about a second of CPU). All stop when the module ends; none may have
    written to stdout."""
    started: list[HttpServer] = []

    def start(*args: str, **env: str) -> HttpServer:
        server = start_http_server(tmp_path_factory.mktemp("home"), *args, **env)
        started.append(server)
        return server

    yield start
    wrote = [server.announcement for server in started if stop_http_server(server) != ""]
    assert not wrote, f"these HTTP servers wrote to stdout: {wrote}"


@pytest.fixture(scope="session")
def ray_head() -> Iterator[Any]:
    """One real Ray head node on loopback for the whole session, stopped at its end."""
    from .ray_cluster import RAY, start_head, stop_head

    if not RAY.exists():
        pytest.skip(f"Ray is not installed ({RAY} is absent); run .ci/install-ray.sh")
    head = start_head()
    with running_cluster("ray_head", lambda: stop_head(head)):
        yield head


@pytest.fixture(scope="session")
def ray_jobs(ray_head: Any) -> Any:
    """The jobs the Ray tests share (tests/ray_cluster.py), and a victim for each test that cancels one:
    test_ray's over stdio with RAY_ADDRESS, test_ray_e2e's with a configuration file."""
    from .ray_cluster import submit_shared_jobs

    return submit_shared_jobs(ray_head, victims=2)


@pytest.fixture(scope="session")
def record_validator() -> Draft7Validator:
    return Draft7Validator(load_schema("cancel_job.output"))


def process_group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group `pgid` exists (the runtime's own /proc reader)."""
    from cancel_job_mcp.backends.local import procs

    return bool(procs.group_members(procs.process_table(), pgid))


def job_process_group(home: Path, job_id: str) -> int | None:
    """The process group id of the job's current attempt, as the runtime recorded it."""
    import sqlite3

    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        row = conn.execute("SELECT process FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return int(row[0].split(":")[0]) if row and row[0] else None


def wait_for_process_group(home: Path, job_id: str) -> int:
    """Wait until the job's command runs; returns its process group id."""
    pgid: int = wait_until(
        lambda: (pgid := job_process_group(home, job_id)) and process_group_alive(pgid) and pgid
    )
    return pgid


def cancel_active_jobs(home: Path) -> None:
    """Cancel every job of `home` still submitted or working: a module's shared server stops, and no
    job it ran outlives the tests (each `sleep 600` left behind ran on into the next run)."""
    database = home / "jobs.sqlite3"
    if not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database)) as conn:
        active = conn.execute(
            "SELECT project_id, id FROM jobs WHERE status IN ('submitted', 'working')"
        ).fetchall()
    for project, job_id in active:
        run_cli(home, "cancel", project, job_id, check=False)


def show(home: Path, project: str, job_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(run_cli(home, "show", project, job_id).stdout)
    return record


def client(target: Any, mode: str = "auto", **options: Any) -> Any:
    """An MCP client with response caching off, so every call really reaches the server.

    In `auto` mode the SDK waits 10 s for the answer to server/discover, then falls back to 2025-11-25:
    at load 12 a server still importing was put in the wrong era, and the era is what many tests check.
    Here it waits up to 120 s (a process-wide SDK setting: every test's client waits the same)."""
    from mcp import Client
    from mcp.client import session

    session.DISCOVER_TIMEOUT_SECONDS = DISCOVER_TIMEOUT_SECONDS

    return Client(target, mode=mode, cache=None, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Any]:
    """One private single-node Slurm cluster for the session (tests/slurm_cluster.py), stopped at its end."""
    from .slurm_cluster import UnavailableError, start_cluster, stop_cluster

    try:
        cluster = start_cluster()
    except UnavailableError as reason:
        pytest.skip(str(reason))
    with running_cluster("slurm_cluster", lambda: stop_cluster(cluster)):
        yield cluster


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[Any]:
    """One Temporal dev server and worker for the session (tests/temporal_cluster.py), stopped after its
    modules' tests."""
    from .temporal_cluster import TEMPORAL, start_server, stop_server

    if not TEMPORAL.exists():
        pytest.skip(f"Temporal is not installed ({TEMPORAL} is absent); run .ci/install-temporal.sh")
    try:
        import temporalio  # noqa: F401  # the worker's SDK: a broken install fails, a missing one skips
    except ModuleNotFoundError:
        pytest.skip("the Temporal worker needs the temporalio SDK: pip install -e '.[test]'")
    server = start_server()
    with running_cluster("temporal_server", lambda: stop_server(server)):
        yield server
