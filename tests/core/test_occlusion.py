"""Occlusion sensitivity: parity with captum's Occlusion (black baseline), the patch helpers, validation,
cancellation on a background lane."""

import threading
import warnings

import numpy as np
import pytest
import torch
from captum.attr import Occlusion

from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.occlusion import (
    BLACK,
    MAX_SIZE,
    MIN_SIZE,
    occlude,
    occlusion_map,
    patch_logits,
    patch_probabilities,
    window_starts,
)
from cnnviz_desktop.core.tasks import TaskRunner


def _normalised(image01):
    return ((torch.from_numpy(np.asarray(image01, np.float32)) - 0.1307) / 0.3081)[None, None]


def _captum(model, image01, target, size, stride):
    attr = Occlusion(model).attribute(_normalised(image01), sliding_window_shapes=(1, size, size),
                                      strides=(1, stride, stride), baselines=BLACK, target=target,
                                      perturbations_per_eval=256)  # batching changes speed, not the result
    return attr[0, 0].detach().numpy()


@pytest.fixture(scope="module")
def digits(mnist_test):
    """Three test digits (a 7, a 2, a 1 in t10k order) as [0, 1] images."""
    return [mnist_test.images[i].astype(np.float32) / 255.0 for i in (0, 1, 2)]


def test_black_is_paper_in_normalised_units():
    assert BLACK == pytest.approx(-0.4242, abs=1e-4)
    assert (MIN_SIZE, MAX_SIZE) == (2, 10)


@pytest.mark.parametrize("model_name", ["tiny", "wide"])
@pytest.mark.parametrize("size,stride", [(2, 1), (4, 1), (7, 1), (2, 2), (4, 2), (7, 2)])
def test_occlusion_map_equals_captum(request, digits, model_name, size, stride):
    model = request.getfixturevalue(model_name).model
    which = (size + stride) % 3
    image = digits[which]
    # the digit's true class at stride 1, a wrong class at stride 2
    target = (7, 2, 1)[which] if stride == 1 else (5, 3, 8)[which]
    ours = occlusion_map(model, image, target, size=size, stride=stride)
    ref = _captum(model, image, target, size, stride)
    assert ours.shape == (28, 28) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-5, (model_name, size, stride, target)
    assert np.abs(ref).max() > 1e-3  # not trivially zero


def test_occlusion_map_is_a_logit_drop_where_the_ink_is(tiny, digits):
    """Hiding the strokes of a 7 lowers its logit: the map is mostly positive on the ink."""
    image = digits[0]
    sens = occlusion_map(tiny.model, image, 7, size=4)
    ink = image > 0.5
    assert sens[ink].mean() > 0
    assert sens[ink].mean() > sens[~ink].mean()


def test_read_only_images_are_accepted_without_warnings(tiny, digits):
    """Snapshot arrays are read-only; torch warns on read-only numpy memory: the helpers copy."""
    image = digits[0].copy()
    image.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sens = occlusion_map(tiny.model, image, 7, size=10, stride=5)
        probs = patch_probabilities(tiny.model, image, 3, 3, 4)
        patched = occlude(image[None], 3, 3, 4)  # (1, 28, 28) as activations['input'] is accepted too
    assert sens.shape == (28, 28) and probs.shape == (10,) and patched.flags.writeable


def test_window_starts_follow_captum():
    assert window_starts(4, 1).tolist() == list(range(25))
    assert window_starts(7, 2).tolist() == list(range(0, 23, 2))  # ceil(21 / 2) + 1 = 12; the last is clipped
    assert window_starts(10, 10).tolist() == [0, 10, 20]


def test_occlude_draws_a_black_patch_only_there():
    image = np.full((28, 28), 0.8, np.float32)
    out = occlude(image, 5, 9, 3)
    assert out.shape == (28, 28)
    assert (out[5:8, 9:12] == 0).all()
    mask = np.ones((28, 28), bool)
    mask[5:8, 9:12] = False
    assert (out[mask] == 0.8).all()
    assert (image == 0.8).all()  # the input is not modified


