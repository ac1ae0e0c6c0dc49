"""The saved-drawings database (core/history.py) with real database files: records, paging, filters,
undoable delete, labels, confusion, import/export, re-run, migrations, and the durability list."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cnnviz_desktop.core import history as hist
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.history import DrawingRecord, Filter, History
from cnnviz_desktop.core.strokes import Stroke

ROOT = Path(__file__).resolve().parents[2]


def make_record(seed: int = 0, *, predicted: int | None = 3, label: int | None = None, reason=None, note="",
                model="tiny", strokes=True) -> DrawingRecord:
    rng = np.random.default_rng(seed)
    canvas = rng.random((28, 28), dtype=np.float32) * np.float32(0.4)  # mostly dark, like a drawing
    probs = None
    if predicted is not None:
        probs = np.full(10, 0.01, np.float32)
        probs[predicted] = 0.91
    pts = np.column_stack([rng.uniform(0, 28, 5), rng.uniform(0, 28, 5), np.arange(5) * 0.02 + 100.0,
                           rng.uniform(0, 1, 5)]).astype(np.float32)
    return DrawingRecord(canvas=canvas,
                         strokes=(Stroke(pts), Stroke(pts[:2], erase=True, radius=2.5)) if strokes else None,
                         model=model, weights_sha256="ab" * 32, predicted=predicted, probabilities=probs,
                         cam=None if predicted is None else rng.standard_normal((28, 28)).astype(np.float32),
                         label=label, reason=reason, note=note)


@pytest.fixture
def db(tmp_path):
    h = History.open(tmp_path / "history.sqlite")
    yield h
    h.close()


def test_default_path_is_in_the_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "ud"))
    with History.open() as h:
        assert h.path == (tmp_path / "ud" / "history.sqlite").resolve()
        assert h.path.is_file() and h.notice == ""


def test_save_and_get_round_trip_every_field(db):
    rec = make_record(1, label=5, reason="looks like a 5", note="Anna, lesson 3")
    rid = db.save(rec)
    got = db.get(rid)
    assert got.id == rid
    np.testing.assert_array_equal(got.canvas, rec.canvas)
    np.testing.assert_array_equal(got.probabilities, rec.probabilities)
    np.testing.assert_array_equal(got.cam, rec.cam)
    assert got.canvas.dtype == np.float32 and got.canvas.shape == (28, 28)
    assert len(got.strokes) == 2
    np.testing.assert_allclose(got.strokes[0].points, rec.strokes[0].points, atol=1e-4)
    assert got.strokes[1].erase and got.strokes[1].radius == 2.5 and not got.strokes[0].erase
    assert (got.created, got.model, got.weights_sha256) == (rec.created, "tiny", "ab" * 32)
    assert (got.predicted, got.label, got.reason, got.note) == (3, 5, "looks like a 5", "Anna, lesson 3")
    assert got.reported and got.misclassified
    assert got.created.endswith("+00:00")
    with db.conn:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == hist.SCHEMA_VERSION


def test_a_loaded_image_without_strokes_or_prediction_round_trips(db):
    rid = db.save(make_record(2, predicted=None, strokes=False))
    got = db.get(rid)
    assert got.strokes is None and got.predicted is None and got.probabilities is None and got.cam is None


@pytest.mark.parametrize("kwargs,fragment", [
    ({"label": 10}, "true label"), ({"label": True}, "true label"), ({"predicted": -1}, "predicted"),
    ({"canvas": np.zeros((3, 3, 3))}, "2-D"), ({"canvas": np.full((28, 28), np.nan)}, "NaN"),
    ({"probabilities": np.zeros(9)}, "probabilities"), ({"cam": np.zeros((5, 5))}, "Grad-CAM"),
    ({"note": 5}, "note"),
])
def test_bad_records_are_refused_clearly(kwargs, fragment):
    base = {"canvas": np.zeros((28, 28), np.float32)}
    base.update(kwargs)
    with pytest.raises(CnnvizError, match=fragment):
        DrawingRecord(**base)


def test_query_pages_filters_search_and_count(db):
    for i in range(30):
        db.save(make_record(i, predicted=i % 10, label=(i % 10 if i % 3 else (i + 1) % 10) if i < 20 else None,
                            reason="wrong" if i % 3 == 0 and i < 20 else None,
                            note=f"pupil {i}" + (" 100%_sure" if i == 7 else ""), model="tiny" if i % 2 else "wide"))
    assert db.count() == 30
    ids = [r.id for r in db.query(limit=10)] + [r.id for r in db.query(limit=10, offset=10)] + \
        [r.id for r in db.query(limit=10, offset=20)]
    assert ids == list(range(30, 0, -1))  # newest first, no overlap across pages
    assert [r.id for r in db.query(order="oldest", limit=3)] == [1, 2, 3]
    assert db.count("reported") == 7 and all(r.reported for r in db.query("reported", limit=100))
    mis = db.query("misclassified", limit=100)
    assert len(mis) == db.count("misclassified") == 7 and all(r.label != r.predicted for r in mis)
    assert db.count(Filter(model="wide")) == 15
    assert {r.model for r in db.query(Filter(model="wide"), limit=100)} == {"wide"}
    digit4 = db.query(Filter(digit=4), limit=100)
    assert digit4 and all((r.label if r.label is not None else r.predicted) == 4 for r in digit4)
    assert db.count(Filter("reported", model="tiny")) == len([r for r in db.query("reported", limit=100)
                                                               if r.model == "tiny"])
    assert [r.id for r in db.query(search="pupil 1", order="id")] == [2] + list(range(11, 21))
    assert db.count(search="100%_sure") == 1 and db.count(search="%") == 1 and db.count(search="_") == 1
    assert db.models() == ["tiny", "wide"]
    with pytest.raises(CnnvizError, match="unknown filter"):
        db.count("bogus")
    with pytest.raises(CnnvizError, match="unknown order"):
        db.query(order="id; DROP TABLE drawings")


def test_delete_is_undoable(db):
    ids = [db.save(make_record(i)) for i in range(5)]
    token = db.delete(ids[1:3])
    assert db.count() == 3
    with pytest.raises(CnnvizError, match="no saved drawing"):
        db.get(ids[1])
    assert db.undelete(token) == 2
    assert db.count() == 5 and db.get(ids[1]).id == ids[1]
    assert db.undelete(token) == 0
    token = db.delete([ids[0]])
    assert db.purge_deleted() == 1
    assert db.undelete(token) == 0 and db.count() == 4


def test_update_label_and_confusion(db):
    a = db.save(make_record(0, predicted=3))
    b = db.save(make_record(1, predicted=3))
    c = db.save(make_record(2, predicted=8, model="wide"))
    db.save(make_record(3, predicted=1))  # no label: not in the matrix
    db.update_label(a, 3)
    db.update_label(b, 5, "looks like a 5", note="tricky")
    db.update_label(c, 5, "wrong")
    assert db.get(b).note == "tricky" and db.get(b).reason == "looks like a 5"
    db.update_label(a, 3, None)  # note None keeps the note
    matrix, accuracy = db.confusion()
    assert matrix.sum() == 3 and matrix[3, 3] == 1 and matrix[5, 3] == 1 and matrix[5, 8] == 1
    assert accuracy[3] == 1.0 and accuracy[5] == 0.0 and np.isnan(accuracy[0])
    matrix, _ = db.confusion(model="wide")
    assert matrix.sum() == 1 and matrix[5, 8] == 1
    with pytest.raises(CnnvizError, match="no saved drawing with id 999"):
        db.update_label(999, 1)
    with pytest.raises(CnnvizError, match="true label"):
        db.update_label(a, 12)


# -- migrations and foreign files ----------------------------------------------------------------------


def test_a_version_1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "history.sqlite"
    conn = sqlite3.connect(path)
    for statement in hist.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    canvas = np.ones((28, 28), "<f4").tobytes()
    conn.execute("INSERT INTO drawings (created, rows, cols, model, predicted, label, note) "
                 "VALUES ('2026-01-01T00:00:00+00:00', 28, 28, 'tiny', 4, 4, 'old')")
    conn.execute("INSERT INTO drawing_data (id, canvas) VALUES (1, ?)", (canvas,))
    assert "source" not in {row[1] for row in conn.execute("PRAGMA table_info(drawings)")}
    conn.commit()
    conn.close()
    with History.open(path) as h:
        assert h.notice == ""
        assert h.conn.execute("PRAGMA user_version").fetchone()[0] == hist.SCHEMA_VERSION
        old = h.get(1)
        assert (old.note, old.label, old.source, old.model) == ("old", 4, "app", "tiny")
        assert old.canvas.sum() == 28 * 28
        assert h.save(make_record(5)) == 2


def test_a_newer_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "history.sqlite"
    with History.open(path) as h:
        h.save(make_record(0))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {hist.SCHEMA_VERSION + 1}")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CnnvizError, match="newer CNNViz.*not changed"):
        History.open(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    conn.execute("INSERT INTO moz_places (url) VALUES ('https://example.org')")
    conn.commit()
    conn.close()


def _truncated(path: Path) -> None:
    with History.open(path) as h:
        for i in range(40):
            h.save(make_record(i))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])


def _scribbled(path: Path) -> None:
    with History.open(path) as h:
        for i in range(40):
            h.save(make_record(i))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8192] = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make,why", [
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)), "not an SQLite database"),
    (lambda p: p.write_text("my shopping list\n" * 20), "not an SQLite database"),
    (_foreign_sqlite, "another program's database"),
    (_truncated, "truncated or damaged"),
    (_scribbled, "damaged"),
])
def test_a_bad_file_is_moved_aside_and_a_fresh_database_started(tmp_path, make, why):
    path = tmp_path / "history.sqlite"
    make(path)
    before = path.read_bytes()
    with History.open(path) as h:
        assert why in h.notice
        aside = [p for p in tmp_path.iterdir() if p.name.startswith("history.sqlite.corrupt-")
                 and not p.name.endswith(("-wal", "-shm"))]
        assert len(aside) == 1 and str(aside[0]) in h.notice
        assert aside[0].read_bytes() == before  # renamed, never deleted or changed
        assert h.count() == 0
        rid = h.save(make_record(1))
        assert h.get(rid).id == rid
    with History.open(path) as again:
        assert again.notice == "" and again.count() == 1 and again.check() == []


def test_a_folder_that_cannot_be_created_fails_clearly_and_creates_nothing(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(CnnvizError, match="cannot create the folder.*CNNVIZ_USER_DATA"):
        History.open(blocker / "sub" / "history.sqlite")
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_a_path_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(CnnvizError, match="is a folder"):
        History.open(tmp_path)


def test_a_full_disk_fails_the_save_clearly_and_changes_nothing(db):
    for i in range(3):
        db.save(make_record(i))
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute(f"PRAGMA max_page_count = {pages}")  # this connection may not grow the file: 'disk full'
    big = DrawingRecord(canvas=np.ones((400, 400), np.float32), note="too big")
    with pytest.raises(CnnvizError, match="full"):
        db.save(big)
    assert db.count() == 3 and db.count(search="too big") == 0
    assert db.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_busy_database_fails_the_save_clearly_and_changes_nothing(tmp_path):
    path = tmp_path / "history.sqlite"
    with History.open(path) as h:
        h.save(make_record(0))
        h.conn.execute("PRAGMA busy_timeout = 50")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(CnnvizError, match="busy"):
                h.save(make_record(1))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert h.count() == 1
        h.save(make_record(2))
        assert h.count() == 2


# -- durability across processes -------------------------------------------------------------------------

SAVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, {root!r})
    from cnnviz_desktop.core.history import DrawingRecord, History
    from cnnviz_desktop.core.strokes import Stroke
    path, tag, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    while start != "-" and not Path(start).exists():
        time.sleep(0.01)
    with History.open(path) as h:
        for i in range(n):
            pts = np.column_stack([np.linspace(2, 26, 200), np.linspace(2, 26, 200), np.arange(200) * 0.01,
                                   np.ones(200)])
            rid = h.save(DrawingRecord(canvas=np.full((28, 28), (i % 100) / 100, np.float32),
                                       strokes=(Stroke(pts),), note=f"{{tag}}-{{i}}",
                                       probabilities=np.full(10, 0.1, np.float32), predicted=i % 10,
                                       cam=np.ones((28, 28), np.float32)))
            print(rid, flush=True)
""")


