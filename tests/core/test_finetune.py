"""Fine-tuning on the class's own labelled drawings (issue 13 item 5): the drawings from the history, mixed into
the training data with a weight, and their accuracy reported before and after every epoch by the trainer."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from cnnviz_desktop.core import mnist, training
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.history import DrawingRecord, History
from cnnviz_desktop.core.preprocess import preprocess
from cnnviz_desktop.core.trainer import MAX_EXTRA_IMAGES, TrainerProcess, TrainSettings, check_extras

TIMEOUT = 180  # spawning a child that imports torch takes 15-20 s on the shared 2-core machine


def class_drawings(test: mnist.Dataset, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A consistent 'class style' the shipped tiny often gets wrong: digits drawn with a very thick pen (MNIST
    t10k images 9000+, outside the test subset the trainer evaluates, dilated by a 5x5 max filter).
    (n, 28, 28) float32 in [0, 1], labels (n,) int64."""
    x = torch.from_numpy(test.images[9000:9000 + n].astype(np.float32) / 255.0)[:, None]
    thick = torch.nn.functional.max_pool2d(x, 5, stride=1, padding=2)[:, 0].numpy()
    return np.ascontiguousarray(thick), test.labels[9000:9000 + n].astype(np.int64)


def until(trainer: TrainerProcess, kind: str, seen: list | None = None) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        message = trainer.recv(1.0)
        if message is None:
            continue
        if message[0] == kind:
            return message[1]
        if seen is not None:
            seen.append(message)
        assert message[0] not in ("exited", "error"), message
    raise AssertionError(f"no {kind!r} message within {TIMEOUT} s")


@pytest.fixture
def trainer():
    t = TrainerProcess()
    yield t
    t.close()
    assert not t.alive()


def test_fine_tuning_learns_the_drawings_and_reports_what_the_model_gives(trainer, mnist_dir, mnist_test, tiny,
                                                                          tmp_path):
    images, labels = class_drawings(mnist_test)
    before = training.accuracy_on(tiny.model, images, labels)
    assert before < 0.6, "the synthetic drawings must be hard for tiny"
    init = {k: v.detach().numpy().copy() for k, v in tiny.model.state_dict().items()}
    trainer.start(TrainSettings(tiny.arch, str(mnist_dir), epochs=2, batch_size=64, lr=1e-2, seed=0,
                                train_limit=1000, test_limit=500, init_state=init, init_name="tiny",
                                extra_images=images, extra_labels=labels, extra_weight=20,
                                extra_name="synthetic class drawings"))
    ready = until(trainer, "ready")
    assert ready["images"] == 1000 and ready["drawings"] == 48
    assert ready["steps_per_epoch"] == -(-1048 // 64)  # every drawing is in one batch per epoch
    test = mnist.Dataset(mnist_test.images[:500], mnist_test.labels[:500])
    assert ready["before"]["drawings_n"] == 48 and ready["before"]["test_n"] == 500
    assert ready["before"]["drawings_accuracy"] == pytest.approx(before, abs=1e-9)
    assert ready["before"]["test_accuracy"] == pytest.approx(training.evaluate(tiny.model, test)["accuracy"],
                                                             abs=1e-9)
    log: list = []
    epochs = [until(trainer, "epoch", log), until(trainer, "epoch", log)]
    until(trainer, "stopped", log)
    final = [p for kind, p in log if kind == "weights" and p["final"]][-1]
    net = type(tiny.model)(tiny.arch)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in final["state"].items()})
    after = training.accuracy_on(net, images, labels)
    # The reported numbers are what the final weights really give, and the drawings were learned.
    assert epochs[-1]["drawings_accuracy"] == pytest.approx(after, abs=1e-9)
    assert epochs[-1]["test_accuracy"] == pytest.approx(training.evaluate(net, test)["accuracy"], abs=1e-9)
    assert after >= before + 0.15, (before, after)
    assert epochs[-1]["test_accuracy"] > 0.85  # MNIST is kept (tiny: about 0.97 on this subset)

    out = tmp_path / "tuned.safetensors"
    trainer.send("save", {"path": str(out)})
    card = until(trainer, "saved")["card"]
    assert card["training_data"]["labelled_drawings"] == 48 and card["training_data"]["drawings_weight"] == 20
    assert card["training_data"]["images"] == 1000
    assert card["drawings_accuracy"] == pytest.approx(after, abs=1e-5)
    assert card["drawings_accuracy_before"] == pytest.approx(before, abs=1e-5)


