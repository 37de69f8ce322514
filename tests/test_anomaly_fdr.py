"""DensityOutlierDetector: Benjamini-Hochberg control of the false discovery rate, and rows with
missing cells calibrated against the calibration rows masked alike."""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline

from skar import MADEDensity
from skar.anomaly import DensityOutlierDetector

TINY = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def bh_by_definition(p, q, c=Fraction(1)):
    """Rejections of the step-up procedure in exact rational arithmetic: sort, find the largest
    i with p_(i) <= i q / (m c), reject every p <= p_(i)."""
    p = [Fraction(v).limit_denominator(10**6) for v in p]
    m, q = len(p), Fraction(q).limit_denominator(10**6)
    ranked = sorted(p)
    passing = [i for i in range(1, m + 1) if ranked[i - 1] <= i * q / (m * c)]
    if not passing:
        return np.zeros(m, dtype=bool)
    cut = ranked[max(passing) - 1]
    return np.array([v <= cut for v in p])


def adjusted_by_definition(p, c=1.0):
    """min over j >= i of min(1, m c p_(j) / j), for every row, by brute force."""
    p = np.asarray(p, dtype=float)
    m = p.size
    ranked = np.sort(p)
    rank_of = np.argsort(np.argsort(p, kind="stable"), kind="stable")
    return np.array([min(min(1.0, m * c * ranked[j] / (j + 1)) for j in range(r, m))
                     for r in rank_of])


def corners(rng, n, radius, d=3):
    """Rows with every cell at +-radius: each observed cell is far out, whatever is missing."""
    return radius * rng.choice([-1.0, 1.0], size=(n, d))


def gaussian_rows(rng, n, d=2):
    return rng.normal(size=(n, d))


def anomalies(rng, n, radius, d=2):
    """Rows at a given distance from the mode, in random directions."""
    u = rng.normal(size=(n, d))
    return radius * u / np.linalg.norm(u, axis=1, keepdims=True)