def _saver(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "saver.py"
    if not script.exists():
        script.write_text(SAVER.format(root=str(ROOT)))
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def test_sigkill_in_a_stream_of_saves_loses_at_most_the_drawing_in_flight(tmp_path):
    path = tmp_path / "history.sqlite"
    proc = _saver(tmp_path, str(path), "k", "100000", "-")
    confirmed = []
    for line in proc.stdout:
        confirmed.append(int(line))
        if len(confirmed) >= 60:
            break
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    confirmed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    with History.open(path) as h:
        assert h.notice == ""
        assert h.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = h.count()
        assert len(confirmed) <= n <= len(confirmed) + 1  # every confirmed save is there, at most one more
        for rid in confirmed:
            rec = h.get(rid)
            assert rec.note == f"k-{rid - 1}" and len(rec.strokes[0]) == 200
        assert h.save(make_record(0)) > max(confirmed)


def test_two_processes_saving_at_once_lose_nothing(tmp_path):
    path = tmp_path / "history.sqlite"
    start = tmp_path / "go"
    procs = [_saver(tmp_path, str(path), tag, "300", str(start)) for tag in ("a", "b")]
    start.write_text("go")
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    ids = [int(x) for out, _ in outs for x in out.split()]
    assert len(ids) == len(set(ids)) == 600
    with History.open(path) as h:
        assert h.count() == 600
        assert h.count(search="a-") == 300 and h.count(search="b-") == 300


# -- drawings files, PNG folders, export ------------------------------------------------------------------


def _json_file(tmp_path: Path, doc) -> Path:
    path = tmp_path / "drawings.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_import_a_drawings_file_paints_through_the_canvas(tmp_path):
    doc = {"drawings": [
        {"label": 1, "strokes": [[[14, 4, 0.0, 0.8], [14, 24, 0.5, 1.0]]]},
        {"label": None, "strokes": [[[5, 5], [20, 5], [12, 24]], [[8, 14], [18, 14]]]},
        {"strokes": [[[3, 3, 0.1]]], "note": "a dot"},
    ]}
    records = hist.import_json(_json_file(tmp_path, doc))
    assert [r.label for r in records] == [1, None, None]
    assert records[2].note == "a dot"
    one = records[0]
    assert one.canvas.shape == (28, 28) and one.canvas[14, 14] > 0.9 and one.canvas[14, 3] == 0
    np.testing.assert_allclose(one.strokes[0].points, [[14, 4, 0, 0.8], [14, 24, 0.5, 1.0]])
    assert len(records[1].strokes) == 2
    t = records[1].strokes[0].t
    assert np.all(np.diff(t) > 0)  # missing times are filled in order


@pytest.mark.parametrize("doc,fragment", [
    ("not json", "not a drawings file: not JSON"),
    ([1, 2], '{"drawings": [...]}'),
    ({"drawings": [{"strokes": []}]}, "drawing 1: 'strokes' is []"),
    ({"drawings": [{"label": 3, "strokes": [[[1, 1]]]}, {"label": "7", "strokes": [[[1, 1]]]}]},
     'drawing 2: label is "7", must be a digit 0-9 or null'),
    ({"drawings": [{"label": 10, "strokes": [[[1, 1]]]}]}, "drawing 1: label is 10"),
    ({"drawings": [{"strokes": [[[1, 1]], [[1, 29]]]}]}, "drawing 1, stroke 2, point 1: y is 29, must be 0-28"),
    ({"drawings": [{"strokes": [[[1, 1, -1]]]}]}, "point 1: t is -1, must be"),
    ({"drawings": [{"strokes": [[[1, 1, 0, 2]]]}]}, "pressure is 2, must be 0-1"),
    ({"drawings": [{"strokes": [[[1, 1, 0, 1, 5]]]}]}, "point 1 is [1, 1, 0, 1, 5], must be"),
    ({"drawings": [{"strokes": [[[1, None]]]}]}, "y is null, must be a number"),
    ({"drawings": [{"strokes": [[[1, True]]]}]}, "y is true, must be a number"),
    ('{"drawings": [{"strokes": [[[1, NaN]]]}]}', "y is NaN, must be a finite number"),
    ({"drawings": [{"strokes": [{"points": [[1, 1]], "erase": "yes"}]}]}, "'erase'"),
    ({"drawings": [{"strokes": [{"points": [[1, 1]], "radius": 99}]}]}, "'radius'"),
    ({"drawings": ["x"]}, "drawing 1 is \"x\", must be an object"),
    ('[' * 100000 + ']' * 100000, "not a drawings file: not readable JSON"),
])
def test_malformed_drawings_files_are_refused_naming_drawing_and_field(tmp_path, doc, fragment):
    with pytest.raises(CnnvizError) as err:
        hist.import_json(_json_file(tmp_path, doc))
    assert fragment in str(err.value)


def test_huge_drawings_files_are_bounded(tmp_path, monkeypatch):
    from cnnviz_desktop.core import drawings

    path = _json_file(tmp_path, {"drawings": [{"strokes": [[[1, 1]] * 50]}] * 10})
    monkeypatch.setattr(drawings, "MAX_JSON_BYTES", 100)
    with pytest.raises(CnnvizError, match="larger than"):
        hist.import_json(path)
    monkeypatch.setattr(drawings, "MAX_JSON_BYTES", 1 << 20)
    monkeypatch.setattr(drawings, "MAX_DRAWINGS", 5)
    with pytest.raises(CnnvizError, match="10 drawings, the limit is 5"):
        hist.import_json(path)
    with pytest.raises(CnnvizError, match="no such file"):
        hist.import_json(tmp_path / "missing.json")


def test_export_then_import_round_trips(tmp_path, db):
    for i in range(3):
        db.save(make_record(i, label=i, note="=cmd()" if i == 0 else f"n{i}"))
    db.save(make_record(9, strokes=False))  # a loaded image: PNG and CSV only
    out = tmp_path / "out"
    assert hist.export_folder(db.query(order="id"), out) == 4
    import csv

    rows = list(csv.DictReader((out / "drawings.csv").open()))
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4]
    assert rows[0]["note"] == "'=cmd()" and rows[1]["label"] == "1" and float(rows[1]["p3"]) == pytest.approx(0.91)
    assert all((out / r["png"]).is_file() for r in rows)
    back = hist.import_json(out / "drawings.json")
    assert len(back) == 3 and [r.label for r in back] == [0, 1, 2]
    orig = db.get(2)
    assert back[1].strokes[1].erase and back[1].strokes[1].radius == 2.5
    np.testing.assert_allclose(back[1].strokes[0].points[:, :2], orig.strokes[0].points[:, :2], atol=1e-3)
    np.testing.assert_allclose(np.diff(back[1].strokes[0].t), np.diff(orig.strokes[0].t), atol=1e-3)
    pngs = hist.import_pngs(out)
    assert [r.label for r in pngs] == [0, 1, 2, None]
    np.testing.assert_allclose(pngs[3].canvas, db.get(4).canvas, atol=1 / 255 + 1e-6)
    with pytest.raises(CnnvizError, match="no .png files"):
        hist.import_pngs(tmp_path / "out" / ".." / "..")  # tmp_path's parent: folders only
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("not a png")
    with pytest.raises(CnnvizError, match="x.png"):
        hist.import_pngs(tmp_path / "bad")


