"""The conditional families against closed forms (scipy) and exhaustive sums."""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp, softmax

from skar.distributions import Bernoulli, Categorical, ColumnConditionals, Mixture


def test_bernoulli_log_prob_is_closed_form():
    logits = torch.tensor([-3.0, 0.0, 2.5, 40.0])
    t = logits.numpy().astype(np.float64)
    for x in (0.0, 1.0):
        got = Bernoulli().log_prob(logits[:, None], torch.full((4,), x)).double().numpy()
        want = -np.logaddexp(0.0, -t if x else t)  # log sigmoid(+-t)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_categorical_normalises_and_matches_softmax():
    params = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    fam = Categorical(4)
    lp = torch.stack([fam.log_prob(params, torch.full((5,), k)) for k in range(4)], 1)
    np.testing.assert_allclose(lp.exp().sum(1).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(lp.numpy(), np.log(softmax(params.numpy(), 1)), atol=1e-5)


@pytest.mark.parametrize(
    "component,dist",
    [("gaussian", stats.norm), ("laplace", stats.laplace), ("logistic", stats.logistic)],
)
def test_mixture_log_prob_matches_scipy(component, dist):
    fam = Mixture(3, component, min_scale=1e-3)
    logits = np.array([0.2, -1.0, 0.5])
    loc = np.array([-2.0, 0.0, 1.5])
    raw = np.array([0.3, -0.5, 1.0])
    scale = 1e-3 + np.log1p(np.exp(raw))
    params = torch.tensor(np.concatenate([logits, loc, raw]), dtype=torch.float64)[None]
    x = np.linspace(-5, 5, 11)
    got = fam.log_prob(params.expand(11, 9), torch.tensor(x)).numpy()
    logw = logits - logsumexp(logits)
    want = logsumexp(logw[None] + dist.logpdf(x[:, None], loc[None], scale[None]), axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("component", ["gaussian", "laplace", "logistic"])
def test_mixture_samples_have_the_closed_form_mean_and_variance(component):
    fam = Mixture(2, component)
    params = torch.tensor([[0.0, np.log(3.0), -1.0, 2.0, 0.0, 0.5]], dtype=torch.float64)
    w = np.array([0.25, 0.75])
    loc = np.array([-1.0, 2.0])
    s = 1e-3 + np.log1p(np.exp(np.array([0.0, 0.5])))
    unit_var = {"gaussian": 1.0, "laplace": 2.0, "logistic": np.pi**2 / 3}[component]
    mean = w @ loc
    var = w @ (s**2 * unit_var + loc**2) - mean**2
    x = fam.sample(params.expand(200_000, 6), torch.Generator().manual_seed(1)).numpy()
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / x.size)
    assert abs(x.var() / var - 1) < 0.02


def test_mixture_scale_floor_keeps_the_density_finite():
    fam = Mixture(1, "gaussian", min_scale=1e-3)
    params = torch.tensor([[0.0, 0.0, -1e4]])  # raw scale -> softplus ~ 0
    lp = fam.log_prob(params, torch.zeros(1)).item()
    assert np.isfinite(lp)
    assert lp == pytest.approx(-np.log(1e-3 * np.sqrt(2 * np.pi)), rel=1e-5)


def test_mixture_rejects_unknown_component():
    with pytest.raises(ValueError, match="'cauchy'"):
        Mixture(2, "cauchy")


def test_categorical_sampling_frequencies():
    params = torch.tensor([[0.0, 1.0, -1.0, 2.0]]).expand(40_000, 4)
    x = Categorical(4).sample(params, torch.Generator().manual_seed(0)).long().numpy()
    counts = np.bincount(x, minlength=4)
    p = stats.chisquare(counts, softmax(np.array([0.0, 1.0, -1.0, 2.0])) * x.size).pvalue
    assert p > 1e-3


def test_column_conditionals_groups_mixed_families():
    fams = [Bernoulli(), Categorical(3), Mixture(2), Bernoulli(), Categorical(3)]
    cc = ColumnConditionals(fams)
    assert cc.n_params == 1 + 3 + 6 + 1 + 3
    g = torch.Generator().manual_seed(0)
    params = torch.randn(4, cc.n_params, generator=g, dtype=torch.float64)
    x = torch.tensor([[1, 2, 0.3, 0, 1], [0, 0, -1.0, 1, 2]] * 2, dtype=torch.float64)
    lp = cc.log_prob(params, x).numpy()
    # Independent reference: each column with scipy/numpy on its own slice.
    P, X = params.numpy(), x.numpy()
    ref = np.empty_like(X)
    ref[:, 0] = stats.bernoulli.logpmf(X[:, 0], 1 / (1 + np.exp(-P[:, 0])))
    ref[:, 1] = np.log(softmax(P[:, 1:4], 1))[np.arange(4), X[:, 1].astype(int)]
    lw = P[:, 4:6] - logsumexp(P[:, 4:6], 1, keepdims=True)
    sc = 1e-3 + np.log1p(np.exp(P[:, 8:10]))
    ref[:, 2] = logsumexp(lw + stats.norm.logpdf(X[:, 2:3], P[:, 6:8], sc), 1)
    ref[:, 3] = stats.bernoulli.logpmf(X[:, 3], 1 / (1 + np.exp(-P[:, 10])))
    ref[:, 4] = np.log(softmax(P[:, 11:14], 1))[np.arange(4), X[:, 4].astype(int)]
    np.testing.assert_allclose(lp, ref, rtol=1e-9)


# ---------------------------------------------------------------- marginal fits
def test_discrete_marginal_params_are_smoothed_weighted_frequencies():
    x = np.array([1, 1, 0, 1, 0, 0, 0, 1.0])
    w = np.array([1, 2, 1, 1, 3, 0, 1, 1.0])
    p = (1 + 2 + 1 + 1 + 0.5) / (w.sum() + 1.0)  # 5 weighted ones out of 10, half counts
    assert Bernoulli().marginal_params(x, w)[0] == pytest.approx(np.log(p / (1 - p)))
    codes = np.array([0, 2, 2, 2, 0, 3.0])
    theta = Categorical(4).marginal_params(codes, np.ones(6))
    np.testing.assert_allclose(softmax(theta), np.array([2.5, 0.5, 3.5, 1.5]) / 8.0)


@pytest.mark.parametrize("component", ["gaussian", "laplace", "logistic"])
def test_mixture_marginal_params_recover_a_known_two_component_mixture(component):
    """Weights, means and standard deviations of 0.6 N(-2, 0.5^2) + 0.4 N(1.5, 1), recovered
    from 4,000 draws; every component kind gets the same standard deviations."""
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.normal(-2, 0.5, 2400), rng.normal(1.5, 1.0, 1600)])
    theta = Mixture(2, component).marginal_params(x, np.ones_like(x), seed=3)
    logits, loc, raw = theta[:2], theta[2:4], theta[4:]
    scale = 1e-3 + np.log1p(np.exp(raw))
    to_std = {"gaussian": 1.0, "laplace": np.sqrt(2), "logistic": np.pi / np.sqrt(3)}
    std = scale * to_std[component]
    order = np.argsort(loc)
    np.testing.assert_allclose(softmax(logits)[order], [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(loc[order], [-2.0, 1.5], atol=0.08)
    np.testing.assert_allclose(std[order], [0.5, 1.0], atol=0.06)


def test_mixture_marginal_puts_a_floor_width_component_on_a_repeated_value():
    """40% of the rows are exactly 1.0: the fit gives that atom a component of weight 0.4 and
    the floor scale, so log p(1.0) ~ log 0.4 - log(min_scale) - log sqrt(2 pi)."""
    rng = np.random.RandomState(0)
    x = np.where(rng.rand(2000) < 0.4, 1.0, rng.normal(0, 1, 2000))
    fam = Mixture(3, min_scale=1e-3)
    theta = torch.tensor(fam.marginal_params(x, np.ones_like(x)))[None]
    at_atom = fam.log_prob(theta, torch.tensor([[1.0]]))[0, 0].item()
    expected = np.log(0.4) - np.log(1e-3) - 0.5 * np.log(2 * np.pi)
    assert at_atom == pytest.approx(expected, abs=0.1)


def test_mixture_marginal_with_fewer_values_than_components_keeps_the_mixture():
    x = np.array([0.0, 0.0, 0.0, 2.0] * 50)
    w = np.ones_like(x)
    three = Mixture(3, min_scale=1e-2).marginal_params(x, w)
    two = Mixture(2, min_scale=1e-2).marginal_params(x, w)
    grid = torch.linspace(-1, 3, 41)[:, None]
    lp3 = Mixture(3, min_scale=1e-2).log_prob(torch.tensor(three)[None], grid)
    lp2 = Mixture(2, min_scale=1e-2).log_prob(torch.tensor(two)[None], grid)
    np.testing.assert_allclose(lp3.numpy(), lp2.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(softmax(two[:2]).max(), 0.75, rtol=1e-6)


def test_column_conditionals_marginal_params_follow_the_output_layout():
    fams = [Bernoulli(), Mixture(2), Categorical(3)]
    cond = ColumnConditionals(fams)
    rng = np.random.RandomState(0)
    Z = np.column_stack([rng.rand(300) < 0.3, rng.normal(size=300), rng.choice(3, 300)])
    theta = cond.marginal_params(Z, seed=1)
    assert theta.shape == (cond.n_params,)
    for d, fam in enumerate(fams):
        np.testing.assert_allclose(
            theta[cond.offsets[d] : cond.offsets[d + 1]].numpy(),
            fam.marginal_params(Z[:, d], np.ones(300), seed=1).astype(np.float32),
        )