class GaussianMarginal(BaseEstimator):
    """A Gaussian fitted by moments to the complete rows, scoring each row by the exact
    log marginal density of its observed cells (a stand-in for a skar density whose
    score_samples marginalises missing cells)."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        X = X[~np.isnan(X).any(axis=1)]
        self.mean_, self.cov_ = X.mean(axis=0), np.cov(X.T)
        return self

    def score_samples(self, X):
        X = np.asarray(X, dtype=float)
        out = np.zeros(len(X))
        observed = ~np.isnan(X)
        for pattern in np.unique(observed, axis=0):
            rows = (observed == pattern).all(axis=1)
            if pattern.any():
                mvn = stats.multivariate_normal(self.mean_[pattern],
                                                self.cov_[np.ix_(pattern, pattern)])
                out[rows] = np.atleast_1d(mvn.logpdf(X[rows][:, pattern]))
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# ---------------------------------------------------------------------------- the procedure
@pytest.mark.parametrize("method,c", [("bh", 1.0), ("by", None)])
def test_predict_flags_the_step_up_rejections(method, c):
    rng = np.random.RandomState(0)
    det = DensityOutlierDetector(GaussianMixture(1, random_state=0), fdr=0.1, fdr_method=method,
                                 calibration_fraction=0.5, random_state=0)
    det.fit(gaussian_rows(rng, 3000))  # 1500 calibration rows: BY can flag a few rows
    X = np.vstack([gaussian_rows(rng, 150), anomalies(rng, 15, 3.0), anomalies(rng, 15, 5.0)])
    p = det.pvalues(X)
    m = len(p)
    c = sum(Fraction(1, k) for k in range(1, m + 1)) if c is None else Fraction(1)
    expected = bh_by_definition(p, 0.1, c)
    assert 5 < expected.sum() < m  # a case where the cut-off matters
    np.testing.assert_array_equal(det.predict(X) == -1, expected)
    np.testing.assert_allclose(det.adjusted_pvalues(X), adjusted_by_definition(p, float(c)),
                               rtol=1e-12)
    # and an independent implementation agrees
    np.testing.assert_allclose(det.adjusted_pvalues(X),
                               stats.false_discovery_control(p, method=method), rtol=1e-12)


def test_p_values_exactly_on_the_bh_line_are_rejected():
    """With 19 calibration rows every p-value is a multiple of 1/20. Ten rows far out have
    p = 1/20, and with m = 20, q = 0.1 the BH line at i = 10 is 10 * 0.1 / 20 = 1/20 exactly:
    all ten are rejections, though m p / i may round above q in floating point."""
    rng = np.random.RandomState(1)
    det = DensityOutlierDetector(KernelDensity(bandwidth=0.5), fdr=0.1,
                                 calibration_fraction=19 / 60, random_state=0)
    det.fit(gaussian_rows(rng, 60))
    assert det.calibration_scores_.size == 19
    X = np.vstack([anomalies(rng, 10, 9.0), np.zeros((10, 2))])
    p = det.pvalues(X)
    np.testing.assert_allclose(p[:10], 1 / 20)
    assert (p[10:] > 0.5).all()
    expected = bh_by_definition(p, 0.1)
    assert expected.sum() == 10
    np.testing.assert_array_equal(det.predict(X) == -1, expected)


def test_without_fdr_predict_is_row_by_row():
    rng = np.random.RandomState(2)
    det = DensityOutlierDetector(GaussianMixture(1, random_state=0), random_state=0)
    det.fit(gaussian_rows(rng, 500))
    X = gaussian_rows(rng, 400)
    np.testing.assert_array_equal(det.predict(X) == -1, det.pvalues(X) <= 0.05)
    labels = det.set_params(fdr=0.05).predict(X)
    np.testing.assert_array_equal(labels == -1, det.adjusted_pvalues(X) <= 0.05)


# ---------------------------------------------------------------------------- the guarantee
def realised(fdr, n_null, n_anom, radius, reps, n_train=1000, method="bh"):
    """FDP and power of predict(fdr) over independent repetitions (fresh training, calibration
    and test rows each time), and the FDP of flagging each row with p <= fdr on its own."""
    rng = np.random.RandomState(3)
    fdp, power, naive = [], [], []
    for _ in range(reps):
        det = DensityOutlierDetector(GaussianMarginal(), fdr=fdr, fdr_method=method,
                                     calibration_fraction=0.4,
                                     random_state=rng.randint(2**31))
        det.fit(gaussian_rows(rng, n_train))
        X = np.vstack([gaussian_rows(rng, n_null), anomalies(rng, n_anom, radius)])
        flagged = det.predict(X) == -1
        null = np.arange(len(X)) < n_null
        fdp.append((flagged & null).sum() / max(flagged.sum(), 1))
        power.append((flagged & ~null).sum() / max(n_anom, 1))
        row_by_row = det.pvalues(X) <= fdr
        naive.append((row_by_row & null).sum() / max(row_by_row.sum(), 1))
    return np.array(fdp), np.array(power), np.array(naive)


def mc_bound(values, level):
    """level + 3 Monte Carlo standard errors of the mean of i.i.d. values (one-sided, about
    a 1-in-700 chance of exceeding it when the true mean is at the level)."""
    return level + 3 * values.std(ddof=1) / np.sqrt(values.size)


def test_realised_fdr_is_at_most_the_level_and_power_is_high():
    """BH on conformal p-values: FDR <= q m0 / m (Bates et al. 2023), over repetitions."""
    q, n_null, n_anom = 0.1, 180, 20
    fdp, power, naive = realised(q, n_null, n_anom, radius=6.0, reps=400)
    level = q * n_null / (n_null + n_anom)
    assert fdp.mean() <= mc_bound(fdp, level)
    # Not vacuous: BH does flag nulls (the bound is nearly attained) ...
    assert fdp.mean() > 0.5 * level
    # ... strong anomalies are found ...
    assert power.mean() > 0.95
    # ... and flagging each row at p <= q on its own does not control the FDR here.
    assert naive.mean() > 3 * mc_bound(fdp, level)


def test_all_null_batches_are_flagged_at_most_q_of_the_time():
    """With no anomaly every flag is false: FDR = P(any flag) <= q. (20 test rows against 400
    calibration rows, so that the smallest p-value, 1/401, can pass the first BH step q/m.)"""
    fdp, _, _ = realised(0.1, 20, 0, radius=0.0, reps=600)
    assert fdp.mean() <= mc_bound(fdp, 0.1)
    assert fdp.mean() > 0.05  # about 0.1 for continuous uniform nulls; not vacuous


# ---------------------------------------------------------------------------- missing cells
COV = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])


def correlated_rows(rng, n):
    return rng.multivariate_normal(np.zeros(3), COV, size=n)


def mcar(rng, X, rate, keep_one=True):
    """X with each cell missing independently with probability rate (a row keeps at least one
    observed cell when keep_one)."""
    X = X.astype(float).copy()
    miss = rng.rand(*X.shape) < rate
    if keep_one:
        full = miss.all(axis=1)
        miss[full, rng.randint(X.shape[1], size=full.sum())] = False
    X[miss] = np.nan
    return X


def test_pvalues_of_null_rows_with_missing_cells_are_uniform():
    """One fresh null row per repetition, with MCAR cells (40%): its p-value is uniform on the
    grid k / (n_cal + 1). Ranking its marginal score among the complete rows' scores is not."""
    rng = np.random.RandomState(4)
    p, naive = [], []
    for _ in range(500):
        det = DensityOutlierDetector(GaussianMarginal(), calibration_fraction=0.5,
                                     random_state=rng.randint(2**31))
        det.fit(correlated_rows(rng, 398))  # 199 calibration rows: p on a grid of 1/200
        x = mcar(rng, correlated_rows(rng, 1), 0.4)
        while not np.isnan(x).any():
            x = mcar(rng, correlated_rows(rng, 1), 0.4)
        p.append(det.pvalues(x)[0])
        s = det.score_samples(x)
        naive.append((1 + np.searchsorted(det.calibration_scores_, s, side="right")[0]) / 200)
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    assert stats.kstest(naive, "uniform").pvalue < 1e-6


