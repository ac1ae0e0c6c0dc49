"""The saved-drawings database: one SQLite file (standard library sqlite3), Qt-free.

Where: ``core.userdata.user_data_dir() / "history.sqlite"`` unless a path is given. Back it up by copying
the file while no CNNViz is running (or with ``sqlite3 history.sqlite ".backup copy.sqlite"`` at any time);
with the app running, the newest saves may still sit in ``history.sqlite-wal`` next to it.

Each saved drawing (a row of table ``drawings``) keeps:
- ``canvas``: the raw canvas, (H, W) float32 in [0, 1] (light ink on dark), little-endian bytes + rows/cols;
- ``strokes``: the drawing as vectors, JSON ``[{"points": [[x, y, t, pressure], ...], "erase": bool,
  "radius": float}, ...]`` (x, y in cell units, t in seconds, pressure in [0, 1]) or NULL for a loaded image;
- ``created``: UTC ISO time; ``model`` and ``weights_sha256``: the network that read it;
- ``predicted``, ``probabilities`` (10 float32), ``confidence`` (the largest probability), ``cam``: the Grad-CAM
  map on the canvas grid ((H, W) float32, Snapshot.canvas_cam);
- ``label`` (the true digit 0-9 or NULL), ``reason`` (a misclassification report's reason, NULL when not
  reported), ``note`` (free text), ``source`` (where it came from: 'app', 'import:<file>').

Durability: WAL journal, a 5 s busy timeout and one short ``BEGIN IMMEDIATE`` transaction per change, so a
crash (even SIGKILL) loses at most the change in flight and two app instances can save at the same time. The
schema version lives in ``PRAGMA user_version`` and is upgraded by MIGRATIONS, in order, from version 1 on.
A file at the path that is not our database (corrupt, truncated, another app's) is renamed aside to
``<name>.corrupt-YYYYmmdd-HHMMSS`` (never deleted) and a fresh database is started; ``History.notice`` says
where the old one went. A database from a newer CNNViz (user_version above SCHEMA_VERSION) is refused and not
touched.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import struct
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CnnvizError
from .strokes import Stroke

FILENAME = "history.sqlite"
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 5.0
NUM_CLASSES = 10
MAX_SIDE = 2048  # the largest canvas side stored (the app's canvas is 28x28)
MAX_NOTE = 10_000  # characters in a note or a reason
# Bounds for drawings files (import): far above any real class's drawings, low enough to stay in memory.
MAX_JSON_BYTES = 64 << 20
MAX_DRAWINGS = 10_000
MAX_STROKES = 1_000
MAX_POINTS = 100_000  # per stroke
MAX_TOTAL_POINTS = 5_000_000
MAX_IMPORT_PNGS = 10_000
GRID = 28
SQLITE_MAGIC = b"SQLite format 3\x00"
FULL_CHECK_BYTES = 32 << 20  # History.open runs a full quick_check on files up to this size

FILTERS = ("all", "reported", "misclassified", "labelled")
ORDERS = {
    "newest": "created DESC, id DESC",
    "oldest": "created ASC, id ASC",
    "confidence": "confidence DESC, id DESC",
    "-confidence": "confidence ASC, id ASC",
    "predicted": "predicted ASC, id DESC",
    "label": "label ASC, id DESC",
    "model": "model ASC, id DESC",
    "id": "id ASC",
}

# Each entry upgrades the schema from version i to i + 1 (index 0: an empty file -> version 1).
# The small columns (what filters, sorts and counts read) live in ``drawings``; the large ones (canvas,
# strokes, Grad-CAM: several KB, spilling into overflow pages) in ``drawing_data``, so that a count or a
# filtered page over 10,000 rows never reads the pictures of rows it skips.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE drawings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            weights_sha256 TEXT NOT NULL DEFAULT '',
            predicted INTEGER,
            confidence REAL,
            label INTEGER,
            reason TEXT,
            note TEXT NOT NULL DEFAULT '',
            deleted TEXT,
            rows INTEGER NOT NULL,
            cols INTEGER NOT NULL,
            probabilities BLOB
        )""",
        """CREATE TABLE drawing_data (
            id INTEGER PRIMARY KEY REFERENCES drawings (id) ON DELETE CASCADE,
            canvas BLOB NOT NULL,
            cam BLOB,
            strokes TEXT
        )""",
        "CREATE INDEX drawings_live_created ON drawings (deleted, created)",
        "CREATE INDEX drawings_live_model ON drawings (deleted, model)",
    ),
    (
        # Where a drawing came from ('app', 'import:<file name>').
        "ALTER TABLE drawings ADD COLUMN source TEXT NOT NULL DEFAULT 'app'",
        "CREATE INDEX drawings_live_confidence ON drawings (deleted, confidence)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_META = ("m.id, m.created, m.rows, m.cols, m.model, m.weights_sha256, m.predicted, m.probabilities, m.label, "
         "m.reason, m.note, m.source")
