"""Missing values: marginal scores, conditional draws, imputation (skar.missing).

Every number is checked against one computed another way: the log-sum-exp of the full model's
scores over all completions of a binary row, a numerical integral (scipy's quad) of the full
density over a missing continuous column, the enumerated conditional distribution (chi-square
of the draws), and the conditional mean and variance of the fitted density by quad.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar.missing import SkarImputer, impute, marginal_score_samples, sample_conditional
from skar.models.made import MADEDensity
from skar.models.masde import MASDEDensity
from skar.models.nade import NADEDensity, RNADEDensity
from skar.models.rnn import RNNDensity
from skar.models.transformer import ARTransformerDensity
from skar.models.wavenet import WaveNetDensity

FAST = dict(max_iter=4, early_stopping=False, random_state=0)
ALL_BINARY = np.array(list(itertools.product([0.0, 1.0], repeat=6)))
MASKS = [np.array(m, bool) for m in itertools.product([False, True], repeat=6)]


@pytest.fixture(scope="module")
def binary():
    rng = np.random.RandomState(0)
    z = rng.rand(400, 1) < 0.5  # a shared cause makes the columns dependent
    p = np.where(z, 0.8, 0.2) * np.linspace(0.6, 1.0, 6)
    return (rng.rand(400, 6) < p).astype(np.float64)


BINARY_MODELS = {
    "made": lambda: MADEDensity((16,), **FAST),
    "made-ensemble": lambda: MADEDensity((16,), n_orderings=3, order="random", **FAST),
    "nade": lambda: NADEDensity((8,), **FAST),
    "nade-orderings": lambda: NADEDensity((8,), n_orderings=2, order="random", **FAST),
    "nade-order-agnostic": lambda: NADEDensity((8,), order_agnostic=True, n_orderings=2,
                                               **FAST),
    # The other tabular models go through the same hooks (ordering, forward, families).
    "transformer": lambda: ARTransformerDensity(d_model=8, n_heads=2, n_layers=1,
                                                n_orderings=2, **FAST),
    "rnn": lambda: RNNDensity(hidden_size=8, **FAST),
    "masde": lambda: MASDEDensity(**FAST),
}


@pytest.fixture(scope="module", params=list(BINARY_MODELS))
def binary_model(request, binary):
    return request.param, BINARY_MODELS[request.param]().fit(binary)


def _completions_logp(est, row, mask):
    """log sum over all completions of the missing cells of the full model's probability."""
    comp = ALL_BINARY[(ALL_BINARY[:, ~mask] == row[~mask]).all(1)]
    return logsumexp(est.score_samples(comp))


def _with_nan(row, mask):
    r = row.copy()
    r[mask] = np.nan
    return r


# ---------------------------------------------------------------------------- exact marginals
def test_binary_marginals_equal_the_sum_over_completions(binary_model):
    name, est = binary_model
    rows = [ALL_BINARY[37], ALL_BINARY[10]]
    X = np.array([_with_nan(r, m) for r in rows for m in MASKS])
    ref = np.array([_completions_logp(est, r, m) for r in rows for m in MASKS])
    scores, std, method = marginal_score_samples(est, X)
    assert set(method) <= {"complete", "ordering", "enumeration"}  # all exact with 2^6
    assert "ordering" in set(method) and "enumeration" in set(method)
    np.testing.assert_allclose(scores, ref, atol=1e-5)
    assert (std == 0).all()
    np.testing.assert_allclose(est.score_samples(X), ref, atol=1e-5)
    # A row with every cell missing has marginal probability 1.
    assert est.score_samples(np.full((1, 6), np.nan))[0] == pytest.approx(0.0, abs=1e-6)


def test_ordering_is_claimed_exactly_where_the_missing_columns_come_last(binary):
    est = MADEDensity((16,), order=[2, 0, 1, 3, 4, 5], **FAST).fit(binary)
    X = np.array([_with_nan(ALL_BINARY[5], m) for m in MASKS])
    _, _, method = marginal_score_samples(est, X)
    pos = np.argsort([2, 0, 1, 3, 4, 5])
    for m, how in zip(MASKS, method):
        last_first = not m.any() or not (~m).any() or pos[~m].max() < pos[m].min()
        assert how == ("complete" if not m.any() else "ordering" if last_first
                       else "enumeration")