def test_weight_makes_the_drawings_count_more(mnist_test, tiny):
    images, labels = class_drawings(mnist_test, 32)
    train = mnist.Dataset(mnist_test.images[:512], mnist_test.labels[:512])
    init = {k: v.detach().clone() for k, v in tiny.model.state_dict().items()}
    torch.set_num_threads(1)
    scores = []
    for weight in (1.0, 50.0):
        run = training.TrainingRun(tiny.arch, train, epochs=1, seed=0, batch_size=64, lr=3e-3, init_state=init,
                                   augmentation=None, extra_images=images, extra_labels=labels,
                                   extra_weight=weight)
        while not run.done:
            run.step()
        scores.append(training.accuracy_on(run.model, images, labels))
    assert scores[1] > scores[0], scores


def test_no_drawings_gives_bit_identical_weights(mnist_test):
    from cnnviz_desktop.core.networks import ARCHITECTURES

    train = mnist.Dataset(mnist_test.images[:256], mnist_test.labels[:256])
    torch.set_num_threads(1)
    states = []
    for extra in ({}, dict(extra_images=np.zeros((0, 28, 28), np.float32), extra_labels=np.zeros(0, np.int64),
                           extra_weight=20.0)):
        run = training.TrainingRun(ARCHITECTURES["tiny"], train, epochs=1, seed=5, batch_size=64, **extra)
        while not run.done:
            run.step()
        states.append(run.model.state_dict())
        assert run.sample_weights is None and run.card()["training_data"] == {
            "source": "MNIST training IDX files", "images": 256}
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k])


def test_bad_drawings_are_one_clear_message():
    good = np.zeros((3, 28, 28), np.float32)
    labels = np.array([1, 2, 3])
    assert check_extras(None, None) is None
    images, out_labels = check_extras((good * 255).astype(np.uint8), labels)
    assert images.dtype == np.float32 and out_labels.dtype == np.int64
    for bad, match in (
        (dict(images=good[:, :27]), "28, 28"),
        (dict(labels=np.array([1, 2])), "one label each"),
        (dict(labels=np.array([1, 2, 10])), "0-9"),
        (dict(labels=np.array([1.0, 2.0, 3.0])), "0-9"),
        (dict(images=np.full((3, 28, 28), np.nan, np.float32)), "NaN"),
        (dict(images=good + 2.0), r"\[0, 1\]"),
        (dict(weight=0.5), "1-1000"),
        (dict(weight=float("inf")), "1-1000"),
        (dict(weight=1001), "1-1000"),
        (dict(labels=None), "both"),
    ):
        args = dict(images=good, labels=labels, weight=20.0) | bad
        with pytest.raises(CnnvizError, match=match):
            check_extras(args["images"], args["labels"], args["weight"])
    huge = np.broadcast_to(np.zeros((1, 28, 28), np.uint8), (MAX_EXTRA_IMAGES + 1, 28, 28))
    with pytest.raises(CnnvizError, match="at most"):
        check_extras(huge, np.zeros(MAX_EXTRA_IMAGES + 1, np.int64))
    from cnnviz_desktop.core.networks import ARCHITECTURES

    with pytest.raises(CnnvizError, match="1-1000"):
        TrainSettings(ARCHITECTURES["tiny"], "/data", extra_images=good, extra_labels=labels,
                      extra_weight=0).validated()


def test_labelled_drawings_come_from_the_history_as_the_network_sees_them(tmp_path, mnist_test):
    images, labels = class_drawings(mnist_test, 6)
    with History.open(tmp_path / "history.sqlite") as history:
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            history.save(DrawingRecord(canvas=image, label=int(label) if i % 2 == 0 else None))
        history.save(DrawingRecord(canvas=np.zeros((28, 28), np.float32), label=3))  # empty: skipped
        assert history.count("labelled") == 4
        got, got_labels, ids = training.labelled_drawings(history)
    assert got.shape == (3, 28, 28) and got.dtype == np.float32 and len(ids) == 3
    np.testing.assert_array_equal(got_labels, labels[[0, 2, 4]])
    for k, i in enumerate((0, 2, 4)):
        np.testing.assert_array_equal(got[k], preprocess(images[i]).image)