@pytest.mark.parametrize("model_name", ["tiny", "wide"])
def test_patch_probabilities_equal_the_model_on_the_occluded_image(request, digits, model_name):
    model = request.getfixturevalue(model_name).model
    image = digits[0]
    for row, col, size in [(0, 0, 2), (10, 12, 5), (18, 18, 10)]:
        probs = patch_probabilities(model, image, row, col, size)
        x = _normalised(image).clone()
        x[0, 0, row:row + size, col:col + size] = BLACK  # the occluded image built independently
        with torch.no_grad():
            expected = torch.softmax(model(x), dim=1)[0].numpy()
        assert probs.shape == (10,)
        assert np.abs(probs - expected).max() <= 1e-6
        with torch.no_grad():
            expected_logits = model(x)[0].numpy()
        assert np.abs(patch_logits(model, image, row, col, size) - expected_logits).max() <= 1e-5
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("size", [0, 1, 11, 28, -3, 2.5, "4", None, True])
def test_bad_sizes_are_refused(tiny, size):
    image = np.zeros((28, 28), np.float32)
    with pytest.raises(CnnvizError, match="patch size"):
        occlusion_map(tiny.model, image, 3, size=size)
    with pytest.raises(CnnvizError, match="patch size"):
        occlude(image, 0, 0, size)
    with pytest.raises(CnnvizError, match="patch size"):
        patch_probabilities(tiny.model, image, 0, 0, size)


def test_other_bad_arguments_are_refused_with_a_clear_message(tiny):
    image = np.zeros((28, 28), np.float32)
    with pytest.raises(CnnvizError, match="stride"):
        occlusion_map(tiny.model, image, 3, size=4, stride=5)
    with pytest.raises(CnnvizError, match="stride"):
        occlusion_map(tiny.model, image, 3, size=4, stride=0)
    with pytest.raises(CnnvizError, match="target class"):
        occlusion_map(tiny.model, image, 10)
    with pytest.raises(CnnvizError, match="shape"):
        occlusion_map(tiny.model, np.zeros((20, 20)), 3)
    with pytest.raises(CnnvizError, match=r"\[0, 1\]"):
        occlusion_map(tiny.model, image + 255, 3)
    with pytest.raises(CnnvizError, match="NaN"):
        occlude(np.full((28, 28), np.nan), 0, 0, 4)
    with pytest.raises(CnnvizError, match="row"):
        occlude(image, 25, 0, 4)
    with pytest.raises(CnnvizError, match="col"):
        patch_probabilities(tiny.model, image, 0, -1, 4)


def test_cancellation_stops_the_sweep(tiny, digits):
    """On a lane, cancelling after the first chunk stops the map: no further chunk, a 'cancelled' update."""
    updates, lock, lanes = [], threading.Lock(), []

    def post(update):  # runs on the lane's thread: cancel as soon as the first chunk reports
        with lock:
            updates.append(update)
        if update.kind == "progress":
            lanes[0].cancel()

    lane = TaskRunner("occlusion-test", post)
    lanes.append(lane)
    image = digits[0]
    task = lane.submit(lambda ctx: occlusion_map(tiny.model, image, 7, size=2, stride=1, ctx=ctx))
    assert lane.wait_idle(30)
    lane.shutdown()
    kinds = [u.kind for u in updates if u.task_id == task]
    assert kinds[-1] == "cancelled"
    # 27 x 27 = 729 windows in chunks of 128: six chunks if it had run on; it stopped after the first.
    assert kinds.count("progress") == 1
    assert "done" not in kinds


def test_progress_reaches_one_and_the_lane_returns_the_map(tiny, digits):
    updates, lock = [], threading.Lock()

    def post(update):
        with lock:
            updates.append(update)

    lane = TaskRunner("occlusion-test", post)
    task = lane.submit(lambda ctx: occlusion_map(tiny.model, digits[0], 7, size=4, stride=2, ctx=ctx))
    assert lane.wait_idle(30)
    lane.shutdown()
    mine = [u for u in updates if u.task_id == task]
    fractions = [u.fraction for u in mine if u.kind == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert mine[-1].kind == "done"
    np.testing.assert_array_equal(mine[-1].payload, occlusion_map(tiny.model, digits[0], 7, size=4, stride=2))