def test_importance_estimate_is_within_its_standard_error(binary):
    est = MADEDensity((16,), n_orderings=2, order="random", **FAST).fit(binary)
    rows, ref = [], []
    for r, m in [(ALL_BINARY[37], [1, 1, 0, 0, 1, 0]), (ALL_BINARY[60], [1, 0, 1, 0, 0, 1]),
                 (ALL_BINARY[3], [0, 1, 1, 1, 0, 0])]:
        m = np.array(m, bool)
        rows.append(_with_nan(r, m))
        ref.append(_completions_logp(est, r, m))
    scores, std, method = marginal_score_samples(est,
                                                 np.array(rows), max_completions=1,
                                                 n_draws=4000, random_state=1)
    assert set(method) == {"importance"}
    assert (std > 0).all() and (std < 0.05).all()
    assert (np.abs(scores - np.array(ref)) < 4 * std + 1e-3).all()


def test_per_feature_scores_mark_missing_cells_and_chain_the_observed(binary):
    est = MADEDensity((16,), **FAST).fit(binary)
    row, mask = ALL_BINARY[45], np.array([False, True, False, True, False, False])
    per = est.score_samples_per_feature(_with_nan(row, mask)[None])[0]
    assert np.isnan(per[mask]).all() and np.isfinite(per[~mask]).all()
    # Observed column d: log p(x_o<=d) - log p(x_o<d), each by enumeration.
    for d in np.flatnonzero(~mask):
        upto = ~mask & (np.arange(6) <= d)
        before = ~mask & (np.arange(6) < d)
        ref = _completions_logp(est, row, ~upto) - (
            _completions_logp(est, row, ~before) if before.any() else 0.0)
        assert per[d] == pytest.approx(ref, abs=1e-5)
    assert np.nansum(per) == pytest.approx(_completions_logp(est, row, mask), abs=1e-5)
    # Complete rows are unchanged.
    full = est.score_samples_per_feature(row[None])
    np.testing.assert_allclose(full.sum(1), est.score_samples(row[None]), atol=1e-5)


# ---------------------------------------------------------------------------- continuous
@pytest.fixture(scope="module")
def gaussian2():
    rng = np.random.RandomState(1)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    X = rng.multivariate_normal([0.0, 0.0], cov, size=1000) * [1.0, 2.0] + [1.0, -1.0]
    return X


@pytest.fixture(scope="module", params=["made", "rnade"])
def continuous_model(request, gaussian2):
    if request.param == "made":
        est = MADEDensity((16,), n_components=2, **{**FAST, "max_iter": 30})
    else:
        est = RNADEDensity((8,), n_components=2, **{**FAST, "max_iter": 30})
    return est.fit(gaussian2)


def _density_integral(est, fixed, col, fn=lambda t: np.ones_like(t)):
    """int fn(t) p(x with column col = t) dt: Simpson's rule on 8,001 points over +-12 scales
    of the column (the full model's scores of complete rows, one call)."""
    spec = est.schema_.columns[col]
    t = np.linspace(spec.mean - 12 * spec.scale, spec.mean + 12 * spec.scale, 8001)
    x = np.tile(np.asarray(fixed, dtype=np.float64), (t.size, 1))
    x[:, col] = t
    return integrate.simpson(fn(t) * np.exp(est.score_samples(x)), x=t)


def test_continuous_marginal_equals_the_integral(continuous_model):
    est = continuous_model
    # Column 1 missing comes after column 0: exact by ordering.
    for x0 in (0.3, 1.0, 2.4):
        scores, std, method = marginal_score_samples(est, [[x0, np.nan]])
        ref = np.log(_density_integral(est, [x0, 0.0], 1))
        assert method[0] == "ordering" and std[0] == 0
        assert scores[0] == pytest.approx(ref, abs=1e-4)
    # Column 0 missing comes first: an importance estimate.
    for x1 in (-2.0, 0.5):
        scores, std, method = marginal_score_samples(est, [[np.nan, x1]], n_draws=4000)
        ref = np.log(_density_integral(est, [0.0, x1], 0))
        assert method[0] == "importance" and 0 < std[0] < 0.05
        assert abs(scores[0] - ref) < 4 * std[0] + 1e-3
    # score_samples is marginal_score_samples with its defaults, draw for draw.
    X = np.array([[np.nan, -2.0], [0.4, np.nan], [np.nan, 0.5]])
    np.testing.assert_array_equal(est.score_samples(X),
                                  marginal_score_samples(est, X, return_std=False))