def test_pvalue_of_a_pattern_by_hand():
    """p(x) = (1 + #{j : s_M(x_j) <= s_M(x)}) / (n_M + 1) over the calibration rows whose own
    missing cells lie within M, each scored by the closed-form marginal with M masked."""
    rng = np.random.RandomState(5)
    X = correlated_rows(rng, 200)
    X[rng.rand(200) < 0.3, 2] = np.nan  # some rows miss column 2 (fit uses complete rows)
    X[rng.rand(200) < 0.2, 0] = np.nan
    det = DensityOutlierDetector(GaussianMarginal(), calibration_fraction=0.5,
                                 random_state=0).fit(X)
    cal = X[det.calibration_indices_]
    mean, cov = det.estimator_.mean_, det.estimator_.cov_

    def marginal(rows, observed):
        return stats.multivariate_normal(mean[observed], cov[np.ix_(observed, observed)]
                                         ).logpdf(rows[:, observed])

    tests = np.array([[0.3, np.nan, np.nan], [np.nan, 2.5, 0.0], [1.0, -1.0, 0.5]])
    for x in tests:
        M = np.isnan(x)
        eligible = ~(np.isnan(cal) & ~M).any(axis=1)  # their missing cells lie within M
        c = np.atleast_1d(marginal(cal[eligible], ~M))
        s = marginal(x[None, :], ~M)
        expected = (1 + (c <= s).sum()) / (eligible.sum() + 1)
        assert det.pvalues(x[None, :])[0] == pytest.approx(expected, rel=1e-12)
    # the three rows together give the same as one at a time
    np.testing.assert_allclose(det.pvalues(tests),
                               [det.pvalues(t[None, :])[0] for t in tests], rtol=1e-12)
    # complete rows rank among the complete calibration rows only
    complete = ~np.isnan(cal).any(axis=1)
    c = np.sort(marginal(cal[complete], np.ones(3, dtype=bool)))
    s = marginal(tests[2:], np.ones(3, dtype=bool))
    assert det.pvalues(tests[2:])[0] == pytest.approx(
        (1 + (c <= s).sum()) / (complete.sum() + 1), rel=1e-12)


def test_n_observed_and_marginal_scores():
    rng = np.random.RandomState(6)
    det = DensityOutlierDetector(GaussianMarginal(), random_state=0).fit(correlated_rows(rng, 300))
    X = mcar(rng, correlated_rows(rng, 50), 0.4)
    scores, n_observed = det.score_samples(X, return_n_observed=True)
    np.testing.assert_array_equal(n_observed, 3 - np.isnan(X).sum(axis=1))
    assert n_observed.dtype.kind == "i"
    i = np.flatnonzero(n_observed == 2)[0]
    o = ~np.isnan(X[i])
    expected = stats.multivariate_normal(det.estimator_.mean_[o],
                                         det.estimator_.cov_[np.ix_(o, o)]).logpdf(X[i, o])
    assert scores[i] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(det.score_samples(X), scores)


@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_decision_and_predict_with_missing_cells_agree_with_the_pvalues(contamination):
    rng = np.random.RandomState(7)
    det = DensityOutlierDetector(GaussianMarginal(), contamination=contamination,
                                 calibration_fraction=0.5, random_state=0)
    det.fit(correlated_rows(rng, 800))
    X = mcar(rng, np.vstack([correlated_rows(rng, 300), corners(rng, 30, 4.0)]), 0.3)
    decision = det.decision_function(X)
    np.testing.assert_array_equal(det.predict(X) == -1, decision < 0)
    if contamination == "auto":
        np.testing.assert_array_equal(decision < 0, det.pvalues(X) <= 0.05)
    complete = ~np.isnan(X).any(axis=1)
    np.testing.assert_allclose(decision[complete], det.score_samples(X)[complete] - det.offset_)


