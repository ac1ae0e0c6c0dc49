"""The action table and the view registry: one source for menus, keys, the overlay and the README."""

from __future__ import annotations

import re
from collections import Counter

from cnnviz_desktop.devtools.keys_table import table
from cnnviz_desktop.ui import actions
from cnnviz_desktop.ui.views import VIEWS

from ..conftest import ROOT


def test_every_key_triggers_one_thing():
    keys = [k for spec in actions.ACTIONS for k in spec.keys] + [v.key for v in VIEWS if v.key]
    assert [k for k, n in Counter(keys).items() if n > 1] == []


def test_mnemonics_are_unique_within_each_menu():
    menus: dict[tuple, list[str]] = {}
    for spec in actions.ACTIONS:
        if spec.menu:
            match = re.search(r"&(\w)", spec.text)
            assert match, f"{spec.id} has no mnemonic"
            menus.setdefault((spec.menu, spec.submenu), []).append(match.group(1).lower())
    for spec in actions.ACTIONS:  # a submenu's own mnemonic counts in its parent menu
        if spec.submenu:
            letter = re.search(r"&(\w)", spec.submenu).group(1).lower()
            menus.setdefault((spec.menu, None), [])
            if letter not in menus[(spec.menu, None)]:
                menus[(spec.menu, None)].append(letter)
    view_letters = [re.search(r"&(\w)", v.title).group(1).lower() for v in VIEWS if "&" in v.title]
    menus[("&View", None)] += view_letters
    for menu, letters in menus.items():
        assert len(letters) == len(set(letters)), (menu, letters)
    bar = [re.search(r"&(\w)", m).group(1).lower() for m in actions.MENUS]
    assert len(bar) == len(set(bar))


def test_single_keys_are_recognised():
    assert actions.is_single_key("A") and actions.is_single_key("Shift+C") and actions.is_single_key("Delete")
    assert not actions.is_single_key("Ctrl+Z") and not actions.is_single_key("F11")


def test_readme_key_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert table() in readme, "README.md's key table is stale: paste `python -m cnnviz_desktop.devtools.keys_table`"


def test_every_view_is_registered_once_and_loads():
    ids = [v.id for v in VIEWS]
    assert len(ids) == len(set(ids)) and sum(v.area == "central" for v in VIEWS) == 1
    for spec in VIEWS:
        assert spec.load().__name__ == spec.cls
