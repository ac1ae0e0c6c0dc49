"""The session model, without Qt: requests, the one stale filter, view state, derived maps, settings."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cnnviz_desktop.core.analysis import Analyzer
from cnnviz_desktop.core.session import DictStore, Session, WorkerResult


def stroke(session, points):
    x, y = points[0]
    session.canvas.begin_stroke(x, y)
    for x, y in points[1:]:
        session.canvas.extend_stroke(x, y)
    session.canvas.end_stroke()
    session.canvas_edited()


@pytest.fixture(scope="module")
def analyzer(tiny):
    return Analyzer(tiny)


@pytest.fixture
def session(tiny, analyzer):
    """A session wired to a synchronous 'worker': every request is analysed at once."""
    s = Session(DictStore())
    s.requests = []
    s.request_made.connect(s.requests.append)
    s.set_model(tiny)
    return s


def answer(session, analyzer, request=None):
    request = request or session.requests[-1]
    return session.accept(WorkerResult(session.generation, request.request_id, analyzer.analyse(request)))


def test_the_session_imports_no_qt():
    import subprocess

    code = ("import sys, cnnviz_desktop.core.session as s; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'OpenGL')]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_requests_carry_the_view_state_and_results_are_shown(session, analyzer):
    snapshots = []
    session.snapshot_changed.connect(snapshots.append)
    assert session.requests[-1].request_id == 1  # set_model asks for one analysis of the drawing
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    assert answer(session, analyzer)
    assert session.snapshot.predicted == 1 and session.settled
    assert session.analysis_ms == session.snapshot.timings["total"]  # not the sum of all stages (x2)
    session.set_target(7, contrast=1)
    request = session.requests[-1]
    assert (request.target, request.contrast) == (7, 1)
    assert answer(session, analyzer)
    assert session.explains_text() == "why 7 rather than 1" and len(snapshots) == 2


def test_stale_results_are_dropped_once_here(session, analyzer, wide):
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    first = session.requests[-1]
    stroke(session, [(8.0, 10.0), (20.0, 10.0)])
    second = session.requests[-1]
    assert answer(session, analyzer, second)
    assert not answer(session, analyzer, first), "an older request's result must be dropped"
    old_generation = session.generation
    session.set_model(wide)
    result = WorkerResult(old_generation, session.requests[-1].request_id + 5, analyzer.analyse(second))
    assert not session.accept(result), "a result of the previous model must be dropped"
    assert session.dropped == 2
    assert session.snapshot is None  # a model switch clears the shown result until the new one arrives


def test_errors_and_model_errors_are_reported(session):
    messages = []
    session.analysis_failed.connect(messages.append)
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    assert session.accept(WorkerResult(session.generation, session.requests[-1].request_id, None, "boom"))
    assert session.accept(WorkerResult(session.generation, -1, None, "cannot analyse this model"))
    assert messages == ["boom", "cannot analyse this model"]


def test_channel_map_kind_and_overlay(session, analyzer):
    assert session.channels == 2
    assert session.overlay() is None  # nothing analysed yet
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    answer(session, analyzer)
    both = session.overlay()
    assert both.kind == "gradcam" and both.channel is None
    assert np.array_equal(both.values, session.snapshot.canvas_cam)
    assert session.set_channel(1) and session.overlay().channel == 1
    assert np.array_equal(session.overlay().values, session.snapshot.canvas_cam_channels[1])
    assert session.overlay().scale == both.scale, "one scale for Both and every channel"
    assert not session.set_channel(5) and session.channel == 1  # out of range: unchanged
    session.step_channel(1)
    assert session.channel is None
    session.set_map_kind("hirescam")
    assert np.array_equal(session.overlay().values, session.snapshot.canvas_hirescam)
    session.set_overlay_visible(False)
    assert session.overlay() is None
    with pytest.raises(ValueError):
        session.set_map_kind("nonsense")
    assert [label for label, _ in session.channel_maps()] == ["Both", "Ch 0", "Ch 1"]


def test_blank_paper_channel_of_tiny_is_named(session, analyzer):
    # A ring: tiny's channel 0 is high off the ink (the 'blank paper' channel measured in issue 11).
    ring = [(14 + 6 * np.sin(a), 14 - 8.5 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 48)]
    stroke(session, ring)
    answer(session, analyzer)
    blank = session.blank_paper_channels()
    assert blank == [0] or blank == [], blank
    assert all(0 <= k < session.channels for k in blank)


def test_picked_neuron_receptive_field_on_the_canvas(session, analyzer):
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    answer(session, analyzer)
    picked = []
    session.picked_changed.connect(picked.append)
    session.set_picked("conv1", (0, 5, 7))
    assert picked == [("conv1", (0, 5, 7))]
    r0, c0, r1, c1 = session.picked_box()
    assert 0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28
    session.set_picked("output", (3,))
    assert session.picked_box() is not None  # a dense neuron sees the whole digit
    session.clear()
    assert session.picked is None and session.picked_box() is None


def test_class_clicks_and_contrast(session, analyzer):
    stroke(session, [(14.0, 4.0), (14.5, 24.0)])
    answer(session, analyzer)
    session.click_class(7)
    assert session.target == 7 and session.contrast is None
    session.click_class(1, contrast=True)
    assert (session.target, session.contrast) == (7, 1)
    session.click_class(1, contrast=True)  # again: the contrast goes
    assert (session.target, session.contrast) == (7, None)
    session.click_class(7)  # the same bar again: back to the prediction
    assert session.target is None
    with pytest.raises(ValueError):
        session.set_target(12)


def test_presentation_turns_rotation_on_and_restores_it():
    session = Session()
    changes = []
    session.changed.connect(lambda name, value: changes.append((name, value)))
    session.set_presentation(True)
    assert session.presentation and session.auto_rotate
    session.set_presentation(False)
    assert not session.presentation and not session.auto_rotate
    assert ("auto_rotate", True) in changes and ("auto_rotate", False) in changes


def test_settings_round_trip_and_only_changed_keys_are_written():
    store = DictStore({"overlay/opacity": "0.4", "view/palette": "colorblind", "view/connections": "bogus",
                       "canvas/brush": "2.0", "overlay/visible": "false"})
    session = Session(store)
    problems = session.load_settings()
    assert session.overlay_opacity == pytest.approx(0.4) and session.palette == "colorblind"
    assert session.brush == pytest.approx(2.0) and session.canvas.radius == pytest.approx(2.0)
    assert not session.overlay_visible
    assert session.connection_mode == "significant" and len(problems) == 1 and "view/connections" in problems[0]
    # Another instance changed the map kind meanwhile: this one writes only what it changes.
    store.data["overlay/map"] = "hirescam"
    session.set_overlay_opacity(0.9)
    assert store.data["overlay/map"] == "hirescam" and store.data["overlay/opacity"] == pytest.approx(0.9)
    session.set_overlay_opacity(7.0)
    assert session.overlay_opacity == 1.0  # clamped


def test_model_choice_is_remembered(tiny, tmp_path):
    store = DictStore()
    session = Session(store)
    assert session.last_model() == "tiny"
    session.set_model(tiny)
    assert store.data["model/last"] == "tiny"


def test_requests_wait_for_a_model():
    session = Session()
    made = []
    session.request_made.connect(made.append)
    assert session.request() is None and made == []


@pytest.mark.parametrize("brush", ["nan", "inf", "-inf", "1e999", "banana"])
def test_a_damaged_brush_setting_keeps_the_default(brush):
    session = Session(DictStore({"canvas/brush": brush}))
    problems = session.load_settings()
    if brush == "1e999" or brush.endswith("inf"):
        assert session.brush in (1.3,) and problems
    assert np.isfinite(session.brush) and 0.5 <= session.brush <= 4.0
