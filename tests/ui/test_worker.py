"""InferenceWorker: latest wins, stale results dropped (by the session, the one filter), errors reported,
model switch, clean stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer
from cnnviz_desktop.core.session import Session
from cnnviz_desktop.worker import InferenceWorker

WAIT_MS = 30_000  # generous: a deadline for a hang, not a timing assertion


def canvas(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = np.zeros((28, 28), np.float32)
    y, x = rng.integers(4, 20, size=2)
    pixels[y:y + 8, x:x + 3] = 1.0
    return pixels


@pytest.fixture(scope="module")
def tiny_analyzer(tiny):
    return Analyzer(tiny)


@pytest.fixture
def make_worker(qtbot):
    workers = []

    def make(*args, **kwargs) -> tuple[InferenceWorker, list, list]:
        worker = InferenceWorker(*args, **kwargs)
        workers.append(worker)
        snapshots, failures = [], []
        # What the app does: every result goes through the session, which drops stale ones.
        session = Session()
        worker.session = session

        def on_result(result):
            session.generation = worker.generation
            if session.accept(result):
                if result.snapshot is not None:
                    snapshots.append(result.snapshot)
                else:
                    failures.append((result.request_id, result.error))

        worker.result_ready.connect(on_result)
        return worker, snapshots, failures

    yield make
    for worker in workers:
        worker.stop()
        assert worker.thread_handle.isFinished(), "worker thread leaked"


class Gate:
    """A fake analyzer that blocks until released, then answers with a real analyzer."""

    def __init__(self, real, name="gate"):
        self.real, self.name = real, name
        self.started = threading.Event()
        self.release = threading.Event()

    def analyse(self, request):
        self.started.set()
        self.release.wait(WAIT_MS / 1000)
        return self.real.analyse(request)


def test_rapid_submits_latest_always_delivered_in_order(qtbot, make_worker, tiny):
    worker, snapshots, failures = make_worker(tiny)
    for i in range(1, 101):
        assert worker.submit(AnalysisRequest(i, canvas(i)))
    qtbot.waitUntil(lambda: bool(snapshots) and snapshots[-1].request_id == 100, timeout=WAIT_MS)
    ids = [s.request_id for s in snapshots]
    assert ids == sorted(set(ids)), "a result arrived after a newer one"
    assert not failures
    # Every request was either replaced while pending, delivered, or dropped as stale.
    assert len(ids) + worker.coalesced + worker.session.dropped == 100
    assert all(s.model_name == "tiny" and not s.empty for s in snapshots)


def test_a_result_older_than_the_last_delivered_is_dropped(qtbot, make_worker, tiny_analyzer):
    worker, snapshots, _ = make_worker(tiny_analyzer)
    worker.submit(AnalysisRequest(5, canvas(5)))
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)
    worker.submit(AnalysisRequest(3, canvas(3)))
    qtbot.waitUntil(lambda: worker.session.dropped == 1, timeout=WAIT_MS)
    worker.submit(AnalysisRequest(6, canvas(6)))
    qtbot.waitUntil(lambda: len(snapshots) == 2, timeout=WAIT_MS)
    assert [s.request_id for s in snapshots] == [5, 6]


def test_errors_are_reported_and_the_worker_keeps_serving(qtbot, make_worker, tiny_analyzer):
    class Flaky:
        name = "flaky"

        def analyse(self, request):
            if request.request_id % 2:
                raise RuntimeError("boom")
            return tiny_analyzer.analyse(request)

    worker, snapshots, failures = make_worker(tiny_analyzer)
    # A bad request (class 42 does not exist) fails with a user-facing message ...
    worker.submit(AnalysisRequest(1, canvas(1), target=42))
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=WAIT_MS)
    assert failures[0][0] == 1 and "target" in failures[0][1]
    # ... and the next one is served.
    worker.submit(AnalysisRequest(2, canvas(2)))
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)
    # An unexpected exception inside the analyzer too.
    worker.set_model(Flaky(), reanalyse=False)
    worker.submit(AnalysisRequest(3, canvas(3)))
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=WAIT_MS)
    assert failures[1] == (3, "RuntimeError: boom")
    worker.submit(AnalysisRequest(4, canvas(4)))
    qtbot.waitUntil(lambda: len(snapshots) == 2, timeout=WAIT_MS)
    assert snapshots[-1].request_id == 4


def test_a_model_that_cannot_be_analysed_is_reported(qtbot, make_worker, tiny):
    worker, snapshots, failures = make_worker()
    worker.set_model(object())
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=WAIT_MS)
    assert failures[0][0] == -1
    worker.set_model(tiny)
    worker.submit(AnalysisRequest(1, canvas(1)))
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)


def test_requests_wait_for_a_model(qtbot, make_worker, tiny):
    worker, snapshots, _ = make_worker()
    worker.submit(AnalysisRequest(1, canvas(1)))
    worker.submit(AnalysisRequest(2, canvas(2)))
    assert worker.coalesced == 1
    worker.set_model(tiny, reanalyse=False)
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)
    assert snapshots[0].request_id == 2


def test_set_model_drops_old_results_and_reanalyses(qtbot, make_worker, tiny_analyzer, wide):
    gate = Gate(tiny_analyzer)
    worker, snapshots, _ = make_worker(gate)
    worker.submit(AnalysisRequest(1, canvas(1)))
    assert gate.started.wait(WAIT_MS / 1000)
    worker.set_model(wide, reanalyse=True)  # while the old model is busy with request 1
    gate.release.set()
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)
    # The old model's answer was dropped; request 1 was analysed again with the new model.
    assert snapshots[0].request_id == 1 and snapshots[0].model_name == "wide"
    assert worker.session.dropped == 1
    worker.submit(AnalysisRequest(2, canvas(2)))
    qtbot.waitUntil(lambda: len(snapshots) == 2, timeout=WAIT_MS)
    assert snapshots[1].model_name == "wide"


def test_stop_while_busy_is_clean_and_idempotent(qtbot, make_worker, tiny_analyzer):
    gate = Gate(tiny_analyzer)
    worker, snapshots, failures = make_worker(gate)
    worker.submit(AnalysisRequest(1, canvas(1)))
    worker.submit(AnalysisRequest(2, canvas(2)))
    assert gate.started.wait(WAIT_MS / 1000)
    assert worker.busy
    threading.Timer(0.05, gate.release.set).start()  # let the running analysis finish during stop()
    worker.stop()
    assert worker.thread_handle.isFinished()
    worker.stop()
    assert not worker.submit(AnalysisRequest(3, canvas(3)))
    end = time.monotonic() + 0.2
    while time.monotonic() < end:  # process any result posted before the thread ended
        qtbot.wait(10)
    assert snapshots == [] and failures == []


def test_empty_canvas_snapshot_through_the_worker(qtbot, make_worker, tiny_analyzer):
    worker, snapshots, _ = make_worker(tiny_analyzer)
    worker.submit(AnalysisRequest(1, np.zeros((40, 30), np.float32)))
    qtbot.waitUntil(lambda: len(snapshots) == 1, timeout=WAIT_MS)
    assert snapshots[0].empty and snapshots[0].canvas_cam.shape == (40, 30)