def test_conditional_draws_match_the_models_conditional_moments(continuous_model):
    est = continuous_model
    for fixed, col in (([1.5, 0.0], 1), ([0.0, 0.5], 0)):
        z = _density_integral(est, fixed, col)
        mean = _density_integral(est, fixed, col, lambda t: t) / z
        var = _density_integral(est, fixed, col, lambda t, m=mean: (t - m) ** 2) / z
        X = np.array([fixed] * 3000, dtype=np.float64)
        X[:, col] = np.nan
        draws, info = sample_conditional(est, X, n_draws=1, random_state=0, n_proposals=128,
                                         return_info=True)
        v = draws[0, :, col]
        expected = "ordering" if col == 1 else "importance"
        assert set(info["method"]) == {expected}
        # 3000 draws: the mean's standard error is sqrt(var / 3000); SIR's O(1/n_proposals)
        # bias is far below it at 128 proposals with a proposal this close to the target.
        assert abs(v.mean() - mean) < 4 * np.sqrt(var / 3000)
        # The sample variance's standard error is about var * sqrt(2 / 3000) (Gaussian-like).
        assert abs(v.var() - var) < 4 * var * np.sqrt(2 / 3000) + 0.02 * var
        if col == 0:
            assert (info["ess"] > 10).all()
        # The observed cell is the user's own value.
        assert (draws[0, :, 1 - col] == fixed[1 - col]).all()


def test_conditional_of_a_fitted_gaussian_is_near_the_closed_form(gaussian2):
    # The data are N(mu, S) with S = [[1, 1.6], [1.6, 4]]: x1 | x0 ~ N(-1 + 1.6 (x0 - 1), 1.44).
    # A linear-Gaussian regression (MADE without hidden layers, one component) is the right
    # family; a fit on 1,000 rows is not the true density, so the tolerance is a model error,
    # not a Monte Carlo one (whose standard error is 0.03): 0.15 in the mean (7.5% of the
    # column's scale) and 25% in the variance.
    est = MADEDensity((), n_components=1, learning_rate_init=1e-2,
                      **{**FAST, "max_iter": 30}).fit(gaussian2)
    X = np.array([[1.5, np.nan]] * 2000)
    v = sample_conditional(est, X, random_state=0)[0, :, 1]
    assert abs(v.mean() - (-1 + 1.6 * 0.5)) < 0.15
    assert abs(v.var() / 1.44 - 1) < 0.25


# ---------------------------------------------------------------------------- binary draws
def _exact_conditional(est, row, mask):
    comp = ALL_BINARY[(ALL_BINARY[:, ~mask] == row[~mask]).all(1)]
    logp = est.score_samples(comp)
    return comp, np.exp(logp - logsumexp(logp))


@pytest.mark.parametrize("how", ["ordering", "ordering-masks", "enumeration", "importance"])
def test_binary_draws_match_the_enumerated_conditional(binary, how):
    if how == "ordering-masks":  # three masks sharing the natural order: members by posterior
        est = MADEDensity((16,), n_orderings=3, **FAST).fit(binary)
    else:
        est = MADEDensity((16,), n_orderings=2 if how == "importance" else 1, order="random",
                          **FAST).fit(binary)
    pos = np.argsort(est.net_.module_.network.ordering(0).numpy())
    row = ALL_BINARY[41]
    if how.startswith("ordering"):
        mask = pos >= 3  # the last three columns of the ordering
        kwargs = {}
    else:
        mask = np.isin(pos, [0, 2, 4])
        kwargs = {"max_completions": 1, "n_proposals": 256} if how == "importance" else {}
    comp, p = _exact_conditional(est, row, mask)
    n = 4000
    X = np.tile(_with_nan(row, mask), (n, 1))
    draws, info = sample_conditional(est, X, n_draws=1, random_state=3, return_info=True,
                                     **kwargs)
    assert set(info["method"]) == {how.split("-")[0]}
    counts = np.array([(draws[0] == c).all(1).sum() for c in comp])
    assert counts.sum() == n
    chi2, pvalue = stats.chisquare(counts, p * n)
    assert pvalue > 1e-3, (chi2, counts, p * n)


