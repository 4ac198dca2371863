"""The supervisor owns the stop: impatient clients, reads during a stuck stop, progress, disk full,
unusable state directories, capped private logs and prune."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cancel_job_mcp.backends.local import procs, store
from cancel_job_mcp.backends.local.joblog import CappedLog

from ...battery_support import (
    RawStdioServer,
    StdioServers,
    db_row,
    error_code,
    get_job,
    shared_stdio_server,
    submit_here,
    tool_result,
    wait_for_stop,
    wait_ignoring_sigterm,
)
from ...conftest import (
    CLI,
    IGNORES_TERM,
    TERM_LOGGER,
    env_for,
    process_group_alive,
    run_cli,
    wait_for_process_group,
    wait_until,
)

pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of the tests that share `server` (each its own project and jobs)."""
    return tmp_path_factory.mktemp("shared-home")


@pytest.fixture(scope="module")
def server(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawStdioServer]:
    """One stdio server for the tests whose server need not be their own: it also serves each test
    after the abandoned requests and stuck stops of those before it."""
    with shared_stdio_server(shared_home, tmp_path_factory.mktemp("server") / "stderr.txt") as server:
        yield server


def cancel_arguments(project: str, job_id: str) -> dict[str, object]:
    return {"name": "cancel_job", "arguments": {"project_reference": project, "job_id": job_id}}


def term_logger(home: Path, tmp_path: Path, project: str, name: str) -> tuple[str, Path]:
    log = tmp_path / f"{name}.signals"
    job = submit_here(home, project, sys.executable, "-c", TERM_LOGGER, str(log))
    return job["id"], log


# -- impatient clients ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("delay_ms", [0, 5, 20, 100, "stdin closed"], ids=str)
def test_a_client_that_gives_up_on_its_cancel_cannot_leave_a_half_stop(
    shared_home: Path,
    tmp_path: Path,
    server: RawStdioServer,
    stdio_servers: StdioServers,
    delay_ms: int | str,
) -> None:
    """Whenever the client cancels its request (or hangs up), the job is either untouched or canceled
    with its SIGTERM delivered and its stop recorded: never canceled without SIGTERM."""
    home = shared_home
    job_id, log = term_logger(home, tmp_path, "impatient", "job")
    wait_until(lambda: Path(f"{log}.ready").exists(), timeout=30)
    if isinstance(delay_ms, int):
        request = server.send("tools/call", cancel_arguments("impatient", job_id))
        time.sleep(delay_ms / 1000)
        server.abandon(request)
        server.call_tool("list_jobs", {"project_reference": "impatient"})  # the server has read both
    else:
        hanging_up = stdio_servers.start(home)
        hanging_up.send("tools/call", cancel_arguments("impatient", job_id))
        hanging_up.close()
    # A cancel whose write had begun lands within moments; one that had not never does.
    with contextlib.suppress(pytest.fail.Exception):
        wait_until(lambda: db_row(home, job_id)["status"] != "working", timeout=3)
    row = db_row(home, job_id)
    print(f"\n[impatient] gave up ({delay_ms}): job {row['status']}")
    if row["status"] == "working":
        assert not log.exists(), "signalled without a recorded cancel"
        run_cli(home, "cancel", "impatient", job_id)
        return
    row = wait_for_stop(home, job_id)
    assert row["status"] == "canceled"
    assert log.read_text() == "TERM\n", "canceled, so SIGTERM must have been delivered, once"
    assert row["exit_code"] == 0


# -- reads and progress --------------------------------------------------------------------------


