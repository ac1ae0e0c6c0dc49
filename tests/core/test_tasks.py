"""The background lane: newest task cancels the old, progress and results are posted, errors are messages."""

import threading
import time

from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.tasks import TaskRunner


def _collect():
    updates, lock = [], threading.Lock()

    def post(update):
        with lock:
            updates.append(update)
    return updates, post


def test_result_and_progress_are_posted():
    updates, post = _collect()
    lane = TaskRunner("test", post)

    def job(ctx):
        for i in range(3):
            ctx.progress((i + 1) / 3, i)
        return "ok"

    tid = lane.submit(job)
    assert lane.wait_idle(5)
    kinds = [(u.task_id, u.kind, u.payload) for u in updates]
    assert kinds == [(tid, "progress", 0), (tid, "progress", 1), (tid, "progress", 2), (tid, "done", "ok")]
    lane.shutdown()


def test_a_newer_task_cancels_the_running_one():
    updates, post = _collect()
    lane = TaskRunner("test", post)
    started = threading.Event()

    def slow(ctx):
        started.set()
        while True:
            ctx.check()
            time.sleep(0.001)

    first = lane.submit(slow)
    assert started.wait(5)
    second = lane.submit(lambda ctx: 42)
    assert lane.wait_idle(5)
    final = {u.task_id: u.kind for u in updates}
    assert final[first] == "cancelled"
    assert final[second] == "done"
    assert [u.payload for u in updates if u.task_id == second] == [42]
    lane.shutdown()


def test_errors_become_messages_and_the_lane_survives():
    updates, post = _collect()
    lane = TaskRunner("test", post)

    def bad(ctx):
        raise CnnvizError("no data")

    def broken(ctx):
        raise ValueError("boom")

    a = lane.submit(bad)
    assert lane.wait_idle(5)
    b = lane.submit(broken)
    assert lane.wait_idle(5)
    c = lane.submit(lambda ctx: 1)
    assert lane.wait_idle(5)
    by_id = {u.task_id: u for u in updates}
    assert by_id[a].kind == "failed" and by_id[a].message == "no data"
    assert by_id[b].kind == "failed" and "ValueError: boom" in by_id[b].message
    assert by_id[c].kind == "done"
    lane.shutdown()


def test_cancel_stops_the_task_and_shutdown_stops_the_thread():
    updates, post = _collect()
    lane = TaskRunner("test", post)
    started = threading.Event()

    def slow(ctx):
        started.set()
        while True:
            ctx.check()
            time.sleep(0.001)

    tid = lane.submit(slow)
    assert started.wait(5)
    lane.cancel()
    assert lane.wait_idle(5)
    assert updates[-1].task_id == tid and updates[-1].kind == "cancelled"
    lane.shutdown()
    try:
        lane.submit(lambda ctx: 1)
    except CnnvizError as exc:
        assert "shut down" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a shut-down lane accepted a task")
