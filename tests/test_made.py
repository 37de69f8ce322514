"""MADEDensity and FVSBN: the autoregressive property, normalisation, units, sampling,
consistency with known distributions."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from skar import MADEDensity
from skar.models.made import MADE

from .contract import (
    all_binary_rows,
    assert_autoregressive,
    assert_samples_match_probabilities,
    assert_sums_to_one,
    integrate_1d,
    integrate_2d,
    product_frame,
)

FAST = dict(max_iter=5, early_stopping=False, random_state=0)


@pytest.mark.parametrize("hidden", [(), (7,), (9, 6)])
@pytest.mark.parametrize("order", ["natural", "random"])
@pytest.mark.parametrize("direct", [True, False])
def test_jacobian_of_later_positions_is_exactly_zero_for_every_mask(hidden, order, direct):
    kinds = ["binary", "categorical", "continuous", "categorical", "continuous"]
    input_sizes = [1, 3, 1, 2, 1]
    output_sizes = [1, 3, 6, 2, 6]
    torch.manual_seed(0)
    # tanh has no dead units, so "the last column depends on earlier ones" cannot fail by
    # chance; the zero pattern is a property of the masks whatever the activation.
    net = MADE(input_sizes, kinds, output_sizes, hidden, n_masks=4, order=order,
               direct_connections=direct, activation="tanh", seed=3)
    offsets = np.concatenate([[0], np.cumsum(output_sizes)])
    slices = list(zip(offsets[:-1], offsets[1:]))
    for k in range(4):
        assert_autoregressive(
            lambda u, k=k: net.forward_units(u, k), net.inputs.n_units,
            net.inputs.column_of_unit.numpy(), slices, net.ordering(k).numpy(),
        )


def test_single_column_models_work():
    rng = np.random.RandomState(0)
    for X in (rng.normal(size=(200, 1)), (rng.rand(200, 1) < 0.3).astype(int)):
        est = MADEDensity(hidden_layer_sizes=(4,), **FAST).fit(X)
        assert est.score_samples(X).shape == (200,)
        assert est.sample(3).shape == (3, 1)


@pytest.fixture(scope="module")
def binary10():
    rng = np.random.RandomState(1)
    z = rng.rand(600, 1) < 0.5
    X = np.where(z, rng.rand(600, 10) < 0.8, rng.rand(600, 10) < 0.2).astype(int)
    return X


@pytest.mark.parametrize(
    "params",
    [
        dict(hidden_layer_sizes=(16,)),
        dict(hidden_layer_sizes=(16, 16), n_orderings=3, order="random"),
        dict(hidden_layer_sizes=()),
    ],
)
def test_binary_probabilities_sum_to_one(binary10, params):
    est = MADEDensity(**params, **FAST).fit(binary10)
    assert_sums_to_one(est, all_binary_rows(10))


def test_categorical_and_mixed_discrete_spaces_sum_to_one():
    rng = np.random.RandomState(0)
    levels = {"a": ["x", "y", "z"], "b": ["p", "q", "r", "s"], "c": ["u", "v"]}
    train = pd.DataFrame({c: pd.Categorical(rng.choice(lv, 300), categories=lv)
                          for c, lv in levels.items()})
    est = MADEDensity(hidden_layer_sizes=(8,), n_orderings=2, **FAST).fit(train)
    assert_sums_to_one(est, product_frame(levels))

    train["flag"] = rng.rand(300) < 0.3
    est = MADEDensity(hidden_layer_sizes=(8,), **FAST).fit(train)
    space = product_frame(levels)
    space = pd.concat([space.assign(flag=False), space.assign(flag=True)], ignore_index=True)
    assert_sums_to_one(est, space)


def test_continuous_density_integrates_to_one_in_1d_and_2d():
    rng = np.random.RandomState(0)
    x1 = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(1, 1, 300)])[:, None]
    est = MADEDensity(hidden_layer_sizes=(8,), n_components=3, **FAST).fit(x1)
    assert integrate_1d(est, -12, 12) == pytest.approx(1.0, abs=1e-2)

    X2 = rng.normal(size=(400, 2)) @ np.array([[1.0, 0.8], [0.0, 0.6]])
    est = MADEDensity(hidden_layer_sizes=(8,), n_components=2, n_orderings=2, order="random",
                      **FAST).fit(X2)
    assert integrate_2d(est, (-9, -9), (9, 9)) == pytest.approx(1.0, abs=1e-2)


def test_mixed_categorical_and_continuous_sums_and_integrates_to_one():
    rng = np.random.RandomState(0)
    c = rng.choice(["a", "b", "c"], 400)
    v = rng.normal(size=400) + (c == "b") * 2.0
    est = MADEDensity(hidden_layer_sizes=(8,), n_components=2, **FAST).fit(
        pd.DataFrame({"c": c, "v": v})
    )
    grid = np.linspace(-10, 12, 4001)
    total = 0.0
    for cat in "abc":
        df = pd.DataFrame({"c": [cat] * grid.size, "v": grid})
        total += np.trapezoid(np.exp(est.score_samples(df)), grid)
    assert total == pytest.approx(1.0, abs=1e-2)


def test_units_scaling_by_ten_shifts_log_density_by_d_log_10():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3)) + np.array([0.0, 5.0, -2.0])
    a = MADEDensity(hidden_layer_sizes=(8,), **FAST).fit(X).score_samples(X)
    b = MADEDensity(hidden_layer_sizes=(8,), **FAST).fit(10 * X).score_samples(10 * X)
    np.testing.assert_allclose(a - b, 3 * np.log(10.0), atol=1e-5)


def test_samples_match_probabilities_chi_square():
    rng = np.random.RandomState(0)
    X = (rng.rand(800, 4) < [0.2, 0.5, 0.7, 0.4]).astype(int)
    X[:, 3] = X[:, 0] ^ X[:, 1]
    est = MADEDensity(hidden_layer_sizes=(8,), n_orderings=2, order="random", **FAST).fit(X)
    assert_samples_match_probabilities(est, all_binary_rows(4), n_samples=20_000)


def test_fvsbn_is_logistic_regression_on_earlier_columns(binary10):
    """hidden_layer_sizes=() gives p(x_i=1|x_<i) = sigmoid(b_i + sum_{j<i} W_ij x_j)."""
    est = MADEDensity(hidden_layer_sizes=(), **FAST).fit(binary10)
    net = est.net_.module_.network
    W = net.direct.weight.detach().double().numpy()
    b = net.direct.bias.detach().double().numpy()
    W_low = np.tril(W, k=-1)
    # The effective weights are strictly lower triangular: the mask is exactly FVSBN's.
    np.testing.assert_array_equal(W * net.direct.mask[0].numpy(), W_low)
    X = all_binary_rows(10)
    logits = b + X @ W_low.T
    ref = (X * -np.logaddexp(0, -logits) + (1 - X) * -np.logaddexp(0, logits)).sum(1)
    np.testing.assert_allclose(est.score_samples(X), ref, rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) == 10 * 10 + 10  # D^2 weights + D biases


def _mixture_logpdf(X, w, means, covs):
    from scipy.stats import multivariate_normal

    comps = [np.log(wk) + multivariate_normal(m, c).logpdf(X) for wk, m, c in zip(w, means, covs)]
    return np.logaddexp.reduce(comps, axis=0)


def test_consistency_gaussian_mixture_2d_within_005_nats():
    rng = np.random.RandomState(0)
    w = np.array([0.3, 0.7])
    means = [np.array([-2.0, 1.0]), np.array([1.5, -0.5])]
    covs = [np.array([[0.5, 0.3], [0.3, 0.8]]), np.array([[1.0, -0.4], [-0.4, 0.6]])]

    def draw(n):
        z = rng.rand(n) < w[0]
        a = rng.multivariate_normal(means[0], covs[0], n)
        b = rng.multivariate_normal(means[1], covs[1], n)
        return np.where(z[:, None], a, b)

    X_train, X_test = draw(20_000), draw(20_000)
    est = MADEDensity(hidden_layer_sizes=(32,), n_components=4, max_iter=60, batch_size=256,
                      learning_rate_init=3e-3, random_state=0).fit(X_train)
    true_nll = -_mixture_logpdf(X_test, w, means, covs).mean()  # entropy estimate
    model_nll = -est.score_samples(X_test).mean()
    assert model_nll - true_nll < 0.05, (model_nll, true_nll)
    assert model_nll - true_nll > -0.02  # a KL divergence cannot be (much) negative


def test_consistency_binary_bayes_net_within_005_nats():
    # x0 -> x1 -> x3, x0 -> x2, (x1, x2) -> x4: entropy by exact enumeration of 32 rows.
    def cond(x):
        p0 = 0.3
        p1 = 0.8 if x[0] else 0.1
        p2 = 0.35 + 0.5 * x[0]
        p3 = 0.9 if x[1] else 0.25
        p4 = [0.05, 0.6, 0.7, 0.95][2 * x[1] + x[2]]
        return [p0, p1, p2, p3, p4]

    rows = all_binary_rows(5)
    probs = np.array([np.prod([p if xi else 1 - p for xi, p in zip(x, cond(x))]) for x in rows])
    assert probs.sum() == pytest.approx(1.0)
    entropy = -(probs * np.log(probs)).sum()
    rng = np.random.RandomState(0)
    X = rows[rng.choice(32, size=20_000, p=probs)]
    est = MADEDensity(hidden_layer_sizes=(16,), max_iter=40, batch_size=256,
                      learning_rate_init=3e-3, random_state=0).fit(X)
    cross_entropy = -(probs * est.score_samples(rows)).sum()  # exact, no test-set noise
    assert cross_entropy - entropy < 0.05


def test_mask_ensemble_is_a_mixture_not_an_average_of_logits(binary10):
    """Averaging log-probabilities of several masks would sum to < 1 (AM-GM); the mixture
    sums to exactly 1 and lies between the members' extremes."""
    est = MADEDensity(hidden_layer_sizes=(16,), n_orderings=4, order="random", **FAST).fit(binary10)
    X = all_binary_rows(10)
    assert_sums_to_one(est, X)
    module = est.net_.module_
    Z = torch.as_tensor(est.schema_.encode(X))
    with torch.no_grad():
        members = torch.stack([module.log_prob_per_feature(Z, k).sum(1) for k in range(4)])
    total = est.score_samples(X)
    assert (total <= members.max(0).values.numpy() + 1e-5).all()
    assert (total >= members.min(0).values.numpy() - 1e-5).all()
    assert np.exp(members.mean(0).numpy()).sum() < 0.999