# ---------------------------------------------------------------------------- imputation
def test_impute_fills_the_conditional_mode_and_mean(binary, continuous_model):
    est = MADEDensity((16,), **FAST).fit(binary)
    row, mask = ALL_BINARY[12], np.array([False, False, True, False, True, False])
    comp, p = _exact_conditional(est, row, mask)
    # The modes of the two missing cells' marginal conditionals.
    expected = [float(p[comp[:, d] == 1].sum() > 0.5) for d in np.flatnonzero(mask)]
    margins = [abs(p[comp[:, d] == 1].sum() - 0.5) for d in np.flatnonzero(mask)]
    filled = impute(est, _with_nan(row, mask)[None], n_draws=400, random_state=0)[0]
    np.testing.assert_array_equal(filled[~mask], row[~mask])
    for d, e, margin in zip(np.flatnonzero(mask), expected, margins):
        if margin > 0.1:  # a clear mode: 400 draws find it
            assert filled[d] == e
    cont = continuous_model
    z = _density_integral(cont, [1.5, 0.0], 1)
    mean = _density_integral(cont, [1.5, 0.0], 1, lambda t: t) / z
    var = _density_integral(cont, [1.5, 0.0], 1, lambda t: (t - mean) ** 2) / z
    out = cont.impute([[1.5, np.nan]], n_draws=2000, random_state=0)
    assert abs(out[0, 1] - mean) < 4 * np.sqrt(var / 2000)
    assert out[0, 0] == 1.5


def test_dataframes_with_categories_keep_their_dtypes():
    rng = np.random.RandomState(0)
    n = 300
    c = rng.choice(["a", "b", "c"], n)
    frame = pd.DataFrame({
        "c": pd.Categorical(c),
        "v": rng.normal(size=n) + (c == "b") * 3.0,
        "s": np.where(c == "a", "x", "y"),
    })
    est = MADEDensity((8,), **FAST).fit(frame)
    bad = frame.iloc[:6].copy()
    bad.loc[0, "c"] = np.nan
    bad.loc[1, "v"] = np.nan
    bad.loc[2, "s"] = None
    bad.loc[3, ["c", "s"]] = [np.nan, None]
    scores = est.score_samples(bad)
    assert np.isfinite(scores).all()
    # Rows 4 and 5 are complete: their scores are the usual ones.
    np.testing.assert_allclose(scores[4:], est.score_samples(frame.iloc[4:6]))
    filled = est.impute(bad, n_draws=20, random_state=0)
    assert isinstance(filled, pd.DataFrame) and not filled.isna().any().any()
    assert (filled.dtypes == frame.dtypes).all()
    pd.testing.assert_frame_equal(filled.iloc[4:], frame.iloc[4:6])
    assert filled.loc[0, "c"] in {"a", "b", "c"} and filled.loc[2, "s"] in {"x", "y"}
    draws = est.sample_conditional(bad, n_draws=3, random_state=0)
    assert draws.shape == (18, 3) and draws.index.names[0] == "draw"
    assert not draws.isna().any().any()
    assert (draws.loc[2, "v"].to_numpy() == bad["v"].to_numpy()).sum() == 5  # row 1 drawn


def test_skar_imputer_in_a_pipeline(gaussian2):
    X = gaussian2[:400].copy()
    rng = np.random.RandomState(0)
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(1), 0] = 0.0
    imp = SkarImputer(MADEDensity((8,), **FAST), n_draws=10, random_state=0)
    params = imp.get_params()
    assert params["n_draws"] == 10 and params["estimator__hidden_layer_sizes"] == (8,)
    copy = clone(imp)
    assert copy.get_params()["n_draws"] == 10 and not hasattr(copy, "estimator_")
    pipe = make_pipeline(imp, StandardScaler()).fit(X)
    out = pipe.transform(X)
    assert out.shape == X.shape and np.isfinite(out).all()
    filled = pipe[0].transform(X)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert pipe[0].n_complete_rows_ == int((~np.isnan(X).any(1)).sum())
    np.testing.assert_array_equal(pipe[0].get_feature_names_out(), ["x0", "x1"])
    # Deterministic for a fixed random_state; another strategy draws one value per cell.
    np.testing.assert_array_equal(pipe[0].transform(X), filled)
    one = clone(imp).set_params(strategy="sample").fit(X).transform(X)
    assert np.isfinite(one).all() and not np.allclose(one[~observed], filled[~observed])


