"""DensityEnsemble: the uniform mixture of seeded fits, against closed forms and enumeration."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar import DensityEnsemble, MADEDensity

from .contract import (
    FLOAT32_BATCH_CHECKS,
    all_binary_rows,
    assert_samples_match_probabilities,
    assert_sums_to_one,
)

TINY = dict(hidden_layer_sizes=(8,), max_iter=3)
# A MADE that learns binary dependencies in a few full-batch epochs.
BINARY = dict(hidden_layer_sizes=(12,), max_iter=15, early_stopping=False, batch_size=100,
              learning_rate_init=1e-2)


@parametrize_with_checks(
    [DensityEnsemble(MADEDensity(**TINY), n_estimators=2, random_state=0),
     DensityEnsemble(KernelDensity(), n_estimators=2, random_state=0)],
    expected_failed_checks=lambda ens: (FLOAT32_BATCH_CHECKS
                                        if isinstance(ens.estimator, MADEDensity) else {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def bimodal():
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(-2, 0.5, size=(150, 2)), rng.normal(2, 1.0, size=(150, 2))])


@pytest.fixture(scope="module")
def binary():
    """Binary D=4 rows with dependencies, and a label they depend on."""
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=600)
    p = np.array([[0.9, 0.1, 0.5, 0.2], [0.1, 0.9, 0.3, 0.8]])[y]
    X = (rng.uniform(size=p.shape) < p).astype(np.int64)
    X[:, 3] ^= X[:, 0]
    return X, y


# ---------------------------------------------------------------------------- the mathematics
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_score_is_the_mean_density_of_the_members_in_closed_form(bimodal):
    """Gaussian mixtures with random initialisations differ from seed to seed; the ensemble's
    density is the mean of their densities, written out from their fitted parameters."""
    ens = DensityEnsemble(GaussianMixture(3, init_params="random", max_iter=1), n_estimators=3,
                          random_state=0).fit(bimodal)
    probe = np.array([[-2.0, -2.0], [0.0, 0.5], [2.5, 1.5], [8.0, -8.0]])

    def density(gm, x):
        return sum(w * stats.multivariate_normal(m, c).pdf(x)
                   for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_))

    members = np.array([density(m, probe) for m in ens.estimators_])
    # The members differ (by over 1% somewhere), so their mean means something.
    assert (np.ptp(members, axis=0) / members.mean(axis=0)).max() > 0.01
    np.testing.assert_allclose(ens.score_samples(probe), np.log(members.mean(axis=0)),
                               rtol=1e-9)
    assert ens.score(probe) == pytest.approx(np.log(members.mean(axis=0)).sum(), rel=1e-9)


def test_a_mixture_of_made_fits_sums_to_one_and_samples_its_probabilities(binary):
    X, _ = binary
    ens = DensityEnsemble(MADEDensity(**BINARY), n_estimators=3, random_state=0).fit(X)
    rows = all_binary_rows(4)
    assert_sums_to_one(ens, rows)
    probs = np.exp(np.stack([m.score_samples(rows) for m in ens.estimators_]))
    assert np.abs(probs[0] - probs[1]).sum() > 1e-3  # different seeds, different fits
    assert_samples_match_probabilities(ens, rows, n_samples=20_000)


def test_conditioning_reaches_every_member_and_each_conditional_normalises(binary):
    X, y = binary
    ens = DensityEnsemble(MADEDensity(**BINARY), n_estimators=2, random_state=0).fit(X, y)
    rows = all_binary_rows(4)
    p = {k: np.exp(ens.score_samples(rows, np.full(16, k))) for k in (0, 1)}
    for k in (0, 1):
        assert p[k].sum() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(p[0] - p[1]).sum() > 0.5  # y changes the density
    # Draws given y=1 follow p(x | y=1) (chi-square over the 16 rows).
    draws = ens.sample(8000, random_state=1, y=1)
    counts = np.bincount(draws @ (2 ** np.arange(3, -1, -1)), minlength=16)
    assert stats.chisquare(counts, p[1] / p[1].sum() * 8000).pvalue > 1e-3
    # An array y is read row by row.
    labels = np.array([0, 1] * 2000)
    mixed = ens.sample(4000, random_state=2, y=labels)
    first_bit = {k: mixed[labels == k, 0].mean() for k in (0, 1)}
    expected = {k: p[k][rows[:, 0] == 1].sum() for k in (0, 1)}
    for k in (0, 1):
        assert first_bit[k] == pytest.approx(expected[k], abs=0.04)


def test_rows_every_member_rules_out_score_minus_inf_without_warnings():
    X = np.array([[0.0], [1.0]] * 20)

    class PointMasses(BaseEstimator):
        """Mass 1/2 on 0 and 1, zero elsewhere."""

        def __init__(self, random_state=None):
            self.random_state = random_state

        def fit(self, X, y=None):
            return self

        def score_samples(self, X):
            x = np.asarray(X)[:, 0]
            with np.errstate(divide="ignore"):
                return np.where(np.isin(x, [0.0, 1.0]), np.log(0.5), -np.inf)

    ens = DensityEnsemble(PointMasses(), n_estimators=2, random_state=0).fit(X)
    with np.errstate(all="raise"):
        s = ens.score_samples(np.array([[0.0], [0.5]]))
    assert s[0] == pytest.approx(np.log(0.5)) and s[1] == -np.inf


# ---------------------------------------------------------------------------- seeds, plumbing
class _Recorder(BaseEstimator):
    """Records what fit received; a standard normal density in one dimension."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        self.seen_ = (None if y is None else np.asarray(y),
                      None if sample_weight is None else np.asarray(sample_weight))
        return self

    def score_samples(self, X):
        return stats.norm.logpdf(np.asarray(X, dtype=float)[:, 0])


