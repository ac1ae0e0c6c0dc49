"""Input maximisation (core/maximize.py): every class on both shipped models, determinism, channel and
neuron objectives, cancellation through a real TaskRunner lane, bad settings refused."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.maximize import MaxSettings, Objective, evaluate, maximise, to_canvas
from cnnviz_desktop.core.tasks import TaskRunner


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run as the app does: its analysis worker sets torch to one intra-op thread for the whole process
    (ARCHITECTURE.md section 1). With the default two threads on this shared 2-core machine, each tiny
    step's parallel regions spin against the other processes and a step costs 10-40x more; core code
    itself never sets the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=["tiny", "wide"])
def loaded(request):
    from cnnviz_desktop.core import weights

    return weights.load(request.param)


def test_every_class_reaches_at_least_0_9_with_the_default_settings(loaded):
    params_before = [p.detach().clone() for p in loaded.model.parameters()]
    probabilities = []
    for digit in range(10):
        result = maximise(loaded, Objective.for_class(digit))
        assert result.done and result.step == result.steps == 300
        assert result.image01.shape == (28, 28) and result.image01.dtype == np.float32
        assert 0.0 <= result.image01.min() and result.image01.max() <= 1.0
        assert result.scores.shape == result.tv.shape == (300,)
        # The curve is the class logit, and it went up.
        assert result.score > result.start_score
        assert result.scores[-10:].mean() > result.scores[:10].mean()
        # The reported probabilities are the network's own on the (un-jittered) image.
        check = evaluate(loaded, Objective.for_class(digit), result.image01)
        np.testing.assert_allclose(check.probs, result.probs, atol=1e-6)
        probabilities.append(result.target_probability)
    assert min(probabilities) >= 0.9, f"{loaded.name}: {np.round(probabilities, 3)}"
    # The model was not changed: same weights, no gradients written.
    for before, after in zip(params_before, loaded.model.parameters()):
        assert torch.equal(before, after) and after.grad is None
    assert not loaded.model.training


def test_a_seed_gives_the_same_image_and_another_seed_a_different_one(loaded):
    settings = MaxSettings(steps=40, seed=3)
    a = maximise(loaded, Objective.for_class(4), settings)
    b = maximise(loaded, Objective.for_class(4), settings)
    c = maximise(loaded, Objective.for_class(4), MaxSettings(steps=40, seed=4))
    np.testing.assert_array_equal(a.image01, b.image01)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.image01, c.image01)


@pytest.mark.parametrize("objective", [
    Objective.for_channel("conv1", 3),
    Objective.for_channel("pool2", 1),
    Objective.for_neuron("conv2", (1, 5, 5)),
    Objective.for_neuron("pool2", (1, 2, 2)),
    Objective.for_neuron("dense1", (5,)),
], ids=lambda o: o.label())
def test_channel_and_neuron_objectives_raise_their_activation(loaded, objective):
    result = maximise(loaded, objective)
    assert result.score > result.start_score
    assert result.activation > result.start_activation
    # The activation is the layer's output (after its ReLU / pool) on the image, as the scene shows it.
    from cnnviz_desktop.core.architecture import describe

    spec = {s.name: s for s in describe(loaded.arch)}[objective.layer]
    with torch.no_grad():
        h = (torch.from_numpy(result.image01)[None, None] - 0.1307) / 0.3081
        for module in loaded.model.body[: spec.module + 1]:
            h = module(h)
    values = h[0].numpy()
    shown = values[objective.channel].mean() if objective.kind == "channel" else values[objective.index]
    assert float(shown) == pytest.approx(result.activation, rel=1e-4, abs=1e-5)
    assert result.target_probability is None


def test_an_output_neuron_is_its_class(loaded):
    result = maximise(loaded, Objective.for_neuron("output", (7,)), MaxSettings(steps=30))
    same = maximise(loaded, Objective.for_class(7), MaxSettings(steps=30))
    np.testing.assert_allclose(result.image01, same.image01, atol=1e-6)
    assert result.target_probability == pytest.approx(same.target_probability)


def test_progress_every_n_steps_and_cancellation_through_a_lane(loaded):
    updates, lock = [], threading.Lock()

    def post(update):
        with lock:
            updates.append(update)

    lane = TaskRunner("maximise-test", post)
    try:
        tid = lane.submit(lambda ctx: maximise(loaded, Objective.for_class(2), MaxSettings(steps=30), ctx, every=10))
        assert lane.wait_idle(120)
        mine = [u for u in updates if u.task_id == tid]
        progress = [u for u in mine if u.kind == "progress"]
        assert [round(u.fraction, 3) for u in progress] == [0.333, 0.667, 1.0]
        assert [u.payload.step for u in progress] == [10, 20, 30]
        assert [len(u.payload.scores) for u in progress] == [10, 20, 30]
        assert not progress[0].payload.done and progress[-1].payload.done
        assert mine[-1].kind == "done" and mine[-1].payload.step == 30

        # A long run, cancelled after its first progress report: it stops well before its end.
        seen, long_updates = threading.Event(), []

        def post_and_flag(update):
            with lock:
                long_updates.append(update)
            if update.kind == "progress":
                seen.set()

        lane2 = TaskRunner("maximise-cancel", post_and_flag)
        try:
            long_id = lane2.submit(lambda ctx: maximise(loaded, Objective.for_class(5), MaxSettings(steps=5000),
                                                        ctx, every=5))
            assert seen.wait(120)
            lane2.cancel()
            assert lane2.wait_idle(120)
            assert {u.task_id for u in long_updates} == {long_id}
            assert long_updates[-1].kind == "cancelled"
            assert max(u.payload.step for u in long_updates if u.kind == "progress") < 5000
            assert not any(u.kind == "done" for u in long_updates)
        finally:
            lane2.shutdown()
    finally:
        lane.shutdown()


@pytest.mark.parametrize("kwargs, word", [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": 10**6}, "steps"),
    ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"lr": "fast"}, "lr"),
    ({"tv_weight": -1.0}, "tv_weight"), ({"tv_weight": float("inf")}, "tv_weight"),
    ({"jitter": -1}, "jitter"), ({"jitter": 100}, "jitter"), ({"seed": -3}, "seed"), ({"seed": True}, "seed"),
])
def test_bad_settings_are_refused_with_a_clear_message(kwargs, word):
    with pytest.raises(CnnvizError, match=word):
        MaxSettings(**kwargs)


@pytest.mark.parametrize("make, word", [
    (lambda: Objective.for_class(10), "digit 0-9"),
    (lambda: Objective.for_class(None), "digit 0-9"),
    (lambda: Objective("pixel"), "unknown objective"),
    (lambda: Objective.for_channel("conv1", -1), "channel"),
    (lambda: Objective.for_neuron("dense1", ()), "index"),
])
def test_bad_objectives_are_refused(make, word):
    with pytest.raises(CnnvizError, match=word):
        make()


@pytest.mark.parametrize("objective, word", [
    (Objective.for_channel("conv9", 0), "no layer 'conv9'"),
    (Objective.for_channel("conv1", 99), "channels 0-7"),
    (Objective.for_channel("dense1", 0), "conv or pool"),
    (Objective.for_neuron("input", (0, 3, 3)), "input pixel"),
    (Objective.for_neuron("conv1", (0, 99, 0)), "outside conv1"),
    (Objective.for_neuron("dense1", (0, 1)), "outside dense1"),
])
def test_objectives_the_model_does_not_have_are_refused(loaded, objective, word):
    with pytest.raises(CnnvizError, match=word):
        maximise(loaded, objective, MaxSettings(steps=1))


def test_to_canvas_resamples_to_the_grid():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1.0
    same = to_canvas(image, (28, 28))
    np.testing.assert_array_equal(same, image)
    big = to_canvas(image, (56, 56))
    assert big.shape == (56, 56) and big.max() <= 1.0 and big[28, 28] == pytest.approx(1.0)
    small = to_canvas(image, (14, 14))
    assert small.shape == (14, 14) and small.sum() == pytest.approx(image.sum() / 4, rel=1e-5)