@parametrize_with_checks([SkarImputer(MADEDensity((4,), max_iter=2, early_stopping=False,
                                                  random_state=0), n_draws=2,
                                      n_proposals=4, random_state=0)])
def test_skar_imputer_passes_sklearn_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------- errors
def test_fit_still_refuses_missing_values(binary):
    X = binary.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"column 2 holds NaN at row 3.*Impute or drop"):
        MADEDensity((4,), **FAST).fit(X)
    with pytest.raises(ValueError, match="every row of X has a missing cell"):
        SkarImputer(MADEDensity((4,), **FAST)).fit(np.full((5, 2), np.nan))


def test_bad_arguments_and_unsupported_models_are_named(binary):
    est = MADEDensity((4,), **FAST).fit(binary)
    X = _with_nan(binary[0], np.arange(6) == 2)[None]
    with pytest.raises(ValueError, match="n_draws must be a positive integer; got 0"):
        marginal_score_samples(est, X, n_draws=0)
    with pytest.raises(ValueError, match="strategy must be 'mean' or 'sample'; got 'median'"):
        impute(est, X, strategy="median")
    with pytest.raises(ValueError, match="X has 5 features"):
        est.score_samples(X[:, :5])
    seq = np.random.RandomState(0).normal(size=(40, 8))
    wave = WaveNetDensity(n_layers_per_block=2, residual_channels=4, dilation_channels=4,
                          skip_channels=4, max_iter=1, early_stopping=False,
                          random_state=0).fit(seq)
    seq[0, 3] = np.nan
    for fn in (impute, sample_conditional, marginal_score_samples):
        with pytest.raises(TypeError, match="WaveNetDensity does not support missing values"):
            fn(wave, seq[:2])
    with pytest.raises(TypeError, match="KernelDensity does not support missing values: it "
                                        "has no column schema"):
        SkarImputer(KernelDensity()).fit(binary)


def test_unknown_categories_still_score_minus_inf_next_to_missing_cells():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"c": rng.choice(["a", "b"], 200), "v": rng.normal(size=200)})
    est = MADEDensity((4,), **FAST).fit(frame)
    bad = pd.DataFrame({"c": ["zzz", "a"], "v": [np.nan, np.nan]})
    scores = est.score_samples(bad)
    assert np.isneginf(scores[0]) and np.isfinite(scores[1])
    with pytest.raises(ValueError, match="category 'zzz' at row 0"):
        est.set_params(handle_unknown="error").score_samples(bad)


def test_scores_are_deterministic_and_leave_global_rngs_alone(gaussian2):
    est = MADEDensity((8,), **FAST).fit(gaussian2)
    X = np.array([[np.nan, 0.3], [0.2, np.nan]])
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = est.score_samples(X)
    assert torch.rand(1) == before
    np.testing.assert_array_equal(a, est.score_samples(X))


# ---------------------------------------------------------------------------- conditional models
def test_conditional_model_marginals_and_draws_given_y():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 400)
    X = (rng.rand(400, 6) < np.where(y[:, None] == 1, 0.8, 0.2)).astype(np.float64)
    est = NADEDensity((8,), **FAST).fit(X, y)
    row = ALL_BINARY[22]
    for mask in MASKS[1::5]:
        comp = ALL_BINARY[(ALL_BINARY[:, ~mask] == row[~mask]).all(1)]
        for label in (0, 1):
            ref = logsumexp(est.score_samples(comp, [label] * len(comp)))
            got = est.score_samples(_with_nan(row, mask)[None], [label])[0]
            assert got == pytest.approx(ref, abs=1e-5)
    # Draws of the last three cells given the first three and y = 1: the enumerated p(x_m | x_o, y).
    mask = np.arange(6) >= 3
    comp = ALL_BINARY[(ALL_BINARY[:, ~mask] == row[~mask]).all(1)]
    logp = est.score_samples(comp, [1] * len(comp))
    p = np.exp(logp - logsumexp(logp))
    n = 3000
    draws = est.sample_conditional(np.tile(_with_nan(row, mask), (n, 1)), y=[1] * n,
                                   random_state=0)[0]
    counts = np.array([(draws == c).all(1).sum() for c in comp])
    assert stats.chisquare(counts, p * n).pvalue > 1e-3
