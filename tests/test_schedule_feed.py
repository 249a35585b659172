"""The training loop's parts that decide what a resumed run must repeat exactly: the learning-rate
schedule (and its state) and the batch feed's order, targets and weights."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fer_edge.errors import UsageError
from fer_edge.training.schedule import PLATEAU_PATIENCE, LearningRate

pytest.importorskip("keras")


def test_cosine_warms_up_then_falls_to_zero_over_the_epochs() -> None:
    rate = LearningRate("cosine", 0.05, warmup=5, epochs=10)
    assert rate.at_epoch_start(0, 0.0) == pytest.approx(0.05 / 5)
    assert rate.at_epoch_start(4, 0.0) == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 0.4)))
    assert rate.at_epoch_start(5, 0.0) == pytest.approx(0.025)
    assert rate.at_epoch_start(9, 0.0) < 0.002


def test_a_time_budget_runs_the_cosine_over_the_clock() -> None:
    rate = LearningRate("cosine", 0.1, warmup=0, epochs=None, time_budget=100.0)
    assert rate.at_epoch_start(40, 0.0) == pytest.approx(0.1)  # epochs do not count
    assert rate.at_epoch_start(1, 50.0) == pytest.approx(0.05)
    assert rate.at_epoch_start(2, 150.0) == pytest.approx(0.0)


def test_a_plateau_halves_the_rate_and_its_state_survives_a_checkpoint() -> None:
    rate = LearningRate("plateau", 0.01, warmup=5, epochs=30)
    rate.after_epoch(0.5)
    for _ in range(PLATEAU_PATIENCE - 1):
        rate.after_epoch(0.4)
    assert rate.at_epoch_start(5, 0.0) == pytest.approx(0.01)
    resumed = LearningRate("plateau", 0.01, warmup=5, epochs=30)
    resumed.restore(rate.state())  # a resume in the middle of a plateau ...
    resumed.after_epoch(0.45)  # ... counts on to it
    assert resumed.at_epoch_start(6, 0.0) == pytest.approx(0.005)
    assert LearningRate("none", 0.01, 5, 30).at_epoch_start(0, 0.0) == 0.01


def test_an_unknown_schedule_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        LearningRate("linear", 0.01, 5, 30)


def _feed(**options):  # type: ignore[no-untyped-def]
    from fer_edge.training.feed import Feed

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 48, 48)).astype(np.uint8)
    y = np.array([0] * 40 + [1] * 8 + [2] * 2)
    return Feed(x, y, 3, 16, seed=11, **options)


def test_each_epoch_order_depends_on_the_seed_and_the_epoch_alone() -> None:
    feed = _feed()
    assert len(next(feed.batches(0))) == 2  # no class weights: faces and targets alone
    assert feed.steps_per_epoch == 4  # 16 + 16 + 16 + 2: the last batch is kept
    from_start = list(itertools.islice(feed.batches(0), 12))
    from_two = list(itertools.islice(feed.batches(2), 4))
    for (a, *_), (b, *_) in zip(from_start[8:], from_two, strict=True):
        np.testing.assert_array_equal(a, b)
    epoch_faces = np.concatenate([f for f, *_ in from_start[:4]])
    assert len(epoch_faces) == 50 and len(np.unique(epoch_faces.reshape(50, -1), axis=0)) == 50
    assert not np.array_equal(from_start[0][0], from_start[4][0])  # a new order every epoch


def test_targets_are_smoothed_and_rare_classes_weigh_more() -> None:
    feed = _feed(label_smoothing=0.3, class_weights=True)
    faces, targets, weights = next(feed.batches(0))
    assert faces.shape == (16, 48, 48, 1) and faces.dtype == np.uint8
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert targets.max() == pytest.approx(0.7 + 0.1) and targets.min() == pytest.approx(0.1)
    labels = targets.argmax(axis=1)
    expected = {0: 50 / (3 * 40), 1: 50 / (3 * 8), 2: 50 / (3 * 2)}
    np.testing.assert_allclose(weights, [expected[int(c)] for c in labels], rtol=1e-6)
