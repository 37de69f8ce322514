"""DensityOutlierDetector: IsolationForest's signs, calibrated p-values, explanations, checks."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar import MADEDensity
from skar.anomaly import DensityOutlierDetector

from .contract import FLOAT32_BATCH_CHECKS

TINY = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
# A MADE that learns a linear relation between columns in a few full-batch epochs.
SMALL = dict(hidden_layer_sizes=(16,), n_components=1, max_iter=60, batch_size=1000,
             early_stopping=False, learning_rate_init=5e-2, random_state=0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These models are tiny: on a shared, loaded machine two torch threads spend their time
    waiting for each other (a 2 s fit took 20-40 s); one thread gives the same numbers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _expected_failed_checks(detector):
    """A skar density needs complete rows to fit (its allow_nan tag is False) but scores rows
    with missing cells (their marginal density), so the detector's predict accepts NaN by
    design; scikit-learn's tag cannot say both."""
    if isinstance(detector.estimator, MADEDensity):
        return {"check_estimators_nan_inf": "predict scores NaN cells (marginal density)",
                **FLOAT32_BATCH_CHECKS}
    return {}


# The checks fit on a few rows, too few to calibrate a 5% false-alarm rate: the detector warns.
@pytest.mark.filterwarnings("ignore:With .* calibration rows:UserWarning")
@parametrize_with_checks(
    [
        DensityOutlierDetector(MADEDensity(**TINY), random_state=0),
        DensityOutlierDetector(KernelDensity(), contamination=0.1, random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def gaussian():
    """Standard 2-D Gaussian rows and one obvious outlier appended last."""
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(size=(400, 2)), [[7.0, -7.0]]])


# ---------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("inner", [KernelDensity(bandwidth=0.5), GaussianMixture(random_state=0)])
def test_signs_and_labels_agree_with_isolation_forest(gaussian, inner):
    det = DensityOutlierDetector(inner, contamination=0.02, random_state=0).fit(gaussian)
    iso = IsolationForest(contamination=0.02, random_state=0).fit(gaussian)
    probe = np.array([[7.0, -7.0], [0.0, 0.0]])  # the outlier, the mode
    np.testing.assert_array_equal(det.predict(probe), [-1, 1])
    np.testing.assert_array_equal(iso.predict(probe), [-1, 1])
    np.testing.assert_array_equal(np.sign(det.decision_function(probe)),
                                  np.sign(iso.decision_function(probe)))
    # Both score_samples are "higher is more normal".
    assert np.diff(det.score_samples(probe)) > 0 and np.diff(iso.score_samples(probe)) > 0
    np.testing.assert_allclose(det.decision_function(probe), det.score_samples(probe)
                               - det.offset_)
    assert det.predict(probe).dtype.kind == "i"
    np.testing.assert_array_equal(det.fit_predict(gaussian), det.fit(gaussian).predict(gaussian))


def test_score_samples_is_the_inner_log_density(gaussian):
    det = DensityOutlierDetector(KernelDensity(bandwidth=0.5), random_state=0).fit(gaussian)
    rest = np.setdiff1d(np.arange(len(gaussian)), det.calibration_indices_)
    kde = KernelDensity(bandwidth=0.5).fit(gaussian[rest])
    np.testing.assert_allclose(det.score_samples(gaussian), kde.score_samples(gaussian))
    assert len(det.calibration_indices_) == np.ceil(0.2 * len(gaussian))


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.25])
@pytest.mark.parametrize(
    "inner", [KernelDensity(bandwidth=0.5), GaussianMixture(2, random_state=0),
              MADEDensity(**TINY)], ids=["kde", "gmm", "made"])
def test_predict_flags_the_contamination_share_of_the_training_rows(gaussian, inner,
                                                                    contamination):
    det = DensityOutlierDetector(inner, contamination=contamination, random_state=0)
    n_flagged = (det.fit(gaussian).predict(gaussian) == -1).sum()
    # offset_ is the linear-interpolation percentile, so (without ties) the rows strictly below
    # it number ceil(c (n - 1)): 20, 40 and 100 of 401; IsolationForest flags as many.
    assert n_flagged == int(np.ceil(contamination * (len(gaussian) - 1)))
    iso = IsolationForest(contamination=contamination, random_state=0).fit(gaussian)
    assert n_flagged == (iso.predict(gaussian) == -1).sum()