@pytest.mark.slow
def test_many_reads_of_an_orphaned_job_start_exactly_one_successor(
    shared_home: Path, tmp_path: Path, server: RawStdioServer, stdio_servers: StdioServers
) -> None:
    home = shared_home
    job_id, log = term_logger(home, tmp_path, "orphan", "job")
    wait_until(lambda: Path(f"{log}.ready").exists(), timeout=30)
    supervisor = procs.ProcessIdentity.decode(db_row(home, job_id)["supervisor"])
    procs.wake(supervisor, signal.SIGKILL)
    wait_until(lambda: not procs.is_running(supervisor))
    readers = [server, stdio_servers.start(home)]  # two processes, each reading 40 times at once
    requests = [
        (
            reader,
            reader.send(
                "tools/call",
                {"name": "get_job", "arguments": {"project_reference": "orphan", "job_id": job_id}},
            ),
        )
        for reader in readers
        for _ in range(40)
    ]
    statuses = {
        tool_result(reader.receive(request))["structuredContent"]["status"] for reader, request in requests
    }
    assert statuses <= {"working", "failed"}, "reads return the record as it is"
    record = wait_for_stop(home, job_id)
    assert record["status"] == "failed"
    assert f"supervisor (pid {supervisor.pid}) is gone" in record["failed_reason"]
    assert log.read_text() == "TERM\n", "one successor, one SIGTERM"
    successor_log = (home / "logs" / "successor.log").read_text()
    assert successor_log.count(f"job {job_id}: sent SIGTERM") == 1, successor_log
    assert "another successor" not in successor_log, "a second successor was started"


@pytest.mark.slow
def test_a_read_during_a_stuck_stop_returns_at_once_and_changes_nothing(
    shared_home: Path, server: RawStdioServer
) -> None:
    home = shared_home
    job = submit_here(home, "stuck", sys.executable, "-c", IGNORES_TERM, grace_seconds=600)
    pgid = wait_for_process_group(home, job["id"])
    wait_ignoring_sigterm(pgid)
    supervisor = procs.ProcessIdentity.decode(db_row(home, job["id"])["supervisor"])
    canceller = subprocess.Popen(
        [*CLI, "cancel", "stuck", job["id"]], env=env_for(home), stdout=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: db_row(home, job["id"])["term_sent_at"] is not None, timeout=30)
        procs.wake(supervisor, signal.SIGSTOP)  # and the supervisor is stuck too
        timings = []
        for _ in range(10):
            started = time.monotonic()
            record = get_job(server, "stuck", job["id"])
            timings.append(time.monotonic() - started)
            page = tool_result(server.call_tool("list_jobs", {"project_reference": "stuck"}))
            assert page["structuredContent"]["jobs"] == [record]
        median, worst = statistics.median(timings) * 1000, max(timings) * 1000
        print(f"\n[stuck stop] get_job: median {median:.1f} ms, max {worst:.1f} ms")
        assert record["status"] == "canceled"
        assert record["completed_at"] is None, "nothing is stopped yet, so the record must not say so"
        assert statistics.median(timings) < 0.1
        assert max(timings) < 1.0
        assert process_group_alive(pgid), "a read stopped the job"
        assert db_row(home, job["id"])["supervisor"] == supervisor.encode(), (
            "a read replaced a live supervisor"
        )
    finally:
        procs.wake(supervisor, signal.SIGCONT)
        canceller.kill()
        canceller.wait()
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
def test_a_cancel_waiting_out_the_grace_period_sends_progress(
    shared_home: Path, server: RawStdioServer
) -> None:
    job = submit_here(shared_home, "progress", sys.executable, "-c", IGNORES_TERM, grace_seconds=2)
    pgid = wait_for_process_group(shared_home, job["id"])
    wait_ignoring_sigterm(pgid)
    server.notifications.clear()
    request = server.send(
        "tools/call", {**cancel_arguments("progress", job["id"]), "_meta": {"progressToken": "p"}}
    )
    record = tool_result(server.receive(request))["structuredContent"]
    progress = [n["params"] for n in server.notifications if n["method"] == "notifications/progress"]
    assert record["status"] == "canceled"
    assert record["completed_at"] is not None
    assert record["exit_code"] == 128 + signal.SIGKILL
    assert not process_group_alive(pgid)
    assert len(progress) >= 3, progress
    assert all(update["progressToken"] == "p" for update in progress)
    assert [u["progress"] for u in progress] == sorted(u["progress"] for u in progress)
    assert "waiting for job" in progress[0]["message"]


# -- logs and prune ------------------------------------------------------------------------------

