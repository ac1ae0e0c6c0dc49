"""Print the README's key table, generated from the action table and the view registry.

    python -m cnnviz_desktop.devtools.keys_table

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


if __name__ == "__main__":
    print(table())