# ---------------------------------------------------------------------------- p-values
@pytest.fixture(scope="module")
def calibrated_gmm():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(3000, 2))
    return DensityOutlierDetector(GaussianMixture(1, random_state=0), calibration_fraction=0.5,
                                  random_state=0).fit(X)


def test_pvalues_of_fresh_normal_rows_are_uniform(calibrated_gmm):
    fresh = np.random.RandomState(2).normal(size=(500, 2))
    p = calibrated_gmm.pvalues(fresh)
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    assert p.min() >= 1 / 1501 and p.max() <= 1.0


def test_pvalues_match_the_chi_square_tail_of_a_known_gaussian(calibrated_gmm):
    """For N(0, I_2) the log density falls with the radius r, so the p-value of a point at
    radius r is P(|X|^2 >= r^2) = exp(-r^2 / 2) (chi-square, 2 degrees of freedom)."""
    r = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    p = calibrated_gmm.pvalues(np.column_stack([r, np.zeros_like(r)]))
    np.testing.assert_allclose(p, np.exp(-(r**2) / 2), atol=0.035)


def test_auto_threshold_is_the_false_alarm_rate(calibrated_gmm):
    fresh = np.random.RandomState(3).normal(size=(4000, 2))
    pred = calibrated_gmm.predict(fresh)
    np.testing.assert_array_equal(pred == -1, calibrated_gmm.pvalues(fresh) <= 0.05)
    # 4000 fresh rows: the share flagged is 0.05 within about 4 binomial standard deviations.
    assert abs((pred == -1).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 4000)


def test_pvalues_by_hand_on_a_tiny_calibration_set():
    """Calibration log densities c; p(x) = (1 + #{c <= s(x)}) / (n + 1)."""
    X = np.arange(10.0)[:, None]
    det = DensityOutlierDetector(KernelDensity(bandwidth=1.0), calibration_fraction=0.4,
                                 false_alarm_rate=0.4, random_state=0).fit(X)
    c = det.calibration_scores_
    assert c.shape == (4,) and np.all(np.diff(c) >= 0)
    x = np.array([[4.5], [20.0], [-30.0]])
    s = det.score_samples(x)
    expected = (1 + (c[None, :] <= s[:, None]).sum(1)) / 5
    np.testing.assert_allclose(det.pvalues(x), expected)
    # a = 0.4 with n = 4: floor(0.4 * 5) = 2, so rows below the 2nd smallest score are flagged.
    assert det.offset_ == c[1]


def test_pvalues_of_a_tiny_made_are_uniform():
    """Validity does not depend on how well the density fits: a barely trained MADE too."""
    rng = np.random.RandomState(4)
    X = rng.normal(size=(800, 2)) * [1.0, 3.0]
    det = DensityOutlierDetector(MADEDensity(**TINY), calibration_fraction=0.5,
                                 random_state=0).fit(X)
    p = det.pvalues(rng.normal(size=(300, 2)) * [1.0, 3.0])
    assert stats.kstest(p, "uniform").pvalue > 1e-3


# ---------------------------------------------------------------------------- explanations
@pytest.fixture(scope="module")
def correlated():
    """x1 follows x0 closely; x2 is independent of both."""
    rng = np.random.RandomState(5)
    z = rng.normal(size=(500, 1))
    return np.hstack([z, z + 0.3 * rng.normal(size=(500, 1)), rng.normal(size=(500, 1))])


@pytest.fixture(scope="module")
def made_detector(correlated):
    return DensityOutlierDetector(MADEDensity(**SMALL), random_state=0).fit(correlated)


def test_explain_contributions_sum_to_minus_score_samples(made_detector, correlated):
    ex = made_detector.explain(correlated[:20])
    total = ex.groupby(level="row")["contribution"].sum().to_numpy()
    np.testing.assert_allclose(total, -made_detector.score_samples(correlated[:20]), rtol=1e-6)
    assert list(ex.index.names) == ["row", "rank"]
    assert ex.shape == (60, 4)
    assert (ex.groupby(level="row")["excess"].apply(lambda e: e.is_monotonic_decreasing)).all()


