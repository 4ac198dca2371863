"""The local runtime as a trust boundary: reads never run anything, one successor per state directory,
and a job's command runs once at most, whatever dies when.

Some tests plant the state a crash leaves behind (a row whose owner is a dead process, a command
already running with the job's tag), built from real processes, so the phase under test is exact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from cancel_job_mcp.backends.local import procs, store
from cancel_job_mcp.backends.local.runtime import LocalBackend, submit_job
from cancel_job_mcp.errors import ToolError
from cancel_job_mcp.record import make_record, utc_now

from ...battery_support import backend_cancel, db_row, wait_for_stop
from ...conftest import run_cli, wait_until

PROJECT = "trust"


@pytest.fixture
def dead_owner() -> str:
    """The identity of a process that ran and is gone: what a killed supervisor leaves in its row."""
    process = subprocess.Popen(["sleep", "600"])
    identity = procs.identify(process.pid)
    process.kill()
    process.wait()
    return identity.encode()


def plant(
    home: Path, job_id: str, command: list[str], status: str, owner: str, **bookkeeping: object
) -> None:
    """A row as the runtime writes it, with the owner and status of the phase under test."""
    now = utc_now()
    record = make_record(
        id=job_id, project_id=PROJECT, name="planted", status=status, target=" ".join(command),
        config={"command": command, "cwd": "/"}, created_at=now, updated_at=now,
    )  # fmt: skip
    with store.connect(store.database_path(home)) as conn:
        store.insert(conn, record, 1.0, 1024, owner)
        for column, value in bookkeeping.items():
            conn.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job_id))


def read_once(home: Path, job_id: str) -> dict[str, object]:
    async def read() -> dict[str, object]:
        backend = LocalBackend(home)
        try:
            return dict(await backend.get_job(PROJECT, job_id))
        finally:
            await backend.aclose()

    return anyio.run(read)


def successor_processes(home: Path) -> list[int]:
    """The live successor processes of `home` (a supervisor has a job id after its lease)."""
    found = []
    for pid in procs.process_table():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"cancel_job_mcp.backends.local" in argv
            and os.fsencode(home) in argv
            and argv[-2].startswith(b"lease:")
        ):
            found.append(pid)
    return found


def test_a_submitted_job_whose_supervisor_never_started_fails_and_never_runs(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(home, "job_neverstarted", ["touch", str(marker)], "submitted", expired_start)

    assert read_once(home, "job_neverstarted")["status"] == "submitted", "a read returns the record as is"
    record = wait_for_stop(home, "job_neverstarted")

    assert record["status"] == "failed"
    assert "supervisor did not start before it marked the job working" in record["failed_reason"]
    assert not marker.exists(), "a read (through the successor) ran a command"


def test_a_supervisor_killed_between_starting_the_command_and_working_runs_it_once(
    home: Path, tmp_path: Path, dead_owner: str
) -> None:
    """The supervisor started the command, then died before recording `working`: the row is still
    `submitted`, owned by a dead process, and the command runs with the job's tag."""
    runs = tmp_path / "runs"
    job_id = "job_halfstarted"
    script = f"echo ran >> {runs}; exec sleep 600"
    command = subprocess.Popen(
        ["sh", "-c", script], start_new_session=True, env={**os.environ, procs.JOB_TAG_VARIABLE: job_id}
    )
    try:
        wait_until(runs.exists)
        plant(home, job_id, ["sh", "-c", script], "submitted", dead_owner)

        run_cli(home, "jobs")  # a read
        record = wait_for_stop(home, job_id)

        assert record["status"] == "failed"
        assert (
            f"(pid {procs.ProcessIdentity.decode(dead_owner).pid}) is gone before" in record["failed_reason"]
        )
        assert command.wait(timeout=30) == -signal.SIGTERM, "the command it had started is stopped"
        assert runs.read_text() == "ran\n", "the command ran twice"
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_a_job_that_kills_its_supervisor_as_it_starts_runs_once(
    home: Path, tmp_path: Path, attempt: int
) -> None:
    """Wherever the kill lands (before or after `working` is recorded), the command runs once."""
    runs = tmp_path / "runs"
    job = submit_job(home, PROJECT, ["sh", "-c", f"kill -9 $PPID; echo ran >> {runs}; exec sleep 600"])
    wait_until(runs.exists, timeout=60)
    supervisor = procs.ProcessIdentity.decode(db_row(home, job["id"])["supervisor"])
    wait_until(lambda: not procs.is_running(supervisor))  # SIGKILLed, but it may take a moment to die
    for _ in range(3):
        read_once(home, job["id"])
    record = wait_for_stop(home, job["id"], timeout=60)
    successor_log = (home / "logs" / "successor.log").read_text()
    assert record["status"] == "failed", (record, successor_log)
    assert "is gone" in record["failed_reason"], (record, successor_log)
    assert runs.read_text() == "ran\n"


