"""Drawings files (core/drawings.py): round trip, every malformed case with a message naming where, and the
replay schedule's timing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cnnviz_desktop.core import drawings as dr
from cnnviz_desktop.core.canvas import CanvasModel
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.strokes import Stroke


def _file(tmp_path, doc):
    path = tmp_path / "drawings.json"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_round_trip_through_a_file_keeps_points_times_labels_and_erasers(tmp_path):
    canvas = CanvasModel()
    canvas.begin_stroke(7.0, 6.0, t=100.0)
    canvas.extend_stroke(20.0, 6.0, t=100.2, pressure=0.5)
    canvas.extend_stroke(12.0, 23.0, t=100.5)
    canvas.end_stroke()
    canvas.set_radius(2.5)
    canvas.begin_stroke(14.0, 18.0, erase=True, t=101.0)
    canvas.extend_stroke(15.0, 18.0, t=101.1)
    canvas.end_stroke()
    original = dr.Drawing.from_strokes(canvas.strokes, label=7, note="a seven")
    path = tmp_path / "out.json"
    assert dr.write_drawings(path, [original, dr.Drawing((dr.DrawnStroke([[1, 2, np.nan, 1]]),), label=None)]) == 2
    back = dr.read_drawings(path)
    assert [d.label for d in back] == [7, None] and back[0].note == "a seven"
    strokes = back[0].to_strokes()
    np.testing.assert_allclose(strokes[0].points, [[7, 6, 0, 1], [20, 6, 0.2, 0.5], [12, 23, 0.5, 1]], atol=1e-4)
    assert not strokes[0].erase and strokes[0].radius == pytest.approx(1.3)
    assert strokes[1].erase and strokes[1].radius == 2.5
    np.testing.assert_allclose(strokes[1].t, [1.0, 1.1], atol=1e-4)
    # Written times are relative to the drawing's first point; a missing one is written as filled in (0).
    doc = json.loads(path.read_text())
    assert doc["drawings"][0]["strokes"][0][0] == [7, 6, 0, 1]
    assert doc["drawings"][1]["strokes"] == [[[1, 2, 0, 1]]]
    # Painting the file's strokes gives the canvas the mouse drew.
    record = dr.drawing_to_record(back[0])
    np.testing.assert_allclose(record.canvas, canvas.pixels, atol=1e-3)


def test_the_histories_export_format_is_read_too(tmp_path):
    from cnnviz_desktop.core.history import DrawingRecord, drawings_document

    strokes = (Stroke([[5, 5, 10.0, 1.0], [20, 5, 10.5, 1.0]]), Stroke([[8, 5, 11.0, 1.0]], erase=True, radius=2.0))
    record = DrawingRecord(canvas=np.zeros((28, 28), np.float32), strokes=strokes, label=3)
    back = dr.loads(json.dumps(drawings_document([record])))
    assert back[0].label == 3 and back[0].strokes[1].erase and back[0].strokes[1].radius == 2.0
    np.testing.assert_allclose(back[0].times()[0], [0.0, 0.5])


def test_missing_times_get_the_default_pace():
    d = dr.loads('{"drawings": [{"strokes": [[[1, 1], [2, 2], [3, 3]], [[4, 4], [5, 5, null, 0.5]]]}]}')[0]
    t = d.times()
    np.testing.assert_allclose(t[0], [0, dr.POINT_INTERVAL_S, 2 * dr.POINT_INTERVAL_S])
    np.testing.assert_allclose(t[1], [2 * dr.POINT_INTERVAL_S + dr.STROKE_GAP_S,
                                      2 * dr.POINT_INTERVAL_S + dr.STROKE_GAP_S + dr.POINT_INTERVAL_S])
    assert d.strokes[1].points[1, 3] == 0.5 and d.strokes[0].points[0, 3] == 1.0


@pytest.mark.parametrize("doc,message", [
    (b"not json", "not a drawings file: not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[1, 2]", 'expected a JSON object {"drawings": [...]}'),
    ({"drawings": 5}, "'drawings' is 5, must be a list"),
    ({"drawings": ["x"]}, 'drawing 1 is "x", must be an object'),
    ({"drawings": [{"strokes": []}]}, "drawing 1: 'strokes' is [], must be a non-empty list"),
    ({"drawings": [{"strokes": [[[1, 1]]]}, {"label": "7", "strokes": [[[1, 1]]]}]},
     'drawing 2: label is "7", must be a digit 0-9 or null'),
    ({"drawings": [{"label": 10, "strokes": [[[1, 1]]]}]}, "drawing 1: label is 10, must be a digit"),
    ({"drawings": [{"label": True, "strokes": [[[1, 1]]]}]}, "drawing 1: label is true"),
    ({"drawings": [{"strokes": [[]]}]}, "drawing 1, stroke 1: a stroke must be a non-empty list"),
    ({"drawings": [{"strokes": [[[1, 1]], [[1, 1]], [[1, 1]] + [[1, 1]] * 5 + [[-5, 3]]]}]},
     "drawing 1, stroke 3, point 7: x is -5, must be 0-28"),
    ({"drawings": [{"strokes": [[[1, 29]]]}]}, "drawing 1, stroke 1, point 1: y is 29, must be 0-28"),
    ({"drawings": [{"strokes": [[[1, "2"]]]}]}, 'point 1: y is "2", must be a number'),
    ({"drawings": [{"strokes": [[[1, None]]]}]}, "point 1: y is null, must be a number"),
    ({"drawings": [{"strokes": [[[1, True]]]}]}, "point 1: y is true, must be a number"),
    ('{"drawings": [{"strokes": [[[NaN, 1]]]}]}', "point 1: x is NaN, must be a finite number"),
    ('{"drawings": [{"strokes": [[[1, 1, Infinity]]]}]}', "point 1: t is Infinity, must be a finite number"),
    ('{"drawings": [{"strokes": [[[1, 1e400]]]}]}', "y is Infinity, must be a finite number"),
    ('{"drawings": [{"strokes": [[[1, 1' + "0" * 400 + ']]]}]}', "must be a finite number"),
    ('{"drawings": [{"strokes": [[[1, 1' + "0" * 5000 + ']]]}]}', "not readable JSON"),
    ({"drawings": [{"strokes": [[[1, 1, -1]]]}]}, "point 1: t is -1, must be 0-86400 seconds"),
    ({"drawings": [{"strokes": [[[1, 1, 0.5], [2, 2, 0.4]]]}]},
     "drawing 1, stroke 1, point 2: t is 0.4, earlier than the point before it"),
    ({"drawings": [{"strokes": [[[1, 1, 2]], [[2, 2, 1], [3, 3, 0.5]]]}]}, "stroke 2, point 2: t is 0.5, earlier"),
    ({"drawings": [{"strokes": [[[1, 1, 0, 2]]]}]}, "point 1: pressure is 2, must be 0-1"),
    ({"drawings": [{"strokes": [[[1, 1, 0, 1, 5]]]}]}, "point 1 is [1, 1, 0, 1, 5], must be [x, y]"),
    ({"drawings": [{"strokes": [[5]]}]}, "point 1 is 5, must be [x, y]"),
    ({"drawings": [{"strokes": [{"points": [[1, 1]], "erase": "yes"}]}]}, "stroke 1: 'erase' is \"yes\""),
    ({"drawings": [{"strokes": [{"points": [[1, 1]], "radius": 99}]}]}, "'radius' is 99, must be 0.5-4.0 cells"),
    ({"drawings": [{"strokes": [[[1, 1]]], "note": 5}]}, "drawing 1: note must be text"),
    ("[" * 100_000 + "]" * 100_000, "not a drawings file"),
])
def test_malformed_files_give_one_clear_message_naming_where(tmp_path, doc, message):
    with pytest.raises(CnnvizError) as err:
        dr.read_drawings(_file(tmp_path, doc))
    text = str(err.value)
    assert message in text, text
    assert text.startswith(str(tmp_path / "drawings.json")) and "\n" not in text


def test_size_limits(tmp_path, monkeypatch):
    path = _file(tmp_path, {"drawings": [{"strokes": [[[1, 1]] * 50]}] * 10})
    monkeypatch.setattr(dr, "MAX_JSON_BYTES", 100)
    with pytest.raises(CnnvizError, match="larger than 0 MB, the limit"):
        dr.read_drawings(path)
    monkeypatch.undo()
    monkeypatch.setattr(dr, "MAX_DRAWINGS", 5)
    with pytest.raises(CnnvizError, match="10 drawings, the limit is 5 per file"):
        dr.read_drawings(path)
    monkeypatch.undo()
    monkeypatch.setattr(dr, "MAX_POINTS", 20)
    with pytest.raises(CnnvizError, match="drawing 1, stroke 1: 50 points, the limit is 20 per stroke"):
        dr.read_drawings(path)
    monkeypatch.undo()
    monkeypatch.setattr(dr, "MAX_TOTAL_POINTS", 120)
    with pytest.raises(CnnvizError, match="more than 120 points in the file"):
        dr.read_drawings(path)
    monkeypatch.undo()
    monkeypatch.setattr(dr, "MAX_STROKES", 2)
    with pytest.raises(CnnvizError, match="drawing 1: 3 strokes, the limit is 2"):
        dr.loads('{"drawings": [{"strokes": [[[1, 1]], [[1, 1]], [[1, 1]]]}]}')
    with pytest.raises(CnnvizError, match="no such file"):
        dr.read_drawings(tmp_path / "missing.json")
    with pytest.raises(CnnvizError, match="is a folder"):
        dr.read_drawings(tmp_path)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:
        fh.truncate(dr.MAX_JSON_BYTES + 10)  # sparse: costs no disk
    with pytest.raises(CnnvizError, match=r"larger than 64 MB"):
        dr.read_drawings(path)


def test_the_real_limits_are_the_histories():
    from cnnviz_desktop.core import history

    assert (dr.MAX_STROKES, dr.MAX_TOTAL_POINTS, dr.MAX_JSON_BYTES) == \
        (history.MAX_STROKES, history.MAX_TOTAL_POINTS, history.MAX_JSON_BYTES)


def _drawing(*strokes):
    return dr.Drawing(tuple(dr.DrawnStroke(s) for s in strokes))


def test_schedule_at_the_original_pace():
    d = _drawing([[1, 1, 10.0, 1], [2, 2, 10.5, 1], [3, 3, 11.0, 1]], [[5, 5, 12.0, 1], [6, 6, 12.25, 0.5]])
    sched = dr.replay_schedule(d)
    kinds = [(e.kind, e.stroke) for _, e in sched]
    assert kinds == [("press", 0), ("move", 0), ("move", 0), ("release", 0), ("press", 1), ("move", 1),
                     ("release", 1)]
    assert [at for at, _ in sched] == pytest.approx([0, 0.5, 1.0, 1.0, 2.0, 2.25, 2.25])
    assert sched.duration_s == pytest.approx(2.25)
    assert (sched[5][1].x, sched[5][1].y, sched[5][1].pressure) == (6, 6, 0.5)


def test_schedule_faster_and_as_fast_as_possible():
    d = _drawing([[1, 1, 0.0, 1], [2, 2, 1.0, 1]], [[5, 5, 1.5, 1]])
    assert [at for at, _ in dr.replay_schedule(d, speed=2)] == pytest.approx([0, 0.5, 0.5, 0.75, 0.75])
    assert [at for at, _ in dr.replay_schedule(d, speed=4)] == pytest.approx([0, 0.25, 0.25, 0.375, 0.375])
    assert all(at == 0 for at, _ in dr.replay_schedule(d, speed=math.inf))
    for bad in (0, -1, math.nan):
        with pytest.raises(CnnvizError, match="positive"):
            dr.replay_schedule(d, speed=bad)


def test_schedule_shortens_long_pauses_and_paces_missing_times():
    d = _drawing([[1, 1, 0.0, 1]], [[2, 2, 60.0, 1], [3, 3, 60.1, 1]])
    assert [at for at, _ in dr.replay_schedule(d)] == pytest.approx([0, 0, 2.0, 2.1, 2.1])
    assert [at for at, _ in dr.replay_schedule(d, max_gap=None)] == pytest.approx([0, 0, 60, 60.1, 60.1])
    untimed = _drawing([[1, 1, np.nan, 1], [2, 2, np.nan, 1]], [[3, 3, np.nan, 1]])
    assert [at for at, _ in dr.replay_schedule(untimed)] == pytest.approx(
        [0, dr.POINT_INTERVAL_S, dr.POINT_INTERVAL_S, dr.POINT_INTERVAL_S + dr.STROKE_GAP_S,
         dr.POINT_INTERVAL_S + dr.STROKE_GAP_S])


def test_erase_strokes_replay_with_the_eraser_and_a_record_without_strokes_cannot_be_replayed():
    from cnnviz_desktop.core.history import DrawingRecord

    d = dr.Drawing.from_strokes([Stroke([[1, 1, 5.0, 1]]), Stroke([[2, 2, 6.0, 1]], erase=True, radius=1.3)])
    sched = dr.replay_schedule(d)
    assert [e.erase for _, e in sched] == [False, False, True, True]
    with pytest.raises(CnnvizError, match="loaded image"):
        dr.drawing_from_record(DrawingRecord(canvas=np.zeros((28, 28), np.float32), id=4))
    with pytest.raises(CnnvizError, match="no strokes"):
        dr.Drawing.from_strokes([])


def test_importing_a_file_into_the_history_is_all_or_nothing(tmp_path):
    from cnnviz_desktop.core.history import History

    drawings = dr.loads('{"drawings": [{"label": 1, "strokes": [[[14, 4], [14, 24]]]}, '
                        '{"label": 7, "strokes": [[[5, 5], [20, 5], [12, 24]]]}]}')
    records = [dr.drawing_to_record(d, source="import:x.json") for d in drawings]
    with History.open(tmp_path / "h.sqlite") as history:
        assert history.save_all(records) == [1, 2]
        assert [history.get(i).label for i in (1, 2)] == [1, 7] and history.get(2).source == "import:x.json"
        # A failure on the second drawing (here a trigger standing in for a full disk) keeps none of them.
        history.conn.execute("CREATE TRIGGER full BEFORE INSERT ON drawings WHEN (SELECT count(*) FROM drawings) "
                             ">= 3 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        with pytest.raises(CnnvizError, match="disk holding .* is full"):
            history.save_all(records)
        assert history.count() == 2


def test_strokes_may_each_count_their_times_from_zero():
    """A file whose strokes each restart at t = 0 (as some exporters write them) is read; the replay keeps the
    strokes in file order and takes no time between them."""
    from cnnviz_desktop.core.drawings import parse_drawings, replay_schedule

    (drawing,) = parse_drawings({"drawings": [{"strokes": [[[1, 1, 0], [2, 2, 0.5]], [[3, 3, 0], [4, 4, 0.2]]]}]})
    schedule = replay_schedule(drawing)
    delays = [d for d, _ in schedule]
    assert delays == sorted(delays)
    assert [e.stroke for _, e in schedule if e.kind == "press"] == [0, 1]
    assert schedule.duration_s == pytest.approx(0.7)