def test_members_get_distinct_seeds_drawn_from_random_state_and_see_y_and_weights():
    X, y, w = np.zeros((5, 1)), np.arange(5), np.linspace(1, 2, 5)
    ens = DensityEnsemble(_Recorder(random_state=123), n_estimators=4, random_state=0)
    ens.fit(X, y, sample_weight=w)
    seeds = [m.random_state for m in ens.estimators_]
    assert len(set(seeds)) == 4 and 123 not in seeds
    assert seeds == list(np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=4))
    np.testing.assert_array_equal(ens.seeds_, seeds)
    for m in ens.estimators_:
        np.testing.assert_array_equal(m.seen_[0], y)
        np.testing.assert_array_equal(m.seen_[1], w)
    plain = DensityEnsemble(_Recorder(), n_estimators=2).fit(X)
    assert plain.estimators_[0].seen_ == (None, None)


def test_nested_random_states_are_seeded_and_the_ensemble_is_reproducible(bimodal):
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, init_params="random",
                                                           max_iter=3, random_state=7))
    a = DensityEnsemble(pipe, n_estimators=2, random_state=0).fit(bimodal)
    b = DensityEnsemble(pipe, n_estimators=2, random_state=0).fit(bimodal)
    got = [m.get_params()["gaussianmixture__random_state"] for m in a.estimators_]
    np.testing.assert_array_equal(got, a.seeds_)
    np.testing.assert_array_equal(a.score_samples(bimodal), b.score_samples(bimodal))
    assert pipe.get_params()["gaussianmixture__random_state"] == 7  # the template is untouched


def test_parallel_fits_equal_sequential_ones(bimodal):
    make = lambda n_jobs: DensityEnsemble(  # noqa: E731
        GaussianMixture(2, init_params="random", max_iter=3), n_estimators=3, n_jobs=n_jobs,
        random_state=0).fit(bimodal)
    np.testing.assert_array_equal(make(1).score_samples(bimodal), make(2).score_samples(bimodal))


def test_sampling_is_seeded_and_members_without_random_state_draw_with_their_own(bimodal):
    ens = DensityEnsemble(KernelDensity(bandwidth=0.3), n_estimators=2, random_state=0)
    ens.fit(bimodal)
    np.testing.assert_array_equal(ens.sample(50), ens.sample(50))
    assert not np.array_equal(ens.sample(50, random_state=1), ens.sample(50, random_state=2))
    gm = DensityEnsemble(GaussianMixture(2), n_estimators=2, random_state=0).fit(bimodal)
    assert gm.sample(7).shape == (7, 2)  # GaussianMixture.sample returns (X, labels)


def test_frames_in_frames_out_with_names_and_kinds():
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"x": rng.normal(size=300),
                       "colour": pd.Categorical(rng.choice(["red", "white"], 300))})
    ens = DensityEnsemble(MADEDensity(**TINY), n_estimators=2, random_state=0).fit(df)
    np.testing.assert_array_equal(ens.feature_names_in_, ["x", "colour"])
    draws = ens.sample(40, random_state=0)
    assert isinstance(draws, pd.DataFrame) and list(draws.columns) == ["x", "colour"]
    assert isinstance(draws["colour"].dtype, pd.CategoricalDtype)
    assert list(draws.index) == list(range(40))
    with pytest.raises(ValueError, match="feature names"):
        ens.score_samples(df[["colour", "x"]])


def test_clone_pickle_and_grid_search_over_the_ensemble_size(bimodal):
    ens = DensityEnsemble(KernelDensity(bandwidth=0.5), n_estimators=2, random_state=0)
    fitted = clone(ens).fit(bimodal)
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.score_samples(bimodal), fitted.score_samples(bimodal))
    gs = GridSearchCV(ens, {"estimator__bandwidth": [0.05, 0.5]}, cv=3).fit(bimodal)
    assert gs.best_params_["estimator__bandwidth"] == 0.5


# ---------------------------------------------------------------------------- bad input
def test_a_failed_fit_leaves_the_fitted_ensemble_as_it_was(bimodal):
    ens = DensityEnsemble(KernelDensity(bandwidth=0.5), n_estimators=2, random_state=0)
    ens.fit(bimodal)
    before = ens.score_samples(bimodal[:5])
    bad = np.vstack([bimodal[:, :1], [[np.nan]]])  # another width, and a NaN
    with pytest.raises(ValueError, match="NaN"):
        ens.fit(bad)
    assert ens.n_features_in_ == 2
    np.testing.assert_array_equal(ens.score_samples(bimodal[:5]), before)



def test_bad_parameters_and_calls_are_named():
    X = np.zeros((10, 1))
    with pytest.raises(InvalidParameterError, match="estimator"):
        DensityEnsemble(StandardScaler()).fit(X)
    with pytest.raises(InvalidParameterError, match="n_estimators"):
        DensityEnsemble(KernelDensity(), n_estimators=0).fit(X)
    ens = DensityEnsemble(KernelDensity(), n_estimators=2).fit(X)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got 0"):
        ens.sample(0)
    with pytest.raises(ValueError, match="y has 3 entries"):
        DensityEnsemble(_Recorder(), n_estimators=1).fit(X).sample(2, y=[0, 1, 2])
