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


# ------------------------------------------------- float32 cell probabilities, column-major
def _mp_log_cell(component, mid, gap):
    """log(F(mid + gap/2) - F(mid - gap/2)) with 40 digits (mirrored into the lower half line,
    where the CDF differences keep their digits), from the float64 values of the inputs."""
    import mpmath

    mpmath.mp.dps = 40
    cdf = {"gaussian": mpmath.ncdf,
           "laplace": lambda z: mpmath.mpf(0.5) * mpmath.exp(z) if z < 0
           else 1 - mpmath.mpf(0.5) * mpmath.exp(-z),
           "logistic": lambda z: 1 / (1 + mpmath.exp(-z))}[component]
    out = []
    for m, g in zip(np.asarray(mid, np.float64), np.asarray(gap, np.float64)):
        m, g = -abs(mpmath.mpf(m)), mpmath.mpf(g)
        out.append(float(mpmath.log(cdf(m + g / 2) - cdf(m - g / 2))))
    return np.array(out)


@pytest.mark.parametrize("component", ["gaussian", "laplace", "logistic"])
def test_float32_cell_probability_matches_mpmath_in_tails_and_thin_cells(component):
    """The float32 cell probabilities (every model's quantized columns when scoring) within
    2e-6 (1 + |log P|) of a 40-digit evaluation of the same float32 inputs: cells around 0,
    thin (width 1e-7) and wide (40) cells, far tails (|centre| up to 60), and both sides of
    the Gaussian's branch boundaries (width (1 + |centre|) = 0.25, upper edge -11)."""
    from skar.distributions import log_cell_prob

    rng = np.random.RandomState(0)
    n = 300
    mid = np.concatenate([rng.uniform(-3, 3, n), rng.uniform(-60, 60, n),
                          rng.normal(scale=0.01, size=n // 3)])
    gap = np.exp(rng.uniform(np.log(1e-7), np.log(40.0), mid.size))
    # the branch boundaries of the Gaussian, from both sides
    edge_mid = rng.uniform(-8, 8, 60)
    edge_gap = 0.25 / (1 + np.abs(edge_mid)) * np.repeat([0.999, 1.001], 30)
    tail_gap = np.exp(rng.uniform(np.log(1e-3), np.log(5.0), 60))
    tail_mid = -11.0 - tail_gap / 2 + np.repeat([-1e-3, 1e-3], 30)
    mid = np.concatenate([mid, edge_mid, tail_mid, -tail_mid]).astype(np.float32)
    gap = np.concatenate([gap, edge_gap, tail_gap, tail_gap]).astype(np.float32)
    lo = torch.tensor(mid) - 0.5 * torch.tensor(gap)
    got = log_cell_prob(component, lo, torch.tensor(gap))
    assert got.dtype == torch.float32
    # lo + gap/2 rounds once more in float32: score the centre the function saw
    seen_mid = (lo + 0.5 * torch.tensor(gap)).double().numpy()
    want = _mp_log_cell(component, seen_mid, gap)
    np.testing.assert_array_less(np.abs(got.double().numpy() - want) / (1 + np.abs(want)),
                                 2e-6)


def test_float32_quantized_gradient_is_finite_and_matches_float64():
    """Training differentiates the float32 cell probabilities: the gradient stays finite in
    the far tails and for thin cells (every branch sees safe inputs), and equals the exact
    float64 path's gradient to float32 accuracy."""
    rng = np.random.RandomState(2)
    fam = Mixture(3, step=0.1, offset=0.0)
    theta = np.concatenate([rng.normal(size=(64, 3)), rng.uniform(-20, 20, size=(64, 3)),
                            rng.uniform(-8, 3, size=(64, 3))], axis=1)
    x = torch.tensor(np.round(rng.uniform(-25, 25, 64), 1))
    grads = []
    for dtype in (torch.float32, torch.float64):
        p = torch.tensor(theta, dtype=dtype, requires_grad=True)
        fam.log_prob(p, x.to(dtype)).sum().backward()
        grads.append(p.grad.double().numpy())
    assert np.isfinite(grads[0]).all()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-3, atol=1e-3)


def test_column_major_parameters_score_as_scipy():
    """ColumnConditionals reads mixture parameters from a column-major (B, n_params) tensor
    (the layout NADE scores in) without copying them: continuous, quantized (two steps),
    atoms and a non-contiguous mixture group among discrete columns, in float32, against
    scipy in float64."""
    rng = np.random.RandomState(3)
    fams = [Mixture(2), Bernoulli(), Mixture(2, step=0.5, offset=0.25), Mixture(2),
            Mixture(2, step=0.1), Categorical(3), Mixture(2, atoms=(0.0,))]
    cc = ColumnConditionals(fams)
    B = 50
    theta = rng.normal(size=(B, cc.n_params))
    x = np.column_stack([rng.normal(size=B), rng.randint(2, size=B),
                         0.25 + 0.5 * rng.randint(-4, 4, size=B), rng.normal(size=B),
                         0.1 * rng.randint(-20, 20, size=B), rng.randint(3, size=B),
                         np.where(rng.rand(B) < 0.3, 0.0, rng.normal(size=B))])
    column_major = torch.tensor(theta.T.copy(), dtype=torch.float32).T
    assert not column_major.is_contiguous()
    got = cc.log_prob(column_major, torch.tensor(x, dtype=torch.float32)).double().numpy()

    def mixture(t, v, fam):
        logw = t[:, :2] - logsumexp(t[:, :2], axis=1, keepdims=True)
        if fam.step > 0:
            s = fam.step / 16 + np.logaddexp(0.0, t[:, 4:6])
            mid, gap = (v[:, None] - t[:, 2:4]) / s, fam.step / s
            log_cell = _mp_log_cell("gaussian", mid.ravel(), gap.ravel()).reshape(mid.shape)
            return logsumexp(logw + log_cell, axis=1) - np.log(fam.step)
        s = 1e-3 + np.logaddexp(0.0, t[:, 4:6])
        return logsumexp(logw + stats.norm.logpdf(v[:, None], t[:, 2:4], s), axis=1)

    off = cc.offsets
    want = np.empty_like(x)
    for d, fam in enumerate(fams):
        t, v = theta[:, off[d]:off[d + 1]], x[:, d]
        if isinstance(fam, Bernoulli):
            want[:, d] = -np.logaddexp(0.0, np.where(v == 1, -t[:, 0], t[:, 0]))
        elif isinstance(fam, Categorical):
            want[:, d] = (t - logsumexp(t, axis=1, keepdims=True))[np.arange(B), v.astype(int)]
        elif fam.atoms:
            log_a = t[:, 6:8] - logsumexp(t[:, 6:8], axis=1, keepdims=True)
            want[:, d] = np.where(v == 0.0, log_a[:, 0], log_a[:, 1] + mixture(t, v, fam))
        else:
            want[:, d] = mixture(t, v, fam)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
