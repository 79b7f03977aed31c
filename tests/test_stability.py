"""``igw.stability``: several runs of a method on one image, the per-pixel spread and the
stability score. Exact answers on a linear model, parity with SciPy's Spearman
correlation, the top share on hand-made maps, the runs equal to the method's own
calls, input checks before any model call, progress and cancel, the report section.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

import ig_widget as igw
from ig_widget.points import ComputationCancelled
from ig_widget.stability import pairwise_rank_correlations, rank_correlation, top_count, top_share

from .models import CountingModel, linear_model, tiny_cnn

RNG = np.random.default_rng(11)
SHAPE = (8, 8, 3)
WEIGHTS = RNG.normal(size=(*SHAPE, 4)).astype(np.float32)
IMAGE = RNG.uniform(0, 255, SHAPE).astype(np.float32)
TARGET = 1


@pytest.fixture(scope="module")
def linear():
    return linear_model(WEIGHTS)


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn(size=8)


# --- exact answers ------------------------------------------------------------------


def test_deterministic_ig_over_identical_baselines_does_not_move(linear):
    result = igw.stability(linear, IMAGE, baselines=["black", "black", "black"], target=TARGET)
    expected = WEIGHTS[..., TARGET] * IMAGE  # IG of a linear model from black: w * (x - 0)
    for run in result.attributions:
        np.testing.assert_allclose(run, expected, rtol=1e-5, atol=1e-4)
    assert np.all(result.spread == 0.0) and np.all(result.relative_spread == 0.0)
    assert result.rank_correlation == 1.0 and result.top_share == 1.0
    np.testing.assert_array_equal(result.pairwise, np.ones((3, 3)))
    np.testing.assert_array_equal(result.mean, result.attributions[0])
    assert result.runs == ("baseline='black'",) * 3
    assert result.method == "integrated_gradients" and result.target == TARGET
    assert result.spread.shape == SHAPE[:2] and result.attributions.shape == (3, *SHAPE)


def test_draws_of_a_deterministic_baseline_do_not_move_either(linear):
    result = igw.stability(linear, IMAGE, draws=4, parameters={"baseline": "white"})
    assert np.all(result.spread == 0.0) and result.rank_correlation == 1.0
    assert result.top_share == 1.0 and result.runs == ("seed=0", "seed=1", "seed=2", "seed=3")
    assert result.parameters["baseline"] == "white"


def test_uniform_draws_are_the_methods_own_runs_with_seeds(linear):
    result = igw.stability(linear, IMAGE, draws=3, seed=5, target=TARGET, parameters={"steps": 8})
    assert result.parameters == {"steps": 8, "baseline": "uniform"}
    saliency = []
    for k in range(3):
        single = igw.integrated_gradients(
            linear, IMAGE, target=TARGET, baseline="uniform", seed=5 + k, steps=8
        )
        np.testing.assert_array_equal(result.attributions[k], single.attributions)
        saliency.append(single.attributions.sum(axis=2, dtype=np.float64))
    np.testing.assert_allclose(result.spread, np.std(saliency, axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.mean, np.mean(result.attributions, axis=0), rtol=1e-6)
    assert result.runs == ("seed=5", "seed=6", "seed=7")
    assert result.spread.max() > 0 and result.rank_correlation < 1.0
    assert result.points_used == 3 * 9


def test_smoothgrad_draws_and_baselines_of_guided_ig(cnn):
    image = IMAGE
    result = igw.stability(cnn, image, method="smoothgrad", draws=2, seed=3,
                           parameters={"samples": 4})  # fmt: skip
    for k in range(2):
        single = igw.smoothgrad(cnn, image, samples=4, seed=3 + k, target=result.target)
        np.testing.assert_array_equal(result.attributions[k], single.attributions)
    drawn = igw.stability(cnn, image, method="guided_ig", draws=2, parameters={"steps": 4})
    assert drawn.parameters == {"steps": 4, "baseline": "uniform"}  # black would not move
    for k in range(2):
        single = igw.guided_ig(cnn, image, baseline="uniform", seed=k, steps=4)
        np.testing.assert_array_equal(drawn.attributions[k], single.attributions)
    assert drawn.spread.max() > 0
    baselines = ["black", np.full(SHAPE, 128.0, np.float32)]
    guided = igw.stability(cnn, image, method="guided_ig", baselines=baselines,
                           parameters={"steps": 4})  # fmt: skip
    assert guided.runs == ("baseline='black'", "baselines[1] (array)")
    single = igw.guided_ig(cnn, image, baseline=baselines[1], steps=4, seed=0)
    np.testing.assert_array_equal(guided.attributions[1], single.attributions)


@pytest.mark.parametrize(
    ("method", "parameters", "drawn"),
    [
        ("occlusion", {"window": 4}, {"baseline": "uniform"}),
        ("xrai", {"steps": 4}, {"baselines": ("uniform", "uniform")}),
    ],
)
def test_draws_of_occlusion_and_xrai_start_from_uniform_noise(cnn, method, parameters, drawn):
    """Their default baselines (black; black and white) have nothing to draw: their draws
    were one map repeated, reported as perfectly stable."""
    result = igw.stability(cnn, IMAGE, method=method, draws=2, seed=4, parameters=parameters)
    assert result.parameters == {**parameters, **drawn}
    for k in range(2):
        single = getattr(igw, method)(
            cnn, IMAGE, target=result.target, seed=4 + k, **parameters, **drawn
        )
        np.testing.assert_array_equal(result.attributions[k], single.attributions)
    assert result.spread.max() > 0 and result.rank_correlation < 1.0


# --- the score against SciPy and hand-made maps ------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_rank_correlation_matches_scipy_spearmanr_pairwise(ties):
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(5, 12, 9))
    if ties:  # few distinct values: many ties, averaged as SciPy does
        maps = np.round(maps * 2)
    maps[1] = maps[0] + 0.1 * maps[1]  # a correlated pair
    pairwise = pairwise_rank_correlations(maps)
    for i, j in itertools.product(range(5), repeat=2):
        expected = 1.0 if i == j else stats.spearmanr(maps[i].ravel(), maps[j].ravel()).statistic
        assert pairwise[i, j] == pytest.approx(expected, abs=1e-12)
    pairs = [stats.spearmanr(maps[i].ravel(), maps[j].ravel()).statistic
             for i, j in itertools.combinations(range(5), 2)]  # fmt: skip
    assert rank_correlation(maps) == pytest.approx(np.mean(pairs), abs=1e-12)


def test_a_stability_result_matches_scipy(linear):
    result = igw.stability(linear, IMAGE, draws=3, parameters={"steps": 4})
    saliency = result.attributions.sum(axis=3, dtype=np.float64)
    for i, j in itertools.combinations(range(3), 2):
        expected = stats.spearmanr(saliency[i].ravel(), saliency[j].ravel()).statistic
        assert result.pairwise[i, j] == pytest.approx(expected, abs=1e-12)


def test_constant_maps_rank_nothing():
    constant, other = np.zeros((1, 3, 3)), np.arange(9.0).reshape(1, 3, 3)
    pairwise = pairwise_rank_correlations(np.concatenate([constant, constant, other]))
    assert pairwise[0, 1] == 1.0 and np.isnan(pairwise[0, 2])
    with pytest.warns(stats.ConstantInputWarning):
        assert np.isnan(stats.spearmanr(constant.ravel(), other.ravel()).statistic)


def test_top_share_on_hand_made_maps():
    # 10 x 10 pixels: the top 5 % are 5 pixels.
    base = np.arange(100.0)[::-1].reshape(10, 10)  # pixels 0..4 (row-major) are the top 5
    second = base.copy()
    second.flat[[3, 4]] = -1.0  # 3 and 4 leave its top; 5 and 6 enter
    third = base.copy()
    third.flat[4] = -1.0  # 4 leaves; 5 enters
    assert top_count(100, 5) == 5
    assert top_share(np.stack([base, base])) == 1.0
    assert top_share(np.stack([base, second])) == pytest.approx(3 / 5)
    assert top_share(np.stack([base, third])) == pytest.approx(4 / 5)
    assert top_share(np.stack([base, second, third])) == pytest.approx(3 / 5)
    assert top_share(np.stack([base, -base])) == 0.0
    # Ties are broken in row-major order, as insertion_deletion ranks pixels.
    flat = np.zeros((10, 10))
    assert top_share(np.stack([flat, flat])) == 1.0
    assert top_share(np.stack([base, second]), percent=10) == pytest.approx(8 / 10)
    # 101 pixels: the top 5 % are 6 (rounded up, as the colour key counts).
    assert top_count(101, 5) == 6


# --- input checks, progress, cancel --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(method="occlusions"), ValueError, "method: expected one of"),
        (dict(draws=3, baselines=["black", "white"]), ValueError, "draws: give draws or baselines"),
        (dict(draws=1), ValueError, "draws: expected an integer >= 2, got 1"),
        (dict(draws=2.5), TypeError, "draws: expected an integer"),
        (dict(method="blur_ig"), ValueError, "method: 'blur_ig' takes no seed"),
        (dict(method="xrai", baselines=["black", "white"]), ValueError, "takes no baseline"),
        (dict(baselines=["black"]), ValueError, "baselines: expected at least 2 baselines, got 1"),
        (dict(baselines="black"), TypeError, "baselines: expected a sequence of baselines"),
        (dict(baselines=["black", "grey"]), ValueError, "baselines\\[1\\]: expected one of"),
        (dict(baselines=["black", np.zeros((2, 2, 3))]), ValueError, "baselines\\[1\\]:"),
        (dict(parameters={"sampels": 3}), TypeError, "parameters: integrated_gradients takes no"),
        (dict(parameters={"seed": 3}), ValueError, "parameters: 'seed' is set by stability"),
        (dict(parameters={"target": 3}), ValueError, "parameters: 'target' is set by stability"),
        (dict(parameters=[1]), TypeError, "parameters: expected a dict"),
        (dict(seed=-1), ValueError, "seed: expected an integer >= 0, got -1"),
        (dict(top_percent=0), ValueError, "top_percent: expected a number in \\(0, 100\\]"),
        (dict(top_percent=101), ValueError, "top_percent: expected a number in"),
        (dict(progress=3), TypeError, "progress: expected a callable or None"),
        # The method's own checks, in its own words, before its first model call.
        (dict(parameters={"steps": 0}), ValueError, "steps: expected an integer >= 1, got 0"),
        (dict(method="smoothgrad", parameters={"noise": 2}), ValueError, "noise: expected a"),
        (dict(method="expected_gradients"), TypeError, "references: expected an array"),
    ],
)
def test_bad_input_is_refused_before_the_model_runs(cnn, kwargs, error, message):
    counting = CountingModel(cnn)
    with pytest.raises(error, match=message):
        igw.stability(counting, IMAGE, **kwargs)
    assert counting.calls == 0


def test_a_bad_image_or_model_is_refused_first(cnn):
    with pytest.raises(ValueError, match="image: expected 1, 3 or 4 channels"):
        igw.stability(cnn, np.zeros((8, 8, 2)))
    with pytest.raises(TypeError, match="model: expected a Keras model or callable, got NoneType"):
        igw.stability(None, IMAGE)


def test_progress_counts_every_run_and_cancel_stops(linear):
    seen = []
    igw.stability(linear, IMAGE, draws=3, parameters={"steps": 8},
                  progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen[-1][0] == seen[-1][1] == 3 * 9  # 9 path points, the last the image's own, per run
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    with pytest.raises(ComputationCancelled):
        igw.stability(linear, IMAGE, draws=3, progress=lambda done, total: False)


def test_the_report_section_shows_the_runs_and_the_two_pictures(linear):
    result = igw.stability(linear, IMAGE, draws=3, parameters={"steps": 4}, target=TARGET)
    section = result.report_section()
    assert section.title == "Stability of Integrated gradients"
    assert "run 3 times" in section.summary[0] and f"class {TARGET}" in section.summary[0]
    assert f"{result.rank_correlation:.3f}" in section.summary[1]
    (table,) = section.tables
    assert table.columns == ("run", "seed=0", "seed=1", "seed=2")
    assert [row[0] for row in table.rows] == list(result.runs)
    assert table.rows[0][1] == 1.0 and table.rows[0][2] == round(result.pairwise[0, 1], 4)
    (picture,) = section.pictures
    assert picture.png[:4] == b"\x89PNG"
