"""The view registry: every view of the window, registered in one place.

A view is one module under ``ui/views/`` with one class implementing :class:`~.base.View`. The window
builds its central widget and docks, the View menu (one toggle per view, with its key) and the help from
:data:`VIEWS`; adding a view means adding its module and one line here. Views never import each other
(an import-linter contract checks it): they talk to the session only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

AREAS = ("central", "left", "right", "bottom")


@dataclass(frozen=True)
class ViewSpec:
    """id: unique name; title: dock title and View-menu text (with its '&' mnemonic); module and cls:
    where the class lives (``cnnviz_desktop.ui.views.<module>.<cls>``); area: 'central' or a dock area;
    key: the View-menu toggle's shortcut (None: no toggle key); visible: shown at first launch;
    summary: one line for the help."""

    id: str
    title: str
    module: str
    cls: str
    area: str
    key: str | None = None
    visible: bool = True
    summary: str = ""

    @property
    def label(self) -> str:
        return self.title.replace("&", "")

    def load(self):
        """The view class (imported on first use, so a view's dependencies load only when it is built)."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        return getattr(module, self.cls)


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("scene", "3D network", "scene_view", "SceneView", "central",
             summary="every neuron of the network, coloured by its activation, with the connections that matter"),
    ViewSpec("drawing", "&Drawing", "drawing", "DrawingView", "left", "Alt+1",
             summary="the 28x28 grid you draw on, with the Grad-CAM overlay and its channels"),
    ViewSpec("probabilities", "Pro&babilities", "probabilities_view", "ProbabilitiesView", "left", "Alt+2",
             summary="the network's probability for each digit; click a bar to explain that digit"),
    ViewSpec("feature_maps", "F&eature maps", "feature_maps", "FeatureMapsView", "right", "Alt+3", visible=False,
             summary="every convolution and pooling output of your drawing, one small image per channel"),
    ViewSpec("filters", "Fi&lters", "filters", "FiltersView", "right", "Alt+4", visible=False,
             summary="the learned convolution kernels, grouped by input channel, on one signed scale"),
    ViewSpec("history", "Saved &history", "history_view", "HistoryView", "bottom", "Alt+5", visible=False,
             summary="your saved drawings: filter, search, accuracy and confusion matrix, open, re-run"),
    ViewSpec("saliency", "Salienc&y", "saliency_view", "SaliencyView", "right", "Alt+6", visible=False,
             summary="saliency |d score / d pixel| and gradient x input of your drawing, for any class"),
    ViewSpec("occlusion", "Occlusio&n", "occlusion_view", "OcclusionView", "right", "Alt+7", visible=False,
             summary="hide part of your drawing under a black square and see the probability drop; sensitivity map"),
    ViewSpec("maximize", "Input ma&ximisation", "maximize_view", "MaximizeView", "right", "Alt+8", visible=False,
             summary="synthesise an image that excites a digit, a channel or a picked neuron; draw it on the grid"),
    ViewSpec("embedding", "Embeddin&gs", "embedding_view", "EmbeddingView", "right", "Alt+9", visible=False,
             summary="5,000 test digits as PCA and t-SNE maps of the last hidden layer, your drawing a live marker"),
    ViewSpec("compare", "C&ompare methods", "compare_view", "CompareView", "right", "Alt+0", visible=False,
             summary="two explanation methods side by side on your drawing, and how much they agree"),
    ViewSpec("training", "Tra&ining", "training_view", "TrainingView", "bottom", "Alt+T", visible=False,
             summary="train a network here: live curves, the scene changes as it learns, save the result"),
    ViewSpec("help", "How to &use", "help_view", "HelpView", "right", None, visible=False,
             summary="what every part of the window shows and how it is computed"),
)

BY_ID = {spec.id: spec for spec in VIEWS}
assert len(BY_ID) == len(VIEWS), "duplicate view id"
assert all(spec.area in AREAS for spec in VIEWS)
assert sum(spec.area == "central" for spec in VIEWS) == 1, "exactly one central view"