CHATTY = "import sys\nfor n in range(30_000):\n    sys.stdout.write(f'line {n:08d}\\n')\n"
LOG_LIMIT = 64 * 1024  # the output is 6.4 times that: the log is cut to its tail again and again


@pytest.mark.slow
def test_job_output_is_capped_keeping_the_tail_and_private(home: Path) -> None:
    job = submit_here(home, "logs", sys.executable, "-c", CHATTY, log_limit=LOG_LIMIT)  # 420 kB of output
    assert wait_for_stop(home, job["id"], timeout=60)["status"] == "completed"
    logs = home / "logs"
    output = (logs / f"{job['id']}.log").read_bytes()
    assert 0 < len(output) <= LOG_LIMIT
    assert output.endswith(b"line 00029999\n")
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    for path in logs.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    supervisor_log = (logs / f"{job['id']}.supervisor.log").read_text()
    assert "Warning" not in supervisor_log, supervisor_log


def test_the_capped_log_keeps_the_newest_bytes(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "job.log", limit=100)
    for n in range(50):
        log.write(f"{n:02d}:".encode())
    log.close()
    kept = (tmp_path / "job.log").read_bytes()
    assert len(kept) <= 100
    assert kept.endswith(b"48:49:")
    assert b"00:" not in kept


def test_a_database_of_the_previous_schema_is_migrated_in_place(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    with store.connect(database) as conn:
        conn.execute("INSERT INTO jobs (id, project_id, name, status, target, config, timeout_seconds,"
                     " backoff_limit, created_at, updated_at, grace_seconds) VALUES ('job_old', 'demo', 'n',"
                     " 'completed', 't', '{}', 0, 0, 'c', 'u', 5)")  # fmt: skip
        for column in ("term_sent_at", "leader_exit", "log_limit"):
            conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        for index in ("jobs_by_project_newest", "jobs_by_status_newest", "jobs_unsettled"):
            conn.execute(f"DROP INDEX {index}")
        conn.execute("DROP TABLE successor")
        conn.execute("PRAGMA user_version = 1")
    with store.connect(database) as conn:
        row = store.get(conn, "job_old")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert store.successor_owner(conn) is None
    assert row is not None
    assert row.status == "completed"
    assert row.term_sent_at is None


@pytest.mark.slow
def test_prune_removes_old_stopped_jobs_and_their_logs_never_an_active_one(home: Path) -> None:
    old, recent = submit_here(home, "prune", "true"), submit_here(home, "prune", "true")
    active = submit_here(home, "prune", "sleep", "600")
    for job in (old, recent):
        assert wait_for_stop(home, job["id"])["status"] == "completed"
    pgid = wait_for_process_group(home, active["id"])
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        conn.execute("UPDATE jobs SET completed_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", (old["id"],))
    try:
        assert "Removed 1 job(s)" in run_cli(home, "prune", "--older-than", "5").stdout
        remaining = run_cli(home, "jobs").stdout
        assert old["id"] not in remaining
        assert recent["id"] in remaining
        assert not list((home / "logs").glob(f"{old['id']}*"))
        assert list((home / "logs").glob(f"{recent['id']}*"))

        assert "Removed 1 job(s)" in run_cli(home, "prune", "--older-than", "0").stdout
        assert [line.split()[0] for line in run_cli(home, "jobs").stdout.splitlines()[1:]] == [active["id"]]
        assert process_group_alive(pgid)
        assert list((home / "logs").glob(f"{active['id']}*"))
    finally:
        run_cli(home, "cancel", "prune", active["id"])


# -- the state directory -------------------------------------------------------------------------


def assert_clear_cli_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)


@pytest.mark.slow
def test_a_file_in_the_way_or_a_corrupt_database_is_named(
    tmp_path: Path, stdio_servers: StdioServers
) -> None:
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a directory")
    for command in (
        ("show", "demo", "job_x"),
        ("jobs",),
        ("prune", "--older-than", "1"),
        ("submit", "--project", "demo", "--", "true"),
    ):
        assert_clear_cli_error(
            run_cli(in_the_way, *command, check=False), str(in_the_way), "a file is in the way"
        )

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "jobs.sqlite3").write_bytes(b"this is not SQLite" * 100)
    assert_clear_cli_error(
        run_cli(corrupt, "show", "demo", "job_x", check=False), "not a usable SQLite database"
    )
    server = stdio_servers.start(corrupt)
    result = tool_result(server.call_tool("get_job", {"project_reference": "demo", "job_id": "job_x"}))
    assert error_code(result) == "backend_misconfigured"
    assert str(corrupt / "jobs.sqlite3") in result["content"][0]["text"]