@pytest.mark.parametrize("rank_by", ["excess", "contribution"])
@pytest.mark.parametrize("shifted", [1, 2])
def test_a_column_shifted_far_out_ranks_first(made_detector, correlated, shifted, rank_by):
    row = correlated[:5].copy()
    row[:, shifted] += 8.0
    ex = made_detector.explain(row, n_top=1, rank_by=rank_by)
    assert (ex["feature"] == f"x{shifted}").all()
    assert (made_detector.predict(row) == -1).all()


def test_a_broken_relation_is_blamed_on_the_later_column(made_detector, correlated):
    """Shifting x0 alone makes x0 unusual *and* x1 | x0 (x1 should follow x0): both nats land
    in the top two, and x2, independent and untouched, last."""
    row = correlated[:5].copy()
    row[:, 0] += 8.0
    ex = made_detector.explain(row)
    top2 = ex.query("rank <= 2").groupby(level="row")["feature"].apply(set)
    assert all(t == {"x0", "x1"} for t in top2)
    assert (ex.query("rank == 3")["feature"] == "x2").all()


def _wide(explanation, column):
    return explanation.reset_index().pivot(index="row", columns="feature", values=column)


def test_excess_does_not_depend_on_units_but_contribution_does(made_detector, correlated):
    """Measuring x2 in units 1000 times smaller divides its density by 1000: +log(1000) nats on
    its every contribution, and nothing on its excess (skar standardises inside, so the model
    fitted on the rescaled data is the same)."""
    scaled = correlated * [1.0, 1.0, 1000.0]
    other = DensityOutlierDetector(MADEDensity(**SMALL), random_state=0).fit(scaled)
    ea, eb = made_detector.explain(correlated[:10]), other.explain(scaled[:10])
    shift = _wide(eb, "contribution") - _wide(ea, "contribution")
    np.testing.assert_allclose(shift, np.tile([0, 0, np.log(1000.0)], (10, 1)), atol=1e-3)
    np.testing.assert_allclose(_wide(eb, "excess"), _wide(ea, "excess"), atol=1e-3)
    assert ea["feature"].tolist() == eb["feature"].tolist()  # the same ranking


def test_mixed_type_frame_without_encoding():
    rng = np.random.RandomState(6)
    n = 600
    colour = rng.choice(["red", "white"], n)
    df = pd.DataFrame({
        "colour": pd.Categorical(colour, categories=["red", "white"]),
        "x": np.where(colour == "red", 0.0, 5.0) + rng.normal(size=n),
        "dry": rng.rand(n) < 0.3,
        "band": rng.choice(["lo", "hi"], n),
    }, index=[f"r{i}" for i in range(n)])
    det = DensityOutlierDetector(MADEDensity(**SMALL), contamination=0.01,
                                 random_state=0).fit(df)
    odd = pd.DataFrame({"colour": pd.Categorical(["red", "white"], categories=["red", "white"]),
                        "x": [5.0, 5.0], "dry": [False, False], "band": ["lo", "lo"]},
                       index=["odd", "normal"])
    np.testing.assert_array_equal(det.predict(odd), [-1, 1])
    assert det.pvalues(odd)[0] < 0.01
    ex = det.explain(odd, n_top=1)
    assert ex.loc[("odd", 1), "feature"] == "x" and ex.loc[("odd", 1), "value"] == 5.0
    assert det.feature_names_in_.tolist() == ["colour", "x", "dry", "band"]


# ---------------------------------------------------------------------------- bad input
def test_explain_needs_a_per_column_decomposition(gaussian):
    kde = DensityOutlierDetector(KernelDensity(), random_state=0).fit(gaussian)
    assert not hasattr(kde, "explain")
    with pytest.raises(AttributeError, match="has no attribute 'explain'") as info:
        kde.explain(gaussian)
    assert "KernelDensity has no per-column decomposition" in str(info.value.__cause__)
    ens = MADEDensity(hidden_layer_sizes=(8,), n_orderings=2, order="random", max_iter=2,
                      random_state=0)
    det = DensityOutlierDetector(ens, random_state=0).fit(gaussian)
    assert det.contribution_baseline_ is None
    with pytest.raises(ValueError, match="per-column terms.*single ordering"):
        det.explain(gaussian[:3])