# -- analysis ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from cnnviz_desktop.core import weights

    return weights.load("tiny")


def test_rerun_reports_before_and_after_with_progress_and_cancel(tmp_path, db, tiny):
    from cnnviz_desktop.core.analysis import Analyzer

    drawn = hist.import_json(_json_file(tmp_path, {"drawings": [
        {"label": 1, "strokes": [[[14, 4], [14, 24]]]},
        {"label": 7, "strokes": [[[5, 5], [20, 5], [12, 24]]]},
        {"label": 0, "strokes": [[[14, 4], [22, 14], [14, 24], [6, 14], [14, 4]]]}]}))
    analyzer = Analyzer(tiny)
    saved = [hist.analyse_record(analyzer, r, tiny) for r in drawn]
    assert saved[0].weights_sha256 and saved[0].model == "tiny" and saved[0].cam.shape == (28, 28)
    # Pretend the first was read wrongly by an older model.
    ids = [db.save(r) for r in saved[:1]]
    ids.append(db.save(hist.DrawingRecord(canvas=saved[1].canvas, strokes=saved[1].strokes, model="old",
                                          predicted=2, probabilities=np.eye(10, dtype=np.float32)[2])))
    ids.append(db.save(saved[2]))
    seen = []
    results = hist.rerun(db, tiny, progress=lambda done, total: seen.append((done, total)))
    assert [r[0] for r in results] == ids and seen == [(1, 3), (2, 3), (3, 3)]
    rid, before, after = results[1]
    assert (before.model, before.predicted) == ("old", 2)
    assert (after.model, after.predicted) == ("tiny", saved[1].predicted)
    assert results[0][1] == results[0][2]  # same model, same canvas: same answer
    stopped = hist.rerun(db, analyzer, ids=ids[1:], cancel=lambda: len(seen) >= 4,
                         progress=lambda d, t: seen.append(d))
    assert [r[0] for r in stopped] == [ids[1]]
    assert db.get(ids[1]).predicted == 2  # rerun does not change the database