_SELECT = f"SELECT {_META}, d.canvas, d.cam, d.strokes FROM drawings m JOIN drawing_data d ON d.id = m.id"


# ---------------------------------------------------------------------------------------------------------
# Records


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds ('2026-12-01T11:30:00.123456+00:00')."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _check_digit(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < NUM_CLASSES:
        raise CnnvizError(f"{what} must be a digit 0-9 or None, got {value!r}")
    return int(value)


def _check_text(value: Any, what: str, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise CnnvizError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > MAX_NOTE:
        raise CnnvizError(f"{what} is {len(value)} characters long; the limit is {MAX_NOTE}")
    return value


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.flags.writeable:
        array = array.copy()
        array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class DrawingRecord:
    """One saved drawing (see the module docstring for the meaning of each field).

    canvas: (H, W) float32 in [0, 1]; strokes: tuple of core.strokes.Stroke or None; probabilities: (10,)
    float32 or None; cam: (H, W) float32 or None; predicted, label: 0-9 or None; id: None until saved.
    Arrays are read-only copies. Construction validates every field (CnnvizError).
    """

    canvas: np.ndarray
    strokes: tuple[Stroke, ...] | None = None
    created: str = field(default_factory=utc_now)
    model: str = ""
    weights_sha256: str = ""
    predicted: int | None = None
    probabilities: np.ndarray | None = None
    cam: np.ndarray | None = None
    label: int | None = None
    reason: str | None = None
    note: str = ""
    source: str = "app"
    id: int | None = None

    def __post_init__(self) -> None:
        canvas = np.asarray(self.canvas)
        if canvas.ndim != 2 or not (1 <= canvas.shape[0] <= MAX_SIDE and 1 <= canvas.shape[1] <= MAX_SIDE):
            raise CnnvizError(f"a drawing's canvas must be a 2-D grid of at most {MAX_SIDE}x{MAX_SIDE} cells, "
                              f"got shape {canvas.shape}")
        canvas = _frozen(canvas)
        if not np.isfinite(canvas).all():
            raise CnnvizError("a drawing's canvas holds NaN or infinite values")
        object.__setattr__(self, "canvas", canvas)
        if self.strokes is not None:
            strokes = tuple(self.strokes)
            if not all(isinstance(s, Stroke) for s in strokes):
                raise CnnvizError("strokes must be core.strokes.Stroke objects")
            if len(strokes) > MAX_STROKES or sum(len(s) for s in strokes) > MAX_TOTAL_POINTS:
                raise CnnvizError(f"a drawing may have at most {MAX_STROKES} strokes and {MAX_TOTAL_POINTS} points")
            if not all(np.isfinite(s.points).all() for s in strokes):
                raise CnnvizError("a drawing's strokes hold NaN or infinite coordinates")
            object.__setattr__(self, "strokes", strokes)
        if self.probabilities is not None:
            probs = _frozen(np.asarray(self.probabilities).reshape(-1))
            if probs.shape != (NUM_CLASSES,) or not np.isfinite(probs).all():
                raise CnnvizError(f"probabilities must be {NUM_CLASSES} finite numbers, got shape {probs.shape}")
            object.__setattr__(self, "probabilities", probs)
        if self.cam is not None:
            cam = _frozen(np.asarray(self.cam))
            if cam.shape != canvas.shape or not np.isfinite(cam).all():
                raise CnnvizError(f"the Grad-CAM map must be finite with the canvas's shape {canvas.shape}, "
                                  f"got {cam.shape}")
            object.__setattr__(self, "cam", cam)
        object.__setattr__(self, "predicted", _check_digit(self.predicted, "predicted"))
        object.__setattr__(self, "label", _check_digit(self.label, "the true label"))
        object.__setattr__(self, "reason", _check_text(self.reason, "the report reason", True))
        object.__setattr__(self, "note", _check_text(self.note, "the note", False))
        for name in ("created", "model", "weights_sha256", "source"):
            _check_text(getattr(self, name), name, False)

    @property
    def confidence(self) -> float | None:
        """The largest probability (the predicted digit's), or None."""
        return None if self.probabilities is None else float(self.probabilities.max())

    @property
    def reported(self) -> bool:
        """True when the drawing was reported as misclassified (it has a reason)."""
        return self.reason is not None

    @property
    def misclassified(self) -> bool:
        """True when a true label is known and differs from the prediction."""
        return self.label is not None and self.predicted is not None and self.label != self.predicted


@dataclass(frozen=True)
class Outcome:
    """A prediction: model name, predicted digit (None: nothing drawn) and its probability."""

    model: str
    predicted: int | None
    confidence: float | None


def record_from_snapshot(canvas: np.ndarray, strokes, snapshot, loaded_model=None, *, label: int | None = None,
                         reason: str | None = None, note: str = "", source: str = "app") -> DrawingRecord:
    """A DrawingRecord from the live drawing and its analysis Snapshot (core.analysis).

    canvas: (H, W) float32; strokes: CanvasModel.strokes (or None); loaded_model: the weights.LoadedModel
    that made the snapshot (its file's sha256 is stored), or None.
    """
    empty = bool(getattr(snapshot, "empty", True))
    return DrawingRecord(
        canvas=canvas, strokes=strokes,
        model=(loaded_model.name if loaded_model is not None else getattr(snapshot, "model_name", "")) or "",
        weights_sha256=_sha256_of_model(loaded_model),
        predicted=None if empty else snapshot.predicted,
        probabilities=None if empty else snapshot.probabilities,
        cam=None if empty else snapshot.canvas_cam,
        label=label, reason=reason, note=note, source=source)


_SHA_CACHE: dict[tuple[str, float, int], str] = {}


def _sha256_of_model(loaded_model) -> str:
    path = getattr(loaded_model, "path", None)
    if path is None:
        return ""
    from .weights import sha256_of

    try:
        stat = os.stat(path)
        key = (os.fspath(path), stat.st_mtime, stat.st_size)
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = sha256_of(Path(path))
        return _SHA_CACHE[key]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------------
# Encoding


def _array_bytes(array: np.ndarray | None) -> bytes | None:
    return None if array is None else np.ascontiguousarray(array, dtype="<f4").tobytes()


def _array_from(blob: bytes | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if blob is None:
        return None
    array = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)
    array.setflags(write=False)
    return array


def strokes_to_json(strokes: Sequence[Stroke] | None) -> str | None:
    """Strokes as the stored JSON text (see the module docstring), or None."""
    if strokes is None:
        return None
    return json.dumps([{"points": np.round(s.points.astype(np.float64), 5).tolist(), "erase": s.erase,
                        "radius": round(float(s.radius), 5)} for s in strokes], separators=(",", ":"))


def strokes_from_json(text: str | None) -> tuple[Stroke, ...] | None:
    """The inverse of strokes_to_json."""
    if text is None:
        return None
    return tuple(Stroke(np.asarray(s["points"], dtype=np.float32).reshape(-1, 4), erase=bool(s["erase"]),
                        radius=float(s["radius"])) for s in json.loads(text))


def _row_to_record(row: sqlite3.Row | tuple) -> DrawingRecord:
    (rid, created, rows, cols, model, sha, predicted, probs, label, reason, note, source, canvas, cam,
     strokes) = row
    return DrawingRecord(canvas=_array_from(canvas, (rows, cols)), strokes=strokes_from_json(strokes),
                         created=created, model=model, weights_sha256=sha, predicted=predicted,
                         probabilities=_array_from(probs, (NUM_CLASSES,)), cam=_array_from(cam, (rows, cols)),
                         label=label, reason=reason, note=note, source=source, id=rid)


# ---------------------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class Filter:
    """Which drawings a query sees.

    kind: 'all', 'reported' (has a report reason), 'misclassified' (true label known and not the
    prediction) or 'labelled' (a true label is known); digit: only drawings OF this digit (the true label
    when known, else the prediction);
    model: only drawings read by this model name.
    """

    kind: str = "all"
    digit: int | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FILTERS:
            raise CnnvizError(f"unknown filter {self.kind!r}: choose one of {', '.join(FILTERS)}")
        _check_digit(self.digit, "the digit filter")


def _where(flt: Filter | str | None, search: str | None) -> tuple[str, list]:
    if flt is None:
        flt = Filter()
    elif isinstance(flt, str):
        flt = Filter(kind=flt)
    clauses, params = ["deleted IS NULL"], []
    if flt.kind == "reported":
        clauses.append("reason IS NOT NULL")
    elif flt.kind == "misclassified":
        clauses.append("label IS NOT NULL AND predicted IS NOT NULL AND label != predicted")
    elif flt.kind == "labelled":
        clauses.append("label IS NOT NULL")
    if flt.digit is not None:
        clauses.append("COALESCE(label, predicted) = ?")
        params.append(int(flt.digit))
    if flt.model is not None:
        clauses.append("model = ?")
        params.append(flt.model)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("(note LIKE ? ESCAPE '\\' OR COALESCE(reason, '') LIKE ? ESCAPE '\\')")
        params += [f"%{escaped}%"] * 2
    return " AND ".join(clauses), params


# ---------------------------------------------------------------------------------------------------------
# Opening, checking, moving a bad file aside


def default_path() -> Path:
    """``user_data_dir() / 'history.sqlite'`` (not created)."""
    from .userdata import user_data_dir

    return user_data_dir() / FILENAME


def _header_problem(path: Path) -> str | None:
    """Why the file at ``path`` is not an SQLite database (None if its header looks right)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
        size = path.stat().st_size
    except OSError as exc:
        raise CnnvizError(f"cannot read the history database {path}: {exc.strerror or exc}") from exc
    if not header:
        return None  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database"
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", header[28:32])[0]
    if page_size < 512 or size % page_size or (pages and size < pages * page_size):
        return "it is truncated or damaged"
    return None


def _header_version(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return 0
    return struct.unpack(">i", header[60:64])[0] if len(header) >= 64 else 0


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _move_aside(path: Path) -> Path:
    """Rename ``path`` (and its -wal/-shm companions) to ``<name>.corrupt-<time>``; return the new path."""
    stamp = _stamp()
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        os.replace(path, target)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{path}{suffix}")
            if companion.exists():
                os.replace(companion, Path(f"{target}{suffix}"))
    except OSError as exc:
        raise CnnvizError(f"the history database {path} is damaged and could not be moved aside "
                          f"({exc.strerror or exc}); move or rename it yourself, then start again") from exc
    return target


def _sqlite_message(exc: sqlite3.Error, path: Path, doing: str) -> CnnvizError:
    """A clear CnnvizError for an sqlite3 error while ``doing`` something with the database at ``path``."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return CnnvizError(f"could not {doing}: the history database {path} stayed busy for "
                           f"{BUSY_TIMEOUT_S:.0f} s (another CNNViz is writing to it); try again")
    if "full" in text:
        return CnnvizError(f"could not {doing}: the disk holding {path} is full; free some space and try again")
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return CnnvizError(f"could not {doing}: the history database {path} cannot be written (read-only or "
                           "no permission); make its folder writable or set CNNVIZ_USER_DATA to another folder")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return CnnvizError(f"could not {doing}: the history database {path} is damaged ({exc}); close CNNViz "
                           "and open it again to move the damaged file aside")
    return CnnvizError(f"could not {doing} in the history database {path}: {exc}")