def test_fdr_with_missing_cells_over_repetitions():
    """Mixed missing patterns: BH is not covered by the PRDS proof, BY is valid under any
    dependence. Both stay within the level here, and find strong anomalies."""
    rng = np.random.RandomState(8)
    q, n_null, n_anom = 0.1, 150, 15
    level = q * n_null / (n_null + n_anom)
    results = {"bh": ([], []), "by": ([], [])}
    for _ in range(120):
        # 1000 calibration rows: BY at m = 165 needs p-values below 15 q / (m c_m) = 0.0016
        det = DensityOutlierDetector(GaussianMarginal(), fdr=q, calibration_fraction=0.4,
                                     random_state=rng.randint(2**31))
        det.fit(correlated_rows(rng, 2500))
        X = mcar(rng, np.vstack([correlated_rows(rng, n_null), corners(rng, n_anom, 5.0)]), 0.3)
        null = np.arange(len(X)) < n_null
        for method, (fdp, power) in results.items():
            flagged = det.set_params(fdr_method=method).predict(X) == -1
            fdp.append((flagged & null).sum() / max(flagged.sum(), 1))
            power.append((flagged & ~null).sum() / n_anom)
    for method, (fdp, power) in results.items():
        fdp = np.array(fdp)
        assert fdp.mean() <= mc_bound(fdp, level), method
        assert np.mean(power) > 0.8, method


def test_an_estimator_without_nan_scoring_gets_a_named_error():
    rng = np.random.RandomState(9)
    X = gaussian_rows(rng, 200)
    det = DensityOutlierDetector(KernelDensity(), random_state=0).fit(X)
    bad = X[:5].copy()
    bad[3, 1] = np.nan
    for method in (det.predict, det.pvalues, det.decision_function, det.score_samples):
        with pytest.raises(ValueError, match=r"column 1 holds NaN \(a missing cell\) at row 3, "
                                             r"and KernelDensity cannot score.*SimpleImputer"):
            method(bad)
    frame = pd.DataFrame(X, columns=["a", "b"])
    det = DensityOutlierDetector(KernelDensity(), random_state=0).fit(frame)
    with pytest.raises(ValueError, match="column 'b' holds NaN"):
        det.predict(pd.DataFrame(bad, columns=["a", "b"]))
    # an imputing pipeline scores them, and is calibrated per pattern too
    det = DensityOutlierDetector(make_pipeline(SimpleImputer(), KernelDensity()),
                                 random_state=0).fit(X)
    assert np.isfinite(det.pvalues(bad)).all()


# ---------------------------------------------------------------------------- skar densities
def test_skar_density_rows_with_missing_cells_are_calibrated():
    """A MADE scores the observed cells' marginal; null rows with missing cells get uniform
    p-values (one fitted detector, many test rows: the KS bound is the two-sample one, since
    the p-values compare test scores with the calibration scores)."""
    rng = np.random.RandomState(10)
    train = correlated_rows(rng, 800)
    made = MADEDensity(hidden_layer_sizes=(16,), max_iter=15, random_state=0)
    det = DensityOutlierDetector(made, calibration_fraction=0.5, random_state=0).fit(train)
    X = mcar(rng, correlated_rows(rng, 400), 0.4)
    scores, n_observed = det.score_samples(X, return_n_observed=True)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(n_observed, 3 - np.isnan(X).sum(axis=1))
    p = det.pvalues(X)
    n_cal, m = det.calibration_scores_.size, len(X)
    critical = 1.95 * np.sqrt(1 / n_cal + 1 / m)  # two-sample KS at 0.1%
    assert stats.kstest(p, "uniform").statistic < critical
    naive = (1 + np.searchsorted(det.calibration_scores_, scores, side="right")) / (n_cal + 1)
    assert stats.kstest(naive, "uniform").statistic > critical
    # anomalies with missing cells are still found, and flagged under FDR control
    far = mcar(rng, corners(rng, 20, 5.0), 0.3)
    labels = det.set_params(fdr=0.1).predict(np.vstack([X, far]))
    assert (labels[m:] == -1).mean() > 0.8
    assert (labels[:m] == -1).mean() < 0.05


def test_skar_density_explain_skips_missing_cells():
    rng = np.random.RandomState(11)
    made = MADEDensity(hidden_layer_sizes=(16,), max_iter=15, random_state=0)
    det = DensityOutlierDetector(made, random_state=0).fit(correlated_rows(rng, 400))
    x = np.array([[np.nan, 0.2, 9.0]])
    ex = det.explain(x)
    assert ex["feature"].tolist() == ["x2", "x1", "x0"]  # the missing cell ranks last
    assert np.isnan(ex["contribution"].iloc[-1])
    assert ex["contribution"].sum() == pytest.approx(-det.score_samples(x)[0], rel=1e-5)