@pytest.mark.slow
def test_a_database_deleted_or_replaced_under_a_running_server_is_noticed(
    home: Path, tmp_path: Path, stdio_servers: StdioServers
) -> None:
    first = submit_here(home, "demo", "true")
    server = stdio_servers.start()
    assert get_job(server, "demo", first["id"])["id"] == first["id"]

    for path in home.glob("jobs.sqlite3*"):
        path.unlink()
    deleted = tool_result(server.call_tool("get_job", {"project_reference": "demo", "job_id": first["id"]}))
    assert error_code(deleted) == "backend_misconfigured"
    assert f"{home / 'jobs.sqlite3'} was deleted" in deleted["content"][0]["text"]

    second = submit_here(home, "demo", "true")  # a new database file, with another inode
    assert get_job(server, "demo", second["id"])["id"] == second["id"]
    gone = tool_result(server.call_tool("get_job", {"project_reference": "demo", "job_id": first["id"]}))
    assert error_code(gone) == "not_found"
    assert f"state directory {home}" in gone["content"][0]["text"]


def mount(*arguments: str) -> None:
    """Run mount, or skip the test with the reason (these cases need root and mount)."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: this case needs a mount of its own")
    done = subprocess.run(["mount", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()}): this case needs root and mount")


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`, or the test skipped with the reason."""
    path.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.mark.slow
def test_a_read_only_state_directory_is_named_and_a_cancel_changes_nothing(
    home: Path, tmp_path: Path
) -> None:
    job = submit_here(home, "ro", "sleep", "600")
    pgid = wait_for_process_group(home, job["id"])
    read_only = tmp_path / "read-only"  # the same directory, seen through a read-only bind mount
    read_only.mkdir()
    try:
        mount("--bind", str(home), str(read_only))
        try:
            mount("-o", "remount,ro,bind", str(read_only))
            refused = run_cli(read_only, "cancel", "ro", job["id"], check=False)
        finally:
            subprocess.run(["umount", str(read_only)], check=False)
        # The audit trail, written before any cancel, is the first write to be refused.
        assert_clear_cli_error(refused, str(read_only), "cannot be written", "othing was canceled")
        assert refused.stderr.splitlines()[-1].startswith("backend_misconfigured: ")
        assert db_row(home, job["id"])["status"] == "working"
        assert process_group_alive(pgid)
    finally:
        run_cli(home, "cancel", "ro", job["id"])


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_with_the_disk_full_a_cancel_is_refused_clearly_and_no_record_goes_wrong(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        home = disk / "home"
        release = tmp_path / "release"
        finishing = submit_here(home, "full", "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.05; done")
        running = submit_here(home, "full", "sleep", "600")
        pgid = wait_for_process_group(home, running["id"])
        wait_for_process_group(home, finishing["id"])
        filler = fill(disk)
        try:
            refused = run_cli(home, "cancel", "full", running["id"], check=False)
            # The audit trail, written before any cancel, is the first write to be refused.
            assert_clear_cli_error(refused, str(home), "cannot be written", "othing was canceled")
            release.touch()  # the other job exits 0 while nothing can be written
            time.sleep(1)
            assert db_row(home, finishing["id"])["status"] == "working", "the record waits; it is never wrong"
            assert process_group_alive(pgid), "a refused cancel stopped nothing"
        finally:
            filler.unlink()
            release.touch()  # whatever failed above, the job ends: no test leaves a job running
        try:
            record = wait_for_stop(home, finishing["id"])
            assert record["status"] == "completed"
            assert record["exit_code"] == 0
            assert json.loads(run_cli(home, "cancel", "full", running["id"]).stdout)["status"] == "canceled"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
