"""The Slurm backend's reading of a job's output file (read_output = true): its path from slurmrestd's
answer, and only a regular file of the job's own user, never through a symlink or from a FIFO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cancel_job_mcp.backends.logs import LogQuery
from cancel_job_mcp.backends.slurm.output import output_path, read_output_file

JOB = {
    "job_id": 42,
    "name": "train",
    "user_name": "ada",
    "batch_host": "n7",
    "current_working_directory": "/w",
}


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({}, "/w/slurm-42.out"),
        ({"standard_output": ""}, "/w/slurm-42.out"),
        ({"array_job_id": 40, "array_task_id": 2}, "/w/slurm-40_2.out"),
        ({"standard_output": "/o/%x-%j-%u-%N.log"}, "/o/train-42-ada-n7.log"),
        ({"standard_output": "out/%5j%%.txt"}, "/w/out/00042%.txt"),
        ({"standard_output": "rel.out", "current_working_directory": ""}, None),
    ],
)
def test_the_output_path_is_expanded_as_sbatch_does(fields: dict[str, object], path: str | None) -> None:
    assert output_path({**JOB, **fields}) == path


def test_only_a_regular_file_of_the_jobs_user_is_read(tmp_path: Path) -> None:
    out = tmp_path / "slurm-42.out"
    out.write_text("one\ntwo\n")
    selection, size = read_output_file(out, os.getuid(), LogQuery())
    assert (selection.lines, size) == (["one", "two"], 8)
    with pytest.raises(OSError, match="owned by the job's user"):
        read_output_file(out, os.getuid() + 1, LogQuery())
    link = tmp_path / "link.out"
    link.symlink_to(out)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):  # O_NOFOLLOW
        read_output_file(link, os.getuid(), LogQuery())
    fifo = tmp_path / "fifo.out"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="regular file"):
        read_output_file(fifo, os.getuid(), LogQuery())
