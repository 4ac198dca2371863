"""`cancel-job-mcp logs`: the last lines of a real local job, the filter, refusals, and --follow printing
each new line once until the job is terminal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cancel_job_mcp.tail import new_lines

from .conftest import CLI, env_for, run_cli, show, submit, wait_until

# Prints "tick N" every 20 ms until argv[1] exists, then "bye" and exits 0.
TICKS = (
    "import os, sys, time\n"
    "i = 0\n"
    "while not os.path.exists(sys.argv[1]):\n"
    "    print('tick', i, flush=True); i += 1; time.sleep(0.02)\n"
    "print('bye', flush=True)\n"
)


def test_logs_prints_the_last_lines_and_filters(home: Path) -> None:
    job = submit(home, "cli-logs", "sh", "-c", "for i in $(seq 1 500); do echo line $i; done")
    wait_until(lambda: show(home, "cli-logs", job["id"])["status"] == "completed")
    tail = run_cli(home, "logs", "cli-logs", job["id"], "--tail", "3")
    assert tail.stdout == "line 498\nline 499\nline 500\n"
    only = run_cli(home, "logs", "cli-logs", job["id"], "--contains", "LINE 49", "--tail", "5000")
    assert only.stdout.split("\n")[:2] == ["line 49", "line 490"]
    assert len(only.stdout.splitlines()) == 11
    wrong = run_cli(home, "logs", "elsewhere", job["id"], check=False)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("not_found: ")
    bad = run_cli(home, "logs", "cli-logs", job["id"], "--tail", "0", check=False)
    assert bad.returncode == 2
    assert "--tail" in bad.stderr


def test_follow_prints_each_new_line_once_until_the_job_is_terminal(home: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    job = submit(home, "cli-follow", "python3", "-c", TICKS, str(release))
    follower = subprocess.Popen(
        [*CLI, "logs", "cli-follow", job["id"], "--follow", "--tail", "1"],
        env=env_for(home),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    seen = [follower.stdout.readline() for _ in range(30)]  # the job keeps printing meanwhile
    release.touch()
    with follower.stdout:
        rest = follower.stdout.read()  # until the follower exits (the job is terminal)
    assert follower.wait(timeout=60) == 0
    printed = [line.rstrip("\n") for line in seen] + rest.splitlines()
    assert printed[-1] == "bye"
    ticks = [int(line.split()[1]) for line in printed[:-1]]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), "every line once, in order"
    log = (home / "logs" / f"{job['id']}.log").read_text().splitlines()
    assert log[-1] == "bye"
    assert log[-len(printed) :] == printed


def test_new_lines_start_after_the_last_lines_printed() -> None:
    assert new_lines([], ["a"]) == ["a"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b"], ["b", "c", "d"]) == ["c", "d"]
    assert new_lines(["a", "b"], ["x", "y"]) == ["x", "y"]
    assert new_lines(["b"], ["a", "b", "c"]) == ["c"]