def test_record_from_snapshot(tiny):
    from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer
    from cnnviz_desktop.core.canvas import CanvasModel

    canvas = CanvasModel()
    canvas.begin_stroke(14, 4)
    canvas.extend_stroke(14, 24)
    canvas.end_stroke()
    snap = Analyzer(tiny).analyse(AnalysisRequest(1, canvas.pixels.copy(), strokes=canvas.strokes))
    rec = hist.record_from_snapshot(canvas.pixels, canvas.strokes, snap, tiny, label=1, note="live")
    assert rec.predicted == snap.predicted and rec.model == "tiny" and len(rec.weights_sha256) == 64
    np.testing.assert_array_equal(rec.cam, snap.canvas_cam)
    empty = Analyzer(tiny).analyse(AnalysisRequest(2, np.zeros((28, 28), np.float32)))
    assert hist.record_from_snapshot(np.zeros((28, 28), np.float32), (), empty).predicted is None


def test_strokes_with_broken_points_are_refused():
    bad = Stroke(np.array([[1, 1, 0, 1], [np.nan, 2, 0.1, 1]], np.float32))
    with pytest.raises(CnnvizError, match="NaN"):
        DrawingRecord(canvas=np.zeros((28, 28), np.float32), strokes=(bad,))


def test_an_undo_token_survives_closing_and_reopening(tmp_path):
    path = tmp_path / "history.sqlite"
    with History.open(path) as h:
        ids = [h.save(make_record(i)) for i in range(3)]
        token = h.delete(ids[:2])
    with History.open(path) as h:
        assert h.count() == 1
        assert h.undelete(token) == 2 and h.count() == 3


