"""cnnviz-history run as a user runs it (subprocess): list, export, import, rerun; errors are one line + exit 2."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cnnviz_desktop.core.history import SCHEMA_VERSION, History

ROOT = Path(__file__).resolve().parents[2]

DRAWINGS = {"drawings": [
    {"label": 1, "strokes": [[[14, 4, 0.0], [14, 24, 0.4]]]},
    {"label": 7, "strokes": [[[5, 5], [20, 5], [12, 24]]], "note": "Ben's seven"},
    {"label": 0, "strokes": [[[14, 4], [22, 14], [14, 24], [6, 14], [14, 4]]]},
]}


def run(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", CNNVIZ_USER_DATA=str(user_data),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "cnnviz_desktop.cli.history", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr


@pytest.fixture
def filled(tmp_path) -> Path:
    """A user data folder whose history holds DRAWINGS (imported through the CLI) plus one report."""
    source = tmp_path / "drawings.json"
    source.write_text(json.dumps(DRAWINGS))
    ud = tmp_path / "ud"
    result = run("import", str(source), user_data=ud)
    assert result.returncode == 0, result.stderr
    assert "imported 3 drawings" in result.stdout
    with History.open(ud / "history.sqlite") as h:
        h.update_label(2, 4, "it is a 4, really")
    return ud


def test_list_json_and_filters(filled):
    result = run("list", "--json", user_data=filled)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [3, 2, 1]
    assert all(r["model"] == "tiny" and r["strokes"] and 0 <= r["predicted"] <= 9 for r in rows)
    assert rows[1]["note"] == "Ben's seven" and rows[1]["label"] == 4 and rows[1]["reported"]
    reported = run("list", "--json", "--reported", user_data=filled)
    assert [json.loads(x)["id"] for x in reported.stdout.splitlines()] == [2]
    assert run("list", "--json", "--model", "wide", user_data=filled).stdout == ""
    assert [json.loads(x)["id"] for x in run("list", "--json", "--search", "ben", user_data=filled)
            .stdout.splitlines()] == [2]
    text = run("list", "--db", str(filled / "history.sqlite"), user_data=filled.parent / "elsewhere")
    assert text.returncode == 0 and "reported: it is a 4, really" in text.stdout and "3 of 3" in text.stderr


def test_export_writes_csv_pngs_and_json_that_import_reads_back(filled, tmp_path):
    out = tmp_path / "export"
    result = run("export", str(out), user_data=filled)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["drawing-000001-label-1.png", "drawing-000002-label-4.png",
                                                      "drawing-000003-label-0.png", "drawings.csv", "drawings.json"]
    assert len((out / "drawings.csv").read_text().splitlines()) == 4
    again = tmp_path / "again"
    result = run("import", str(out), "--model", "wide", user_data=again)  # the PNG folder
    assert result.returncode == 0 and "imported 3 drawings" in result.stdout and "wide" in result.stdout
    result = run("import", str(out / "drawings.json"), user_data=again)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in run("list", "--json", "--order", "id", user_data=again).stdout.splitlines()]
    assert [r["label"] for r in rows] == [1, 4, 0, 1, 4, 0]
    assert [r["strokes"] for r in rows] == [False] * 3 + [True] * 3


def test_rerun_json_shows_before_and_after(filled):
    result = run("rerun", "--model", "wide", "--json", user_data=filled)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["before"]["model"] == "tiny" and r["after"]["model"] == "wide"
        assert r["changed"] == (r["before"]["predicted"] != r["after"]["predicted"])
    text = run("rerun", "--model", "tiny", user_data=filled)
    assert text.returncode == 0 and "3 drawings re-run on tiny, 0 changed" in text.stderr


def test_user_errors_are_one_line_and_exit_2(tmp_path, filled):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"drawings": [{"strokes": [[[1, 1]]]}, {"label": 3, "strokes": [[[1, 40]]]}]}))
    assert_user_error(run("import", str(bad), user_data=filled), "drawing 2, stroke 1, point 1: y is 40, must be 0-28")
    assert_user_error(run("import", str(tmp_path / "nothing"), user_data=filled), "no such file or folder")
    assert_user_error(run("rerun", "--model", str(tmp_path / "nope.safetensors"), user_data=filled), "error:")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(run("list", "--db", str(blocker / "h.sqlite"), user_data=filled), "cannot create the folder")
    with History.open(filled / "history.sqlite") as h:
        count = h.count()
    conn = sqlite3.connect(filled / "history.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = (filled / "history.sqlite").read_bytes()
    assert_user_error(run("list", user_data=filled), "newer CNNViz")
    assert (filled / "history.sqlite").read_bytes() == before
    assert count == 3
    usage = run("list", "--digit", "12", user_data=filled)
    assert usage.returncode == 2 and "digit 0-9" in usage.stderr and "Traceback" not in usage.stderr


def test_a_corrupt_database_is_moved_aside_with_a_note(tmp_path):
    ud = tmp_path / "ud"
    ud.mkdir()
    (ud / "history.sqlite").write_text("garbage " * 100)
    result = run("list", user_data=ud)
    assert result.returncode == 0, result.stderr
    assert "note: The history database" in result.stderr and "history.sqlite.corrupt-" in result.stderr
    assert any(p.name.startswith("history.sqlite.corrupt-") for p in ud.iterdir())
