"""Print the README's key table, generated from the action table and the view registry.

    python -m cnnviz_desktop.devtools.keys_table [--write-readme]

tests/ui/test_actions.py checks that README.md holds exactly this table.
"""

from __future__ import annotations


def table() -> str:
    from ..ui.help import shortcut_rows

    lines = ["| keys | what | group |", "|---|---|---|"]
    for group, rows in shortcut_rows():
        for keys, what in rows:
            lines.append(f"| {keys} | {what} | {group} |")
    return "\n".join(lines)


def write_readme(path=None) -> None:
    """Replace the table between the README's keys:begin/keys:end markers."""
    from pathlib import Path

    path = Path(path or Path(__file__).resolve().parents[2] / "README.md")
    text = path.read_text()
    begin, end = "<!-- keys:begin -->\n", "\n<!-- keys:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + table() + end + tail)


if __name__ == "__main__":
    import sys

    if "--write-readme" in sys.argv[1:]:
        write_readme()
    else:
        print(table())
