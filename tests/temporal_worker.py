"""A real Temporal worker for the Temporal tests, run as its own process by tests/temporal_cluster.py:
`python -m tests.temporal_worker ADDRESS TASK_QUEUE NAMESPACE...` (the temporalio SDK, a test dependency).

Each workflow takes a path prefix `mark` and leaves files beside it for the tests to see what its code
did: `mark.started` once it runs, `mark.cleanup` when it handled a cancel, `mark.ignored` when it saw
one and carried on, `mark.activity-cancelled` when its heartbeating activity was told of the cancel.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from temporalio.workflow import ActivityCancellationType

ONCE = RetryPolicy(maximum_attempts=1)
SHORT = timedelta(seconds=30)


@activity.defn
async def touch(path: str) -> None:
    await asyncio.to_thread(Path(path).touch)


@activity.defn
async def heartbeat_until_cancelled(mark: str) -> None:
    await touch(f"{mark}.started")
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        await touch(f"{mark}.activity-cancelled")
        raise


async def _touch(path: str) -> None:
    await workflow.execute_activity(touch, path, start_to_close_timeout=SHORT, retry_policy=ONCE)


@workflow.defn
class Graceful:
    """Handles a cancel: runs its cleanup (an activity), then closes as CANCELED."""

    @workflow.run
    async def run(self, mark: str) -> None:
        await _touch(f"{mark}.started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await _touch(f"{mark}.cleanup")
            raise


@workflow.defn
class Stubborn:
    """Notes a cancel and carries on: only a terminate ends it."""

    @workflow.run
    async def run(self, mark: str) -> None:
        await _touch(f"{mark}.started")
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await _touch(f"{mark}.ignored")


@workflow.defn
class Heartbeating:
    """Runs one heartbeating activity; a cancel reaches the activity, which stops, then the workflow."""

    @workflow.run
    async def run(self, mark: str) -> None:
        await workflow.execute_activity(
            heartbeat_until_cancelled,
            mark,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            retry_policy=ONCE,
        )


@workflow.defn
class Quick:
    @workflow.run
    async def run(self, mark: str) -> str:
        return "done"


@workflow.defn
class Failing:
    @workflow.run
    async def run(self, mark: str) -> None:
        raise ApplicationError("the input was rejected: boom", non_retryable=True)


WORKFLOWS = [Graceful, Stubborn, Heartbeating, Quick, Failing]
ACTIVITIES = [touch, heartbeat_until_cancelled]


async def main(address: str, task_queue: str, namespaces: list[str]) -> None:
    workers = []
    for namespace in namespaces:
        client = await Client.connect(address, namespace=namespace)
        workers.append(Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=ACTIVITIES))
    await asyncio.gather(*(worker.run() for worker in workers))


if __name__ == "__main__":
    # The workflows by their module's own name: the SDK's sandbox imports them again by that name.
    from tests import temporal_worker

    asyncio.run(temporal_worker.main(sys.argv[1], sys.argv[2], sys.argv[3:]))