class History:
    """The saved-drawings database. Open with :meth:`open`; close with :meth:`close` (or ``with``).

    One connection per History and thread (sqlite3 connections must not be shared between threads):
    a background re-run opens its own with ``History.open(history.path)``.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, notice: str = "") -> None:
        self.path = path
        self._conn = conn
        self.notice = notice  # what happened on opening that the user should know ('' if nothing)
        self._deleted_rows: dict[str, list[int]] = {}

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> History:
        """Open (creating or upgrading) the database at ``path`` (default: default_path()).

        A file there that is not our database is renamed aside and a fresh one started (see ``notice``).
        Raises CnnvizError when the folder cannot be created or written, or the database comes from a
        newer CNNViz (that file is left untouched).
        """
        path = Path(default_path() if path is None else path).expanduser()
        try:
            path = path.resolve()
        except OSError:
            pass
        if path.is_dir():
            raise CnnvizError(f"the history database path {path} is a folder; give a file name such as "
                              f"{path / FILENAME}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CnnvizError(f"cannot create the folder for the history database {path.parent}: "
                              f"{exc.strerror or exc}; set CNNVIZ_USER_DATA to a writable folder") from exc
        problem = _header_problem(path) if path.exists() else None
        if problem is None and path.exists() and _header_version(path) > SCHEMA_VERSION:
            raise _newer(path, _header_version(path))
        if problem is None:
            conn = cls._connect(path)
            try:
                problem = cls._inspect(conn, path)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc).lower():
                    conn.close()
                    raise _sqlite_message(exc, path, "open the history") from exc
                problem = f"it is damaged ({exc})"
            except BaseException:
                conn.close()
                raise
            if problem is None:
                return cls._ready(path, conn, "")
            conn.close()
        old = _move_aside(path)
        notice = (f"The history database {path} could not be used ({problem}). It was moved to {old} "
                  "(nothing was deleted) and a new, empty history was started.")
        return cls._ready(path, cls._connect(path), notice)

    @classmethod
    def _ready(cls, path: Path, conn: sqlite3.Connection, notice: str) -> History:
        try:
            cls._prepare(conn, path)
        except sqlite3.Error as exc:
            conn.close()
            raise _sqlite_message(exc, path, "prepare the history") from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, notice)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(os.fspath(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=True)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        except sqlite3.Error as exc:
            raise _sqlite_message(exc, path, "open the history") from exc
        return conn

    @staticmethod
    def _inspect(conn: sqlite3.Connection, path: Path) -> str | None:
        """Why the open file is not our database (None if it is, or is empty). Reads only, changes nothing."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        if version == 0 and tables:
            return "it is another program's database (tables: " + ", ".join(sorted(tables)[:5]) + ")"
        if version > 0 and not {"drawings", "drawing_data"} <= tables:
            return f"it claims schema version {version} but lacks our tables"
        if "drawings" in tables:
            # A damaged file should be found now, not on the first save. The whole file is checked while it
            # is small (~20 ms for 16 MB, about 2,000 drawings); beyond that only the small table and its
            # indexes, so that opening stays fast (History.check() checks everything).
            whole = path.stat().st_size <= FULL_CHECK_BYTES
            found = conn.execute("PRAGMA quick_check" if whole else "PRAGMA quick_check(drawings)").fetchall()
            if [r[0] for r in found] != ["ok"]:
                return f"it is damaged ({found[0][0]})"
        return None

    @staticmethod
    def _prepare(conn: sqlite3.Connection, path: Path) -> None:
        """WAL mode, then upgrade the schema to SCHEMA_VERSION in one transaction (MIGRATIONS in order)."""
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives any crash of the app; only a power cut may drop the last saves.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another instance may have just created or upgraded it.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _newer(path, version)
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def check(self) -> list[str]:
        """Check the whole file (SQLite's quick_check; about 0.1 s per 100 MB from cache): [] if sound, else
        what is wrong. Read-only. Opening checks the whole file only up to FULL_CHECK_BYTES: the app may run
        this in the background (its own History in that thread) and tell the user."""
        try:
            found = [r[0] for r in self.conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if found == ["ok"] else found

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CnnvizError("the history database is closed")
        return self._conn

    def _write(self, doing: str, statements: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``statements`` in one short BEGIN IMMEDIATE transaction; sqlite errors -> CnnvizError."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = statements(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _sqlite_message(exc, self.path, doing) from exc
        return result

    def _read(self, doing: str, sql: str, params: Sequence = ()) -> list:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_message(exc, self.path, doing) from exc

    # -- changes ------------------------------------------------------------------------------------
    def save(self, record: DrawingRecord) -> int:
        """Store one drawing (its ``id`` is ignored) in one transaction; returns the new id."""
        if not isinstance(record, DrawingRecord):
            raise CnnvizError("save() takes a DrawingRecord")
        rows, cols = record.canvas.shape
        meta = (record.created, record.model, record.weights_sha256, record.predicted, record.confidence,
                record.label, record.reason, record.note, rows, cols, _array_bytes(record.probabilities),
                record.source)
        data = (_array_bytes(record.canvas), _array_bytes(record.cam), strokes_to_json(record.strokes))

        def run(c):
            rid = c.execute("INSERT INTO drawings (created, model, weights_sha256, predicted, confidence, label, "
                            "reason, note, rows, cols, probabilities, source) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", meta).lastrowid
            c.execute("INSERT INTO drawing_data (id, canvas, cam, strokes) VALUES (?, ?, ?, ?)", (rid, *data))
            return rid

        return int(self._write("save the drawing", run))

    def save_many(self, records: Iterable[DrawingRecord]) -> list[int]:
        """Save several drawings (one transaction each, so a failure keeps the ones before it)."""
        return [self.save(r) for r in records]

    def save_all(self, records: Iterable[DrawingRecord]) -> list[int]:
        """Save several drawings in ONE transaction: all of them or, on any failure, none (an import)."""
        records = list(records)
        if not all(isinstance(r, DrawingRecord) for r in records):
            raise CnnvizError("save_all() takes DrawingRecords")

        def run(c):
            ids = []
            for r in records:
                rid = c.execute("INSERT INTO drawings (created, model, weights_sha256, predicted, confidence, "
                                "label, reason, note, rows, cols, probabilities, source) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (r.created, r.model, r.weights_sha256, r.predicted, r.confidence, r.label,
                                 r.reason, r.note, *r.canvas.shape, _array_bytes(r.probabilities),
                                 r.source)).lastrowid
                c.execute("INSERT INTO drawing_data (id, canvas, cam, strokes) VALUES (?, ?, ?, ?)",
                          (rid, _array_bytes(r.canvas), _array_bytes(r.cam), strokes_to_json(r.strokes)))
                ids.append(int(rid))
            return ids

        return self._write(f"save {len(records)} drawings", run)

    def update_label(self, record_id: int, label: int | None, reason: str | None = None,
                     note: str | None = None) -> None:
        """Set a drawing's true label (0-9 or None) and report reason (None: not reported); ``note``
        None keeps the note. Raises CnnvizError if there is no such drawing."""
        label = _check_digit(label, "the true label")
        reason = _check_text(reason, "the report reason", True)
        note = _check_text(note, "the note", True)

        def run(c):
            if note is None:
                cur = c.execute("UPDATE drawings SET label = ?, reason = ? WHERE id = ? AND deleted IS NULL",
                                (label, reason, int(record_id)))
            else:
                cur = c.execute("UPDATE drawings SET label = ?, reason = ?, note = ? "
                                "WHERE id = ? AND deleted IS NULL", (label, reason, note, int(record_id)))
            return cur.rowcount

        if not self._write("change the label", run):
            raise CnnvizError(f"there is no saved drawing with id {record_id}")

    def delete(self, ids: Iterable[int]) -> str:
        """Hide the given drawings (one transaction); returns a token for :meth:`undelete`.

        The rows stay in the file (marked with the token) until :meth:`purge_deleted`.
        """
        ids = sorted({int(i) for i in ids})
        token = uuid.uuid4().hex

        def run(c):
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(f"UPDATE drawings SET deleted = ? WHERE deleted IS NULL AND id IN ({marks})",
                          (token, *chunk))

        self._write("delete the drawings", run)
        return token

    def undelete(self, token: str) -> int:
        """Bring back the drawings one :meth:`delete` hid; returns how many came back (0 for an unknown
        or already used token)."""
        return int(self._write("undo the delete", lambda c: c.execute(
            "UPDATE drawings SET deleted = NULL WHERE deleted = ?", (str(token),)).rowcount))

    def purge_deleted(self) -> int:
        """Remove deleted drawings for good (their delete can no longer be undone); returns how many."""
        def run(c):
            c.execute("DELETE FROM drawing_data WHERE id IN (SELECT id FROM drawings WHERE deleted IS NOT NULL)")
            return c.execute("DELETE FROM drawings WHERE deleted IS NOT NULL").rowcount

        return int(self._write("purge deleted drawings", run))

    # -- reading ------------------------------------------------------------------------------------
    def get(self, record_id: int) -> DrawingRecord:
        """The drawing with this id; CnnvizError if there is none (or it was deleted)."""
        rows = self._read("read the drawing", f"{_SELECT} WHERE m.id = ? AND m.deleted IS NULL",
                          (int(record_id),))
        if not rows:
            raise CnnvizError(f"there is no saved drawing with id {record_id}")
        return _row_to_record(rows[0])

    def query(self, filter: Filter | str | None = None, search: str | None = None, order: str = "newest",
              limit: int = 100, offset: int = 0) -> list[DrawingRecord]:
        """One page of drawings: ``limit`` rows from ``offset`` in ``order`` (a key of ORDERS), seeing only
        those that pass ``filter`` (a Filter or a kind name) and whose note or reason contains ``search``."""
        if order not in ORDERS:
            raise CnnvizError(f"unknown order {order!r}: choose one of {', '.join(ORDERS)}")
        limit, offset = max(0, int(limit)), max(0, int(offset))
        where, params = _where(filter, search)
        # Page the small table first (indexes, no pictures read), then fetch the page's rows.
        ids = [r[0] for r in self._read("list the drawings", f"SELECT id FROM drawings WHERE {where} "
                                        f"ORDER BY {ORDERS[order]} LIMIT ? OFFSET ?", (*params, limit, offset))]
        return list(self.iter_records(ids))

    def ids(self, filter: Filter | str | None = None, search: str | None = None, order: str = "newest") -> list[int]:
        """The ids of every drawing a query would page through, in order (cheap: no blobs)."""
        if order not in ORDERS:
            raise CnnvizError(f"unknown order {order!r}: choose one of {', '.join(ORDERS)}")
        where, params = _where(filter, search)
        return [r[0] for r in self._read("list the drawings",
                                         f"SELECT id FROM drawings WHERE {where} ORDER BY {ORDERS[order]}", params)]

    def count(self, filter: Filter | str | None = None, search: str | None = None) -> int:
        """How many drawings pass ``filter`` and ``search`` (as in :meth:`query`)."""
        where, params = _where(filter, search)
        return int(self._read("count the drawings", f"SELECT count(*) FROM drawings WHERE {where}", params)[0][0])

    def models(self) -> list[str]:
        """The model names that appear in the history, sorted."""
        return [r[0] for r in self._read("list the models", "SELECT DISTINCT model FROM drawings "
                                         "WHERE deleted IS NULL ORDER BY model")]

    def confusion(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Confusion matrix over saved drawings with a true label (and a prediction), optionally of one model.

        Returns (matrix, accuracy): matrix (10, 10) int64 with matrix[true, predicted] = count; accuracy
        (10,) float64 = correct / drawings of that true digit, NaN for a digit with none.
        """
        sql = ("SELECT label, predicted, count(*) FROM drawings WHERE deleted IS NULL AND label IS NOT NULL "
               "AND predicted IS NOT NULL")
        params: list = []
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        for label, predicted, n in self._read("compute the confusion matrix", sql + " GROUP BY label, predicted",
                                              params):
            matrix[label, predicted] = n
        totals = matrix.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)
        return matrix, accuracy

    def iter_records(self, ids: Iterable[int] | None = None, page: int = 200):
        """Yield drawings (all, oldest first, or the given ids in that order) a page at a time."""
        if ids is None:
            ids = self.ids(order="id")
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), page):
            chunk = ids[start:start + page]
            marks = ",".join("?" * len(chunk))
            found = {r[0]: r for r in self._read("read the drawings", f"{_SELECT} "
                                                 f"WHERE m.deleted IS NULL AND m.id IN ({marks})", chunk)}
            for i in chunk:
                if i in found:
                    yield _row_to_record(found[i])


def _newer(path: Path, version: int) -> CnnvizError:
    return CnnvizError(f"the history database {path} was written by a newer CNNViz (schema version {version}; "
                       f"this one knows up to {SCHEMA_VERSION}); update CNNViz, or set CNNVIZ_USER_DATA to use "
                       "another folder. The file was not changed.")


# ---------------------------------------------------------------------------------------------------------
# Export and import


def _png_bytes(canvas: np.ndarray) -> bytes:
    import io

    from PIL import Image

    grey = (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _safe_cell(text: str) -> str:
    # Spreadsheets run cells starting with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def png_name(record: DrawingRecord) -> str:
    """The file name export gives a drawing's PNG: 'drawing-<id>[-label-<d>].png'."""
    label = "" if record.label is None else f"-label-{record.label}"
    return f"drawing-{record.id or 0:06d}{label}.png"


CSV_FIELDS = ("id", "created", "model", "weights_sha256", "predicted", "confidence", "label", "reason", "note",
              "source", "png", *(f"p{d}" for d in range(NUM_CLASSES)))


def export_folder(records: Iterable[DrawingRecord], folder: str | os.PathLike) -> int:
    """Write ``drawings.csv`` (one row per drawing, CSV_FIELDS), one PNG per drawing (png_name) and
    ``drawings.json`` (export_json) into ``folder`` (created). Returns how many drawings were written."""
    folder = Path(folder)
    records = list(records)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        import io

        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(CSV_FIELDS)
        for r in records:
            name = png_name(r)
            _write_atomically(folder / name, _png_bytes(r.canvas))
            probs = [""] * NUM_CLASSES if r.probabilities is None else [f"{p:.6f}" for p in r.probabilities]
            writer.writerow([r.id, r.created, _safe_cell(r.model), r.weights_sha256,
                             "" if r.predicted is None else r.predicted,
                             "" if r.confidence is None else f"{r.confidence:.6f}",
                             "" if r.label is None else r.label, _safe_cell(r.reason or ""), _safe_cell(r.note),
                             _safe_cell(r.source), name, *probs])
        _write_atomically(folder / "drawings.csv", text.getvalue().encode("utf-8"))
        export_json(records, folder / "drawings.json")
    except OSError as exc:
        raise CnnvizError(f"could not export into {folder}: {exc.strerror or exc}") from exc
    return len(records)


def drawings_document(records: Iterable[DrawingRecord]) -> dict:
    """The drawings-file document (core.drawings.document) of ``records``; those without strokes are left out."""
    from . import drawings

    return drawings.document(drawings.drawing_from_record(r) for r in records if r.strokes is not None)


def export_json(records: Iterable[DrawingRecord], path: str | os.PathLike) -> int:
    """Write the drawings file of ``records`` (core.drawings.write_drawings, atomic) to ``path``; returns how
    many drawings it holds (records without strokes are left out)."""
    from . import drawings

    return drawings.write_drawings(path, [drawings.drawing_from_record(r) for r in records if r.strokes is not None])


def render_strokes(strokes: Sequence[Stroke], grid: int = GRID) -> tuple[np.ndarray, tuple[Stroke, ...] | None]:
    """Paint strokes through the canvas model (core.canvas.CanvasModel, the mouse's path) -> (pixels, strokes)."""
    from .canvas import CanvasModel

    canvas = CanvasModel(grid, grid)
    for s in strokes:
        canvas.radius = s.radius
        pts = s.points
        canvas.begin_stroke(float(pts[0, 0]), float(pts[0, 1]), erase=s.erase, pressure=float(pts[0, 3]),
                            t=float(pts[0, 2]))
        for x, y, t, p in pts[1:]:
            canvas.extend_stroke(float(x), float(y), pressure=float(p), t=float(t))
        canvas.end_stroke()
    return canvas.pixels.copy(), canvas.strokes


def import_json(path: str | os.PathLike) -> list[DrawingRecord]:
    """Read a drawings file -> unsaved DrawingRecords (canvas painted from the strokes, no prediction).

    The file is read and validated by core.drawings (the one parser of drawings files): a missing, huge or
    malformed file is refused (CnnvizError) naming the bad drawing, stroke and point (counted from 1).
    """
    from .drawings import drawing_to_record, read_drawings

    path = Path(path)
    return [drawing_to_record(d, source=f"import:{path.name}") for d in read_drawings(path)]


_LABEL_IN_NAME = re.compile(r"(?:^|[-_])label[-_]?([0-9])(?:[-_.]|$)", re.IGNORECASE)


def import_pngs(folder: str | os.PathLike) -> list[DrawingRecord]:
    """Read every *.png in ``folder`` (sorted by name) -> unsaved DrawingRecords without strokes.

    A name containing 'label-<d>' (as export writes them) gives the true label. Raises CnnvizError for a
    missing folder, one without PNGs, more than MAX_IMPORT_PNGS, or an unreadable image (naming it).
    """
    from .images import load_canvas
    from .preprocess import resize_antialiased

    folder = Path(folder)
    if not folder.is_dir():
        raise CnnvizError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise CnnvizError(f"{folder} holds no .png files")
    if len(files) > MAX_IMPORT_PNGS:
        raise CnnvizError(f"{folder} holds {len(files)} PNGs; the limit is {MAX_IMPORT_PNGS} per import")
    records = []
    for p in files:
        canvas = load_canvas(p)
        if canvas.shape != (GRID, GRID):
            # The app's canvas is 28x28: bigger pictures are scaled to it, like a loaded image.
            canvas = np.clip(resize_antialiased(canvas, GRID, GRID), 0.0, 1.0)
        found = _LABEL_IN_NAME.search(p.stem + p.suffix)
        records.append(DrawingRecord(canvas=canvas, label=int(found.group(1)) if found else None,
                                     source=f"import:{p.name}"))
    return records


# ---------------------------------------------------------------------------------------------------------
# Re-analysis


def analyse_record(analyzer, record: DrawingRecord, loaded_model=None) -> DrawingRecord:
    """``record`` with prediction, probabilities and Grad-CAM from ``analyzer`` (core.analysis.Analyzer)
    on its stored canvas (and strokes when present); model name and weight sha256 updated."""
    from .analysis import AnalysisRequest

    snap = analyzer.analyse(AnalysisRequest(request_id=0, pixels=np.array(record.canvas),
                                            strokes=record.strokes or None))
    return replace(record, model=analyzer.name, weights_sha256=_sha256_of_model(loaded_model),
                   predicted=None if snap.empty else snap.predicted,
                   probabilities=None if snap.empty else snap.probabilities,
                   cam=None if snap.empty else snap.canvas_cam)


def rerun(history: History, loaded_model, ids: Iterable[int] | None = None,
          progress: Callable[[int, int], Any] | None = None,
          cancel: Callable[[], bool] | None = None) -> list[tuple[int, Outcome, Outcome]]:
    """Re-analyse saved drawings (all, or ``ids``) on ``loaded_model`` (a weights.LoadedModel or an Analyzer).

    Returns [(id, before, after)] with Outcome before (as saved) and after (now); the database is not
    changed. ``progress(done, total)`` is called after each drawing; when ``cancel()`` returns True the
    run stops and returns what it has. Call it in one thread with a History opened in that thread.
    """
    from .analysis import Analyzer

    analyzer = loaded_model if isinstance(loaded_model, Analyzer) else Analyzer(loaded_model)
    ids = history.ids(order="id") if ids is None else [int(i) for i in ids]
    results = []
    for done, record in enumerate(history.iter_records(ids), start=1):
        if cancel is not None and cancel():
            break
        after = analyse_record(analyzer, record)
        results.append((record.id, Outcome(record.model, record.predicted, record.confidence),
                        Outcome(after.model, after.predicted, after.confidence)))
        if progress is not None:
            progress(done, len(ids))
    return results


__all__ = ["DrawingRecord", "Filter", "History", "Outcome", "SCHEMA_VERSION", "analyse_record", "default_path",
           "export_folder", "export_json", "import_json", "import_pngs", "record_from_snapshot",
           "rerun"]