def test_per_feature_scores_sum_to_score_samples():
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"v": rng.normal(size=200) * 3, "c": rng.choice(list("ab"), 200),
                       "b": rng.rand(200) < 0.5})
    est = MADEDensity(hidden_layer_sizes=(8,), **FAST).fit(df)
    per = est.score_samples_per_feature(df)
    assert per.shape == (200, 3)
    np.testing.assert_allclose(per.sum(1), est.score_samples(df), rtol=1e-6)
    assert (per[:, 1:] <= 0).all()  # discrete columns: log-probabilities
    ens = MADEDensity(hidden_layer_sizes=(8,), n_orderings=2, **FAST).fit(df)
    with pytest.raises(ValueError, match="2 orderings or masks"):
        ens.score_samples_per_feature(df)


def test_random_order_changes_only_the_ordering_not_the_normalisation():
    X = all_binary_rows(3)[[0, 1, 2, 3, 5, 7] * 30]
    est = MADEDensity(hidden_layer_sizes=(6,), order=[2, 0, 1], **FAST).fit(X)
    assert est.net_.module_.network.ordering(0).tolist() == [2, 0, 1]
    assert_sums_to_one(est, all_binary_rows(3))
    with pytest.raises(ValueError, match="permutation of range"):
        MADEDensity(order=[0, 0, 1], **FAST).fit(X)


def test_all_orders_of_tiny_binary_model_normalise():
    X = all_binary_rows(3)[[0, 3, 5, 6, 7] * 20]
    for perm in itertools.permutations(range(3)):
        est = MADEDensity(hidden_layer_sizes=(4,), order=list(perm), **FAST).fit(X)
        assert_sums_to_one(est, all_binary_rows(3))


def test_n_masks_is_a_deprecated_name_of_n_orderings(binary10):
    kw = dict(hidden_layer_sizes=(8,), order="random", **FAST)
    new = MADEDensity(n_orderings=3, **kw).fit(binary10)
    with pytest.warns(FutureWarning, match="n_masks was renamed n_orderings") as record:
        old = MADEDensity(n_masks=3, **kw).fit(binary10)
    # The warning points at the user's line (this file), not into skar or scikit-learn.
    assert [w.filename for w in record if w.category is FutureWarning] == [__file__]
    assert old.net_.module_.network.n_members == 3
    np.testing.assert_array_equal(old.score_samples(binary10), new.score_samples(binary10))
    with pytest.raises(ValueError, match="pass only n_orderings"):
        MADEDensity(n_masks=3, n_orderings=2, **kw).fit(binary10)
