"""Screen-space label placement (no Qt): no overlaps, nothing cut by the view's edge, shorter or hidden
when there is no room, obstacles and priorities respected."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cnnviz_desktop.core.architecture import ARCHITECTURES, describe
from cnnviz_desktop.core.labels import (
    LabelRequest,
    layer_titles,
    place_labels,
    rects_intersect,
)


def _check(placed, view, obstacles=(), margin=2.0):
    rects = [p.rect for p in placed if p is not None]
    for a, b in itertools.combinations(rects, 2):
        assert not rects_intersect(a, b), (a, b)
    for x, y, w, h in rects:
        assert x >= margin - 1e-9 and y >= margin - 1e-9
        assert x + w <= view[0] - margin + 1e-9 and y + h <= view[1] - margin + 1e-9
    for r in rects:
        for o in obstacles:
            assert not rects_intersect(r, o)
    return rects


def test_a_free_label_sits_where_it_asked():
    req = [LabelRequest((400, 300), ((120, 20),), align="center"),
           LabelRequest((100, 100), ((50, 16),), align="left"),
           LabelRequest((600, 200), ((40, 10),), align="above"),
           LabelRequest((600, 400), ((40, 10),), align="below")]
    out = place_labels(req, (800, 600))
    assert [p.variant for p in out] == [0, 0, 0, 0]
    assert out[0].rect == (340.0, 290.0, 120.0, 20.0)
    assert out[1].rect == (100.0, 92.0, 50.0, 16.0)
    assert out[2].rect == (580.0, 190.0, 40.0, 10.0)
    assert out[3].rect == (580.0, 400.0, 40.0, 10.0)


def test_colliding_labels_move_apart_and_the_higher_priority_keeps_its_spot():
    # Two long titles anchored 10 px apart (as conv1 and conv2 were on screen).
    req = [LabelRequest((400, 300), ((300, 20), (120, 20), (50, 20)), priority=1),
           LabelRequest((410, 305), ((300, 20), (120, 20), (50, 20)), priority=2)]
    out = place_labels(req, (800, 600))
    _check(out, (800, 600))
    assert out[1].rect == (260.0, 295.0, 300.0, 20.0)  # the winner is exactly where it asked
    assert out[0] is not None and out[0].rect != (250.0, 290.0, 300.0, 20.0)


def test_a_label_without_room_is_shortened_then_hidden_never_drawn_over_another():
    # A wall of obstacles leaves a 130 px gap at the anchor: only the compact variant fits there.
    view = (800, 600)
    obstacles = [(0, 0, 335, 600), (465, 0, 335, 600)]
    req = [LabelRequest((400, 300), ((300, 20), (120, 20), (50, 20)))]
    out = place_labels(req, view, obstacles=obstacles)
    _check(out, view, obstacles)
    assert out[0].variant == 1
    # With a 60 px gap only the name fits; with 20 px nothing does: hidden.
    out = place_labels(req, view, obstacles=[(0, 0, 370, 600), (430, 0, 370, 600)])
    assert out[0].variant == 2
    out = place_labels(req, view, obstacles=[(0, 0, 390, 600), (410, 0, 390, 600)])
    assert out[0] is None


def test_labels_at_the_edge_slide_inside_and_far_outside_anchors_hide():
    view = (800, 600)
    req = [LabelRequest((790, 300), ((200, 20),)),          # would be cut on the right
           LabelRequest((5, 2), ((100, 20),), align="above"),  # would be cut at the top-left
           LabelRequest((2000, 300), ((50, 20),)),          # the anchor is far outside the view
           LabelRequest((400, 300), ((50, 20),), visible=False)]
    out = place_labels(req, view)
    _check(out, view)
    assert out[0].rect[0] + 200 <= 798 and out[1].rect[:2] == (2.0, 2.0)
    assert out[2] is None and out[3] is None


def test_a_label_wider_than_the_view_uses_a_shorter_form():
    out = place_labels([LabelRequest((200, 100), ((500, 20), (150, 20)))], (400, 300))
    assert out[0].variant == 1


def test_max_shift_keeps_a_label_next_to_its_anchor():
    # Output digits: 14 px wide, anchors 10 px apart: they cannot all stay under their cube.
    req = [LabelRequest((100 + 10 * i, 200), ((14, 18),), priority=10, max_shift=4.0, max_dx=2.0)
           for i in range(10)]
    out = place_labels(req, (800, 600))
    rects = _check(out, (800, 600))
    for p in out:
        if p is not None:
            cx = p.rect[0] + p.rect[2] / 2
            assert abs(cx - (100 + 10 * p.index)) <= 2.0 + 1e-9
    assert 3 <= len(rects) < 10


@pytest.mark.parametrize("seed", range(5))
def test_many_random_labels_never_overlap_or_leave_the_view(seed):
    rng = np.random.default_rng(seed)
    view = (float(rng.integers(300, 1920)), float(rng.integers(200, 1080)))
    req = []
    for i in range(40):
        w = float(rng.uniform(20, 400))
        sizes = ((w, 18.0), (w * 0.5, 18.0), (w * 0.2, 18.0))
        anchor = (float(rng.uniform(-50, view[0] + 50)), float(rng.uniform(-50, view[1] + 50)))
        req.append(LabelRequest(anchor, sizes, priority=float(rng.uniform()),
                                align=str(rng.choice(["center", "above", "below", "left"]))))
    obstacles = [(0, view[1] - 90, 320, 90)]
    out = place_labels(req, view, obstacles=obstacles)
    rects = _check(out, view, obstacles)
    assert len(rects) >= 5


def test_layer_titles_offer_a_compact_and_a_name_only_form():
    specs = {s.name: s for s in describe(ARCHITECTURES["tiny"])}
    assert layer_titles(specs["conv1"], 1) == ("conv1: 8 maps 26\u00d726  \u00b7  8\u00d71 filters 3\u00d73",
                                               "conv1 \u00b7 8\u00d726\u00d726", "conv1")
    assert layer_titles(specs["output"]) == ("output: digits 0-9", "output 0-9", "output")
    assert layer_titles(specs["dense1"])[0] == "dense1: 22 units"
    for spec in specs.values():
        texts = layer_titles(spec, 8)
        assert all(len(a) > len(b) for a, b in itertools.pairwise(texts))  # longest first


def test_a_narrow_view_uses_the_compact_titles():
    req = [LabelRequest((180, 100), ((200, 20), (110, 20), (50, 20)))]
    assert place_labels(req, (1000, 600))[0].variant == 0
    assert place_labels(req, (360, 600))[0].variant == 1  # 200 px would be over 40% of the width
    assert place_labels([LabelRequest((180, 100), ((200, 20),))], (360, 600))[0].variant == 0  # no other form