@pytest.mark.parametrize(
    "params,pattern",
    [
        ({"contamination": 0.7}, "contamination"),
        ({"contamination": "most"}, "contamination"),
        ({"false_alarm_rate": 0.0}, "false_alarm_rate"),
        ({"false_alarm_rate": 1.0}, "false_alarm_rate"),
        ({"calibration_fraction": 0.0}, "calibration_fraction"),
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"estimator": LinearRegression()}, "estimator.*score_samples"),
    ],
)
def test_invalid_parameters_are_named(gaussian, params, pattern):
    params = {"estimator": KernelDensity(), "random_state": 0, **params}
    det = DensityOutlierDetector(**params)
    with pytest.raises(ValueError, match=pattern):
        det.fit(gaussian)


def test_inner_parameters_are_validated_too(gaussian):
    with pytest.raises(ValueError, match="bandwidth"):
        DensityOutlierDetector(KernelDensity(bandwidth=-1.0)).fit(gaussian)


def test_too_few_rows(gaussian):
    with pytest.raises(ValueError, match="1 sample"):
        DensityOutlierDetector(KernelDensity()).fit(gaussian[:1])
    with pytest.warns(UserWarning, match="flags nothing; hold out at least 19 calibration"):
        det = DensityOutlierDetector(KernelDensity(), random_state=0).fit(gaussian[:50])
    assert det.offset_ == -np.inf and (det.predict(gaussian) == 1).all()


def test_bad_input_at_predict_is_named(gaussian):
    det = DensityOutlierDetector(MADEDensity(**TINY), random_state=0).fit(gaussian[:, :2])
    before = det.score_samples(gaussian)
    with pytest.raises(ValueError, match="X has 3 features, but DensityOutlierDetector is "
                                         "expecting 2"):
        det.predict(np.hstack([gaussian, gaussian[:, :1]]))
    bad = gaussian.copy()
    bad[3, 1] = np.inf
    for method in (det.predict, det.pvalues, det.explain, det.decision_function):
        with pytest.raises(ValueError, match=r"column 1 holds \+inf"):
            method(bad)
    with pytest.raises(ValueError, match="0 sample"):
        det.predict(gaussian[:0])
    with pytest.raises(ValueError, match="n_top must be a positive integer"):
        det.explain(gaussian, n_top=0)
    with pytest.raises(ValueError, match="rank_by must be"):
        det.explain(gaussian, rank_by="nats")
    np.testing.assert_array_equal(det.score_samples(gaussian), before)


def test_unseen_category_is_named():
    df = pd.DataFrame({"c": ["a", "b"] * 60, "v": np.arange(120.0)})
    new = pd.DataFrame({"c": ["a", "zzz"], "v": [1.0, 2.0]})
    det = DensityOutlierDetector(MADEDensity(**TINY), random_state=0).fit(df)
    assert det.predict(new)[1] == -1  # probability zero: flagged (handle_unknown's default)
    det = DensityOutlierDetector(MADEDensity(handle_unknown="error", **TINY),
                                 random_state=0).fit(df)
    with pytest.raises(ValueError, match=r"column 'c' holds the category 'zzz'"):
        det.predict(new)


def test_unfitted_detector_raises_not_fitted(gaussian):
    det = DensityOutlierDetector(MADEDensity(**TINY))
    for call in (det.predict, det.decision_function, det.score_samples, det.pvalues,
                 det.explain):
        with pytest.raises(NotFittedError):
            call(gaussian)


def test_clone_pickle_and_seeded_calibration_split(gaussian):
    det = DensityOutlierDetector(KernelDensity(), random_state=3).fit(gaussian)
    again = clone(det).fit(gaussian)
    np.testing.assert_array_equal(det.calibration_indices_, again.calibration_indices_)
    other = DensityOutlierDetector(KernelDensity(), random_state=4).fit(gaussian)
    assert not np.array_equal(det.calibration_indices_, other.calibration_indices_)
    back = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(back.pvalues(gaussian), det.pvalues(gaussian))
    assert not hasattr(clone(det), "estimator_")