def test_a_failing_migration_is_rolled_back_to_the_old_schema(tmp_path, monkeypatch):
    path = tmp_path / "history.sqlite"
    conn = sqlite3.connect(path)
    for statement in hist.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    broken = (hist.MIGRATIONS[0], hist.MIGRATIONS[1] + ("ALTER TABLE no_such_table ADD COLUMN x",))
    monkeypatch.setattr(hist, "MIGRATIONS", broken)
    with pytest.raises(CnnvizError, match="prepare the history"):
        History.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "source" not in {row[1] for row in conn.execute("PRAGMA table_info(drawings)")}
    conn.close()
    monkeypatch.undo()
    with History.open(path) as h:
        assert h.conn.execute("PRAGMA user_version").fetchone()[0] == hist.SCHEMA_VERSION


def test_rerun_in_a_background_thread_with_its_own_connection_and_cancel(tmp_path, tiny):
    import threading

    path = tmp_path / "history.sqlite"
    with History.open(path) as h:
        for i in range(20):
            h.save(make_record(i))
    stop = threading.Event()
    seen, out = [], {}

    def progress(done, total):
        seen.append(done)
        if done == 5:
            stop.set()

    def work():
        with History.open(path) as mine:
            out["results"] = hist.rerun(mine, tiny, progress=progress, cancel=stop.is_set)

    thread = threading.Thread(target=work)
    thread.start()
    with History.open(path) as h:  # the GUI thread keeps saving meanwhile
        h.save(make_record(99))
    thread.join(120)
    assert not thread.is_alive()
    assert len(out["results"]) == 5 and seen == [1, 2, 3, 4, 5]
    assert all(after.model == "tiny" and after.predicted is not None for _, _, after in out["results"])