def test_a_submit_whose_supervisor_cannot_start_leaves_no_row(home: Path) -> None:
    (home / "logs").write_text("a file where the logs directory should be")
    with pytest.raises(ToolError, match="Nothing was submitted"):
        submit_job(home, PROJECT, ["sleep", "600"])
    with store.connect(store.database_path(home)) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


@pytest.mark.slow
def test_a_hundred_orphaned_jobs_read_at_once_get_one_successor_at_a_time(
    home: Path, dead_owner: str
) -> None:
    for number in range(100):
        plant(home, f"job_orphan{number:03}", ["sleep", "600"], "working", dead_owner)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(len(successor_processes(home)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:

        async def read_everything() -> None:
            backends = [LocalBackend(home) for _ in range(4)]
            try:
                async with anyio.create_task_group() as group:
                    for backend in backends:
                        group.start_soon(backend.list_jobs, PROJECT, None, 100, None)
                        group.start_soon(backend.list_jobs, PROJECT, "working", 100, None)
            finally:
                for backend in backends:
                    await backend.aclose()

        anyio.run(read_everything)
        for number in range(100):
            record = wait_for_stop(home, f"job_orphan{number:03}", timeout=60)
            assert record["status"] == "failed"
    finally:
        done.set()
        watcher.join()
    assert max(seen) == 1, "more than one successor ran at once"
    successor_log = (home / "logs" / "successor.log").read_text()
    assert "another successor" not in successor_log
    assert db_row(home, "job_orphan000")["supervisor"] != dead_owner


def test_a_listing_starts_no_command(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(
        home,
        "job_readonly",
        [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
        "submitted",
        expired_start,
    )
    done = run_cli(home, "jobs", "--project", PROJECT)
    assert "job_readonly" in done.stdout
    assert wait_for_stop(home, "job_readonly")["status"] == "failed"
    assert not marker.exists()


# -- the state directory as a trust boundary -------------------------------------------------------


def test_every_file_of_a_fresh_state_directory_is_private(tmp_path: Path) -> None:
    from cancel_job_mcp.app import AppOptions, build_service
    from cancel_job_mcp.config import load_config

    home = tmp_path / "not-yet" / "home"
    for _ in range(2):
        job = submit_job(home, PROJECT, ["sh", "-c", "echo output"])
        wait_for_stop(home, job["id"])

    async def list_a_page() -> None:  # a page with a next cursor: the cursor key is made
        service = build_service(AppOptions(home=home, config=load_config(None, home)))
        try:
            assert (await service.list_jobs(PROJECT, None, 1, None))["next_cursor"] is not None
        finally:
            await service.aclose()

    anyio.run(list_a_page)
    with store.connect(store.database_path(home)) as conn:  # the WAL and shared memory exist while open
        conn.execute("SELECT count(*) FROM jobs").fetchall()
        modes = {
            os.fspath(path.relative_to(home)): stat.S_IMODE(path.stat().st_mode) for path in home.rglob("*")
        }
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert {"jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "cursor.key", "logs"} <= modes.keys()
    assert any(name.endswith(".log") for name in modes)
    assert modes == {name: 0o700 if (home / name).is_dir() else 0o600 for name in modes}


def test_a_private_file_made_readable_by_an_older_version_is_made_private(home: Path) -> None:
    submit_job(home, PROJECT, ["true"])
    database = store.database_path(home)
    database.chmod(0o644)
    run_cli(home, "jobs")
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


@pytest.mark.parametrize("what", ["directory", "database", "audit.sqlite3"])
def test_a_state_directory_writable_by_others_is_refused(home: Path, tmp_path: Path, what: str) -> None:
    marker = tmp_path / "ran"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(home, "job_planted", ["touch", str(marker)], "submitted", expired_start)
    loose = {"directory": home, "database": store.database_path(home)}.get(what, home / what)
    loose.touch()
    loose.chmod(0o777 if what == "directory" else 0o666)

    done = run_cli(home, "jobs", check=False)

    assert done.returncode == 1
    assert done.stderr.startswith(f"backend_misconfigured: The local runtime refuses {loose}: it is writable")
    assert f"chmod go-w {loose}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "logs" / "successor.log").exists()
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user (nobody) needs root")
def test_a_planted_row_in_a_directory_of_another_user_is_refused_and_nothing_runs(
    tmp_path: Path,
) -> None:
    """Another local user made the state directory first and planted a job; root reads it."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    home = tmp_path / "planted"
    marker = tmp_path / "ran-as-root"
    expired_start = store.Lease(True, procs.boot_id() or "", procs.boot_clock() - 1).encode()
    plant(home, "job_planted", ["touch", str(marker)], "submitted", expired_start)
    for path in (home, *home.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)

    for command in (["jobs"], ["jobs", "--project", PROJECT], ["show", PROJECT, "job_planted"]):
        done = run_cli(home, *command, check=False)
        assert done.returncode == 1, command
        assert f"The local runtime refuses {home}: it belongs to another user (nobody)" in done.stderr
        assert "Nothing was read, changed or run." in done.stderr
        assert "Traceback" not in done.stderr
    assert successor_processes(home) == []
    assert not (home / "logs").exists()
    assert not marker.exists()


# -- supervisors that cannot act, and clocks that jump ---------------------------------------------


@pytest.mark.slow
def test_a_job_that_stops_its_supervisor_is_still_stopped_on_cancel(home: Path, tmp_path: Path) -> None:
    """`kill -STOP $PPID`: the stopped supervisor is replaced after a bound, and the job stopped."""
    job = submit_job(home, PROJECT, ["sh", "-c", "kill -STOP $PPID; exec sleep 600"], grace_seconds=1)
    owner = wait_until(
        lambda: store.lease_of(owner := db_row(home, job["id"])["supervisor"]) is None and owner
    )
    supervisor = procs.ProcessIdentity.decode(owner)
    wait_until(lambda: procs.is_stopped(supervisor), timeout=60)
    wait_until(lambda: _tagged(job["id"]), timeout=60)

    async def cancel() -> dict[str, object]:
        backend = LocalBackend(home)
        try:
            return dict(await backend.cancel_job(PROJECT, job["id"]))
        finally:
            await backend.aclose()

    assert anyio.run(cancel)["status"] == "canceled"
    record = wait_for_stop(home, job["id"], timeout=60)  # the 5 s bound, the 1 s grace, and slack

    assert record["status"] == "canceled"
    assert _tagged(job["id"]) == [], "the job runs on after its recorded stop"
    assert not procs.is_running(supervisor), "the stopped supervisor was not replaced"
    assert "has been stopped for" in (home / "logs" / "successor.log").read_text()


# The boot clock, as this process reads it, runs a thousand times slower than the real one.
SLOW_BOOT_CLOCK = """
import time
_real, _start = time.clock_gettime, time.clock_gettime(time.CLOCK_BOOTTIME)
def _slow(clock):
    now = _real(clock)
    return _start + (now - _start) / 1000 if clock == time.CLOCK_BOOTTIME else now
time.clock_gettime = _slow
"""


def test_a_supervisor_that_resumes_and_finishes_its_job_lets_the_successor_go(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisor stopped for less than the bound, which resumes and settles its job before the
    successor looks again: the successor leaves (it watched the settled job on, waking twice a second
    for ever). The successor is held stopped meanwhile, so its next look comes after the settling.
    Its boot clock runs a thousand times slow, so on however busy a machine the test's steps come
    well within its bound (else it replaces the supervisor and stops the job the test then feeds)."""
    clock = tmp_path / "clock"
    clock.mkdir()
    (clock / "sitecustomize.py").write_text(SLOW_BOOT_CLOCK)
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    job = submit_job(home, PROJECT, ["sh", "-c", f"read line < {fifo}"], grace_seconds=1)
    owner = wait_until(
        lambda: store.lease_of(owner := db_row(home, job["id"])["supervisor"]) is None and owner
    )
    supervisor = procs.ProcessIdentity.decode(owner)
    os.kill(supervisor.pid, signal.SIGSTOP)
    # SIGSTOP takes effect when the kernel next schedules the supervisor, not when kill() returns:
    # on a busy machine a read at once could still find it running and wake nobody.
    wait_until(lambda: procs.is_stopped(supervisor))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(clock), os.environ.get("PYTHONPATH", "")]))
    read_once(home, job["id"])  # a read finds the owner stopped and wakes the successor
    monkeypatch.delenv("PYTHONPATH")
    successor_log = home / "logs" / "successor.log"
    wait_until(lambda: successor_log.exists() and "supervisor is stopped" in successor_log.read_text())
    [successor] = successor_processes(home)
    assert str(clock).encode() in Path(f"/proc/{successor}/environ").read_bytes()
    os.kill(successor, signal.SIGSTOP)
    wait_until(lambda: procs.is_stopped(procs.identify(successor)))
    try:
        fd = os.open(fifo, os.O_WRONLY)  # the job reads its line and exits 0
        os.write(fd, b"go\n")
        os.close(fd)
        os.kill(supervisor.pid, signal.SIGCONT)
        wait_until(lambda: db_row(home, job["id"])["completed_at"] is not None, timeout=60)
    finally:
        os.kill(successor, signal.SIGCONT)
    wait_until(lambda: successor_processes(home) == [], timeout=30)
    assert db_row(home, job["id"])["status"] == "completed"


def _tagged(job_id: str) -> list[procs.ProcessInfo]:
    return procs.tagged_by_job(procs.process_table()).get(job_id, [])


# The job notes SIGTERM, ignores it, and notes once that it lived on 0.3 s after it (boot clock).
TERM_THEN_ALIVE = """
import os, signal, sys, time
log = sys.argv[1]
def on_term(*_):
    open(log, "a").write("TERM\\n")
    until = time.clock_gettime(time.CLOCK_BOOTTIME) + 0.3
    while time.clock_gettime(time.CLOCK_BOOTTIME) < until:
        time.sleep(0.01)
    open(log, "a").write("alive after TERM\\n")
signal.signal(signal.SIGTERM, on_term)
open(log + ".ready", "w").close()
while True:
    time.sleep(1)
"""
# Every reading of the wall clock is an hour off, forward and back in turn.
JUMPING_WALL_CLOCK = """
import itertools, time
_real, _turn = time.time, itertools.count()
time.time = lambda: _real() + (3600 if next(_turn) % 2 else -3600)
"""


@pytest.mark.slow
def test_a_wall_clock_that_jumps_moves_neither_the_grace_period_nor_the_kill(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervisor starts with a wall clock an hour off in both directions: a grace period timed
    on it would be skipped (SIGKILL at once) or last an hour."""
    clock = tmp_path / "clock"
    clock.mkdir()
    (clock / "sitecustomize.py").write_text(JUMPING_WALL_CLOCK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(clock), os.environ.get("PYTHONPATH", "")]))
    log = tmp_path / "signals"
    job = submit_job(home, PROJECT, [sys.executable, "-c", TERM_THEN_ALIVE, str(log)], grace_seconds=3)
    monkeypatch.delenv("PYTHONPATH")
    wait_until(Path(f"{log}.ready").exists, timeout=60)
    supervisor_environ = Path(
        f"/proc/{procs.ProcessIdentity.decode(db_row(home, job['id'])['supervisor']).pid}/environ"
    )
    assert str(clock).encode() in supervisor_environ.read_bytes(), (
        "the supervisor runs with the jumping clock"
    )
    backend_cancel(home, PROJECT, job["id"])
    record = wait_for_stop(home, job["id"], timeout=60)

    assert record["status"] == "canceled"
    assert record["exit_code"] == 128 + signal.SIGKILL, "killed once the grace period was over"
    assert log.read_text() == "TERM\nalive after TERM\n", "the grace period was skipped"


# -- signals reach only the job's processes --------------------------------------------------------

# Run as PID 1 of a private PID namespace (pid_max 400, so PIDs are reused at once): a job whose
# supervisor and leader are gone, and a stranger whose process group now has the leader's PID as its
# id (its own leader exited, its member lives on). A read wakes the successor; the stranger must live.
RECYCLED_GROUP = """
import json, os, signal, subprocess, sys, time
from pathlib import Path
import anyio
from cancel_job_mcp.backends.local import procs, store
from cancel_job_mcp.backends.local.runtime import LocalBackend
from cancel_job_mcp.record import make_record, utc_now

home, log = Path(sys.argv[1]), sys.argv[2]
Path("/proc/sys/kernel/pid_max").write_text("400")
supervisor = subprocess.Popen(["sleep", "600"])
lost = procs.identify(supervisor.pid).encode()
supervisor.kill(), supervisor.wait()
tag = {procs.JOB_TAG_VARIABLE: "job_recycled"}
leader = subprocess.Popen(["sleep", "600"], start_new_session=True, env=tag)
gone = procs.identify(leader.pid)
leader.kill(), leader.wait()
now = utc_now()
record = make_record(id="job_recycled", project_id="trust", name="n", status="working", target="sleep 600",
                     config={"command": ["sleep", "600"], "cwd": "/"}, created_at=now, updated_at=now)
with store.connect(store.database_path(home)) as conn:
    store.insert(conn, record, 1.0, 1024, lost)
    conn.execute("UPDATE jobs SET process = ? WHERE id = 'job_recycled'", (gone.encode(),))
stranger_code = (
    "import os, signal, sys, time\\n"
    "os.setsid()\\n"
    "if os.fork() == 0:\\n"
    "    signal.signal(signal.SIGTERM, lambda *_: open(sys.argv[1], 'a').write('TERM\\\\n'))\\n"
    "    open(sys.argv[1] + '.ready', 'w').close()\\n"
    "    time.sleep(600)\\n"
)
Path("/proc/sys/kernel/ns_last_pid").write_text(str(gone.pid - 1))
stranger = subprocess.Popen([sys.executable, "-c", stranger_code, log])
stranger.wait()
while not os.path.exists(log + ".ready"):
    time.sleep(0.01)
member = next(info for info in procs.process_table().values() if info.pgrp == gone.pid)

async def read():
    backend = LocalBackend(home)
    try:
        return (await backend.get_job("trust", "job_recycled"))["status"]
    finally:
        await backend.aclose()

seen = anyio.run(read)
deadline = time.monotonic() + 60
with store.connect(store.database_path(home)) as conn:
    while (row := store.get(conn, "job_recycled")).record["completed_at"] is None:
        assert time.monotonic() < deadline, "the successor did not record the job"
        time.sleep(0.05)
print(json.dumps({"stranger_pid": stranger.pid, "group": gone.pid, "member_alive": procs.is_running(
    procs.ProcessIdentity(member.pid, member.start_ticks, procs.boot_id())), "seen": seen,
    "status": row.record["status"], "reason": row.record["failed_reason"]}))
"""


def _private_pid_namespace() -> str | None:
    """Why a private PID namespace cannot be made here, or None if it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True
    )
    return (
        None if done.returncode == 0 else f"unshare --pid --mount-proc is refused here: {done.stderr.strip()}"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a private PID namespace with its own pid_max needs root")
def test_a_process_group_whose_id_was_recycled_is_never_signalled(home: Path, tmp_path: Path) -> None:
    if (reason := _private_pid_namespace()) is not None:
        pytest.skip(reason)
    log = tmp_path / "stranger"
    namespace = ["unshare", "--pid", "--fork", "--mount-proc"]
    done = subprocess.run(
        [*namespace, sys.executable, "-c", RECYCLED_GROUP, str(home), str(log)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stranger_pid"] == result["group"], "the stranger did not get the leader's PID"
    assert result["seen"] == "working", "a read returns the record as it is"
    assert result["status"] == "failed"
    assert "is gone" in result["reason"]
    assert result["member_alive"], "the successor killed a process of a recycled group"
    assert not log.exists(), "the successor signalled a process of a recycled group"


# -- a stop still under way is said ------------------------------------------------------------------


@pytest.mark.slow
def test_jobs_and_show_say_a_stop_is_still_under_way(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "signals"
    job = submit_job(home, PROJECT, [sys.executable, "-c", TERM_THEN_ALIVE, str(log)], grace_seconds=600)
    wait_until(Path(f"{log}.ready").exists, timeout=60)
    backend_cancel(home, PROJECT, job["id"])  # recorded, not waited for
    wait_until(lambda: "TERM" in (log.read_text() if log.exists() else ""), timeout=60)

    for listing in (run_cli(home, "jobs"), run_cli(home, "jobs", "--project", PROJECT)):
        row = next(line for line in listing.stdout.splitlines() if line.startswith(job["id"]))
        assert "canceled (stopping)" in row
    shown = run_cli(home, "show", PROJECT, job["id"])
    assert json.loads(shown.stdout)["status"] == "canceled", "the record keeps the contract's fields"
    assert f"Job {job['id']} is canceled (stopping)" in shown.stderr

    for info in _tagged(job["id"]):  # end the job here rather than wait out its grace period
        procs.send_signal(info, signal.SIGKILL)
    wait_for_stop(home, job["id"], timeout=60)
    row = next(line for line in run_cli(home, "jobs").stdout.splitlines() if line.startswith(job["id"]))
    assert "canceled" in row
    assert "stopping" not in row
    assert run_cli(home, "show", PROJECT, job["id"]).stderr == ""
