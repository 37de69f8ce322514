"""NADEDensity, RNADEDensity and order-agnostic NADE: the autoregressive property,
normalisation, an independent numpy reference, the order-agnostic objective, sampling (the
incremental samplers against the generic loop), consistency and scikit-learn compatibility."""

import copy
import itertools
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar import NADEDensity, RNADEDensity
from skar.base import DensityModule, sample_plain
from skar.distributions import Bernoulli, Categorical, ColumnConditionals, Mixture
from skar.models import nade as nade_module
from skar.models.nade import (
    NADE,
    OrderAgnosticNADE,
    _TiedPass,
    sample_nade,
    sample_order_agnostic,
)

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
DEEP = dict(order_agnostic=True, hidden_layer_sizes=(12, 12))

KINDS = ["binary", "categorical", "continuous", "categorical", "continuous"]
INPUT_SIZES = [1, 3, 1, 2, 1]
OUTPUT_SIZES = [1, 3, 6, 2, 6]


def _slices(output_sizes):
    offsets = np.concatenate([[0], np.cumsum(output_sizes)])
    return list(zip(offsets[:-1], offsets[1:]))


@pytest.fixture(params=["one", 1, 2], ids=["one-block", "blocks-of-1", "blocks-of-2"])
def block(request, monkeypatch):
    """Positions per block of NADE's pass. At the tests' sizes the default is one block and one
    chunk of rows; blocks of 1 and of 2 (which does not divide D=5) exercise the carries
    between blocks that the cache-sized blocks of a large model rely on, and with blocks of 2
    the rows go through in chunks of 5 (which divides none of the tests' row counts)."""
    if request.param != "one":
        monkeypatch.setattr(nade_module, "_block_size",
                            lambda D, B, H, device: min(D, request.param))
    if request.param == 2:
        monkeypatch.setattr(nade_module, "_row_chunk", lambda D, H, device: 5)
    return request.param


# ---------------------------------------------------------------- autoregressive property
@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("order", ["natural", "random"])
@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_nade_jacobian_of_later_positions_is_exactly_zero_for_every_ordering(rescale, order,
                                                                             activation, block):
    # NADE draws its weights from torch's global generator: seeded here, so that with ReLU
    # the draw cannot depend on which tests ran before (7 units could all be inactive on the
    # test's inputs, and the last column then truly ignores them).
    torch.manual_seed(0)
    net = NADE(INPUT_SIZES, KINDS, OUTPUT_SIZES, n_hidden=7, n_orderings=4, order=order,
               rescale=rescale, activation=activation, seed=3)
    for k in range(4):
        assert_autoregressive(
            lambda u, k=k: net.forward_units(u, k), net.inputs.n_units,
            net.inputs.column_of_unit.numpy(), _slices(OUTPUT_SIZES), net.ordering(k).numpy(),
        )


def _plain_recurrence(net, u, member):
    """Every column's parameters by an explicit loop over the positions of ``ordering(member)``
    (no blocks, no triangle, no shifted inputs):
    ``h_i = act(rho_i a_i)``, ``theta_{o_i} = V_{o_i} h_i + b_{o_i}``,
    ``a_{i+1} = a_i + W[:, units of o_i] u[:, units of o_i]``, ``a_0 = c``."""
    act = {"logistic": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
    a = net.c.expand(u.shape[0], -1)
    theta = [None] * net.n_features
    sizes = net.outputs.output_sizes
    for i, d in enumerate(net.ordering(member).tolist()):
        h = act[net.activation_name](a if net.rho is None else net.rho[i] * a)
        theta[d] = h @ net.outputs.weight[d, : sizes[d]].T + net.outputs.bias[d, : sizes[d]]
        lo, hi = net.unit_offsets[d], net.unit_offsets[d + 1]
        a = a + u[:, lo:hi] @ net.W[:, lo:hi].T
    return torch.cat(theta, dim=1)


def _mixed_rows(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.column_stack([
        torch.randint(2, (n,), generator=g), torch.randint(3, (n,), generator=g),
        torch.randn(n, generator=g), torch.randint(2, (n,), generator=g),
        torch.randn(n, generator=g),
    ]).float()


@pytest.mark.parametrize("activation", ["logistic", "relu", "tanh"])
def test_training_and_scoring_pass_equal_a_plain_loop_over_positions(activation, block):
    """The blocked pass, as training runs it (train mode, with a gradient) and as scoring runs
    it (eval mode, no gradient), equals the recurrence written as a loop over positions: to
    float32 rounding in float32, to 1e-12 in float64; for every ordering, with categorical and
    continuous columns and RNADE's rescaling."""
    net = NADE(INPUT_SIZES, KINDS, OUTPUT_SIZES, n_hidden=16, n_orderings=5, order="random",
               rescale=True, activation=activation, seed=0)
    with torch.no_grad():
        net.rho.uniform_(0.5, 2.0)
    x = _mixed_rows(64)
    net64 = copy.deepcopy(net).double()
    for k in range(5):
        with torch.no_grad():
            plain = _plain_recurrence(net64, net64.inputs(x.double()), k)
        for m, tol in ((net, 1e-5), (net64, 1e-12)):
            u = m.inputs(x.to(m.W.dtype))
            training = m.train().forward_units(u.requires_grad_(), k).detach()
            with torch.no_grad():
                scoring = m.eval().forward_units(u.detach(), k)
            for got in (training, scoring):
                torch.testing.assert_close(got, plain.to(got.dtype), rtol=tol, atol=tol)


@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("activation", ["logistic", "relu", "tanh"])
def test_training_pass_gradient_equals_autograd_through_a_plain_loop(activation, rescale,
                                                                     block):
    """The hand-written backward of the blocked pass against autograd through the loop over
    positions, in float64, for the inputs and every parameter, with categorical and
    continuous columns and every ordering of an ensemble."""
    net = NADE(INPUT_SIZES, KINDS, OUTPUT_SIZES, n_hidden=6, n_orderings=3, order="random",
               rescale=rescale, activation=activation, seed=1).double()
    g = torch.Generator().manual_seed(0)
    if rescale:
        with torch.no_grad():
            net.rho.copy_(torch.rand(len(KINDS), generator=g, dtype=torch.float64) + 0.5)
    u = torch.randn(7, net.inputs.n_units, generator=g, dtype=torch.float64,
                    requires_grad=True)
    cotangent = torch.randn(7, sum(OUTPUT_SIZES), generator=g, dtype=torch.float64)
    for k in range(3):
        grads = {}
        for name, fn in (("pass", net.forward_units),
                         ("plain", lambda u, k: _plain_recurrence(net, u, k))):
            net.train().zero_grad()
            u.grad = None
            (fn(u, k) * cotangent).sum().backward()
            grads[name] = [u.grad] + [p.grad for p in net.parameters()]
        assert all(t is not None for t in grads["pass"])
        for (name, _), fast, plain in zip([("u", u)] + list(net.named_parameters()),
                                          grads["pass"], grads["plain"]):
            torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("units", [1, 3])
@pytest.mark.parametrize("rescale", [False, True])
def test_tied_pass_backward_passes_gradcheck(units, rescale):
    """Finite differences against the backward of the blocked pass, for blocks of 1, 3 (not
    dividing D=7) and 7 positions, every activation, one or several units per position."""
    g = torch.Generator().manual_seed(0)
    D, B, H, K = 7, 3, 4, 2

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    x, W, c, V, b = rand(D, B, units), rand(D, units, H), rand(H), rand(D, K, H), rand(D, K)
    rho = (torch.rand(D, generator=g, dtype=torch.float64) + 0.5).requires_grad_() \
        if rescale else None
    for activation in ("logistic", "relu", "tanh"):
        for block in (1, 3, 7):
            assert torch.autograd.gradcheck(
                lambda x, W, c, V, b, *r, a=activation, k=block: _TiedPass.apply(
                    x, W, c, r[0] if r else None, V, b, a, k),
                (x, W, c, V, b) + ((rho,) if rescale else ()))


def test_order_agnostic_jacobian_of_later_positions_is_exactly_zero_for_every_ordering():
    net = OrderAgnosticNADE(INPUT_SIZES, KINDS, OUTPUT_SIZES, hidden_layer_sizes=(9, 6),
                            n_orderings=3, order="random", activation="tanh", seed=1).eval()
    for k in range(3):
        assert_autoregressive(
            lambda u, k=k: net.forward_units(u, k), net.inputs.n_units,
            net.inputs.column_of_unit.numpy(), _slices(OUTPUT_SIZES), net.ordering(k).numpy(),
        )


# ---------------------------------------------------------------- normalisation
@pytest.fixture(scope="module")
def binary10():
    rng = np.random.RandomState(1)
    z = rng.rand(600, 1) < 0.5
    return np.where(z, rng.rand(600, 10) < 0.8, rng.rand(600, 10) < 0.2).astype(int)


@pytest.mark.parametrize(
    "params",
    [
        dict(hidden_layer_sizes=(16,)),
        dict(hidden_layer_sizes=(16,), n_orderings=3, order="random"),
        dict(**DEEP, n_orderings=2),
    ],
    ids=["nade", "nade-ensemble", "deep-ensemble"],
)
def test_binary_probabilities_sum_to_one(binary10, params):
    est = NADEDensity(**params, **FAST).fit(binary10)
    assert_sums_to_one(est, all_binary_rows(10))


@pytest.mark.parametrize("params", [dict(n_orderings=2), dict(**DEEP, n_orderings=2)],
                         ids=["nade-ensemble", "deep-ensemble"])
def test_categorical_and_mixed_discrete_spaces_sum_to_one(params):
    rng = np.random.RandomState(0)
    levels = {"a": ["x", "y", "z"], "b": ["p", "q", "r", "s"], "c": ["u", "v"]}
    train = pd.DataFrame({c: pd.Categorical(rng.choice(lv, 300), categories=lv)
                          for c, lv in levels.items()})
    train["flag"] = rng.rand(300) < 0.3
    est = NADEDensity(**{"hidden_layer_sizes": (8,), **params}, **FAST).fit(train)
    space = product_frame(levels)
    space = pd.concat([space.assign(flag=False), space.assign(flag=True)], ignore_index=True)
    assert_sums_to_one(est, space)


@pytest.mark.parametrize(
    "params",
    [dict(), dict(component="laplace", n_orderings=2, order="random"), dict(**DEEP, n_orderings=2)],
    ids=["rnade-mog", "rnade-mol-ensemble", "deep-ensemble"],
)
def test_rnade_integrates_to_one_in_1d_and_2d(params):
    rng = np.random.RandomState(0)
    x1 = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(1, 1, 300)])[:, None]
    kw = {"hidden_layer_sizes": (8,), "n_components": 3, **params}
    est = RNADEDensity(**kw, **FAST).fit(x1)
    assert integrate_1d(est, -12, 12) == pytest.approx(1.0, abs=1e-2)
    X2 = rng.normal(size=(400, 2)) @ np.array([[1.0, 0.8], [0.0, 0.6]])
    est = RNADEDensity(**kw, **FAST).fit(X2)
    assert integrate_2d(est, (-9, -9), (9, 9), n=301) == pytest.approx(1.0, abs=1e-2)


def test_ensemble_is_a_mixture_of_its_orderings_not_an_average_of_logs(binary10):
    est = NADEDensity(hidden_layer_sizes=(16,), n_orderings=4, order="random", **FAST)
    est.fit(binary10)
    X = all_binary_rows(10)
    module = est.net_.module_
    Z = torch.as_tensor(est.schema_.encode(X))
    with torch.no_grad():
        members = torch.stack([module.log_prob_per_feature(Z, k).sum(1) for k in range(4)])
    expected = np.log(np.exp(members.double().numpy()).mean(0))  # the uniform mixture
    np.testing.assert_allclose(est.score_samples(X), expected, rtol=1e-5, atol=1e-5)
    assert len({tuple(est.net_.module_.network.ordering(k).tolist()) for k in range(4)}) > 1


# ---------------------------------------------------------------- independent references
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_tiny_nade_matches_a_plain_numpy_loop_over_positions(binary10):
    """p(x) = prod_i p(x_{o_i} | x_{o_<i}) with h_i = sigmoid(c + sum_{j<i} W[:, o_j] x_{o_j}),
    recomputed from the module's weights with an explicit loop."""
    est = NADEDensity(hidden_layer_sizes=(5,), order=[3, 1, 0, 2, 4, 6, 5, 9, 7, 8], **FAST)
    est.fit(binary10)
    net = est.net_.module_.network
    W, c = net.W.detach().double().numpy(), net.c.detach().double().numpy()
    V = net.outputs.weight.detach().double().numpy()[:, 0, :]  # (D, H)
    b = net.outputs.bias.detach().double().numpy()[:, 0]
    X = all_binary_rows(10)
    ref = np.zeros(len(X))
    for n, x in enumerate(X):
        a = c.copy()
        for d in net.ordering(0).tolist():
            p1 = _sigmoid(b[d] + V[d] @ _sigmoid(a))
            ref[n] += np.log(p1 if x[d] else 1.0 - p1)
            a += W[:, d] * x[d]
    np.testing.assert_allclose(est.score_samples(X), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_tiny_rnade_matches_a_plain_numpy_loop_over_positions(activation):
    """RNADE-MoG: h_i = act(rho_i a_i), mixture of Gaussians from V_d h_i + b_d, scipy's
    normal pdf, in user units (the standardisation's Jacobian included)."""
    act = _sigmoid if activation == "logistic" else (lambda a: np.maximum(a, 0.0))
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
    est = RNADEDensity(hidden_layer_sizes=(4,), n_components=2, order=[2, 0, 1],
                       component="gaussian", activation=activation, **FAST).fit(X)
    net = est.net_.module_.network
    with torch.no_grad():  # make rho visibly different from 1
        net.rho.copy_(torch.tensor([0.5, 1.5, 2.0]))
    W, c = net.W.detach().double().numpy(), net.c.detach().double().numpy()
    rho = net.rho.detach().double().numpy()
    V, b = net.outputs.weight.detach().double().numpy(), net.outputs.bias.detach().double().numpy()
    mean, scale = X.mean(0), X.std(0)
    ref = np.zeros(len(X))
    for n, x in enumerate(X):
        z = (x - mean) / scale
        a = c.copy()
        for i, d in enumerate(net.ordering(0).tolist()):
            theta = V[d] @ act(rho[i] * a) + b[d]
            logits, mu, raw = theta[:2], theta[2:4], theta[4:6]
            s = 1e-3 + np.log1p(np.exp(raw))
            w = np.exp(logits) / np.exp(logits).sum()
            ref[n] += np.log((w * stats.norm.pdf(z[d], mu, s)).sum()) - np.log(scale[d])
            a += W[:, d] * z[d]
    np.testing.assert_allclose(est.score_samples(X), ref, rtol=1e-4, atol=1e-4)


def test_order_agnostic_objective_is_an_unbiased_estimate_of_the_mean_over_orderings():
    """E[D/(D-d) sum_{unobserved} log p(x_j | x_obs)] = (1/D!) sum_o log p(x | o), the latter
    by exact enumeration of all 6 orderings of D=3."""
    D = 3
    fams = [Bernoulli(), Categorical(3), Mixture(2)]
    net = OrderAgnosticNADE([1, 3, 1], ["binary", "categorical", "continuous"],
                            [f.n_params for f in fams], hidden_layer_sizes=(6,),
                            n_orderings=6, activation="tanh", seed=0)
    perms = np.array(list(itertools.permutations(range(D))))
    net.orderings.copy_(torch.as_tensor(perms))
    net.positions.copy_(torch.as_tensor(np.argsort(perms, axis=1)))
    cond = ColumnConditionals(fams)
    x = torch.tensor([[1.0, 2.0, -0.7]])
    with torch.no_grad():
        net.eval()
        exact = np.mean([cond.log_prob(net(x, k), x).sum().item() for k in range(6)])
        net.train()
        draws = net.training_log_prob(x.repeat(40_000, 1), cond).double().numpy()
    se = draws.std() / np.sqrt(draws.size)
    assert abs(draws.mean() - exact) < 4 * se + 1e-4, (draws.mean(), exact, se)


# ---------------------------------------------------------------- starting at the marginals
@pytest.mark.parametrize("params", [dict(hidden_layer_sizes=(8,)), dict(**DEEP)],
                         ids=["nade", "deep"])
def test_marginal_init_sets_the_training_rows_log_odds_as_output_biases(binary10, params):
    """With a learning rate of 1e-12 the fitted model is its starting point: the output bias
    of column d is the log-odds of p_d = (ones + 1/2) / (n + 1) on the rows skorch trains on
    (not on the rows held out for early stopping); a binary column keeps random output
    weights."""
    est = NADEDensity(**params, max_iter=1, learning_rate_init=1e-12, random_state=0)
    est.fit(binary10)
    train, _ = est.net_.get_split_datasets({"x": est.schema_.encode(binary10)})
    rows = binary10[np.asarray(train.indices)]
    p = (rows.sum(0) + 0.5) / (len(rows) + 1.0)
    net = est.net_.module_.network
    out = net.outputs if params.get("order_agnostic") is None else net.output
    bias = out.bias.detach().double().numpy().reshape(10, -1)[:, 0]
    np.testing.assert_allclose(bias, np.log(p / (1 - p)), rtol=1e-5, atol=1e-6)
    assert (out.weight.detach().abs().sum(-1) > 0).all()
    other = (binary10.sum(0) + 0.5) / (len(binary10) + 1.0)  # all rows: would differ
    assert np.abs(np.log(p) - np.log(other)).max() > 1e-4


@pytest.mark.parametrize("params", [dict(hidden_layer_sizes=(8,)), dict(**DEEP)],
                         ids=["rnade", "deep"])
def test_marginal_init_starts_continuous_columns_at_their_marginals(params):
    """Before training, each continuous column's conditional is its marginal: its score does
    not change when the other columns of the row are replaced, and it equals the 1-D
    mixture fitted to that column's training values alone."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3)) @ np.array([[1.0, 0.7, 0.2], [0, 0.7, 0.5], [0, 0, 0.6]])
    est = RNADEDensity(**params, n_components=3, max_iter=1, learning_rate_init=1e-12,
                       random_state=0).fit(X)
    per = est.score_samples_per_feature(X)
    shuffled = X.copy()
    shuffled[:, 1:] = rng.permutation(shuffled[:, 1:])  # new partners for column 0
    np.testing.assert_allclose(est.score_samples_per_feature(shuffled)[:, 0], per[:, 0],
                               rtol=1e-5, atol=1e-5)
    train, _ = est.net_.get_split_datasets({"x": est.schema_.encode(X)})
    z = est.schema_.encode(X)[np.asarray(train.indices), 2]
    fam = Mixture(3, est.component)
    theta = torch.as_tensor(fam.marginal_params(z, np.ones_like(z), 0))[None]
    z_all = torch.as_tensor(est.schema_.encode(X)[:, 2:3].astype(np.float64))
    marginal = fam.log_prob(theta, z_all).squeeze(1).numpy()
    marginal += est.schema_.log_jacobian_per_feature[2]
    np.testing.assert_allclose(per[:, 2], marginal, rtol=1e-4, atol=1e-4)


def test_marginal_init_keeps_a_repeated_value_that_a_random_start_misses():
    """A column that is exactly 1.0 in 40% of the rows (a clipped measurement) next to a
    correlated Gaussian column, modelled as a plain density (``point_masses=None``; by default
    the 1.0 would be a point mass scored by its probability): starting at the marginals, RNADE
    keeps a floor-width component on the repeated value, worth about
    log 0.4 + log(1 / (min_scale sqrt(2 pi))) = 5.07 nats on those rows; from a random start
    the same training budget finds much less. (The learning rate is 3e-4: Adam's steps at 1e-3
    move the component's mean by more than its width.)"""
    rng = np.random.RandomState(0)

    def draw(n):
        z = rng.normal(size=n)
        a = np.where(rng.rand(n) < 0.4, 1.0, z + 0.3 * rng.normal(size=n))
        return np.column_stack([z, a])

    X, X_test = draw(2000), draw(2000)
    kw = dict(hidden_layer_sizes=(16,), n_components=4, max_iter=30, learning_rate_init=3e-4,
              point_masses=None, quantization=None, random_state=0)
    init = RNADEDensity(**kw).fit(X)
    rand = RNADEDensity(init_params="random", **kw).fit(X)
    on_atom = X_test[:, 1] == 1.0
    per_init = init.score_samples_per_feature(X_test)[on_atom, 1].mean()
    per_rand = rand.score_samples_per_feature(X_test)[on_atom, 1].mean()
    assert per_init > 4.5 and per_init - per_rand > 2.0, (per_init, per_rand)
    assert init.score_samples(X_test).mean() > rand.score_samples(X_test).mean() + 1.0


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    "make",
    [
        lambda: NADEDensity(hidden_layer_sizes=(8,), **FAST),
        lambda: NADEDensity(hidden_layer_sizes=(8,), n_orderings=3, **FAST),
        lambda: NADEDensity(**DEEP, n_orderings=2, **FAST),
        lambda: RNADEDensity(hidden_layer_sizes=(8,), n_components=3, n_orderings=2, **FAST),
        lambda: RNADEDensity(hidden_layer_sizes=(8,), component="laplace", **FAST),
        lambda: RNADEDensity(**DEEP, n_components=3, n_orderings=2, **FAST),
    ],
    ids=["nade", "nade-ensemble", "deep-ensemble", "rnade-ensemble", "rnade-mol", "deep-rnade"],
)
def test_fast_sampler_draws_what_the_plain_loop_draws(make, block):
    """Same generator, same stream: both samplers draw the members alike and then every column
    in generation order from the same families. NADE's incremental sampler carries the running
    sum one position at a time while the plain loop recomputes it with the blocked pass, so
    their conditionals agree to float rounding: discrete draws must be *identical* (a draw
    compares a uniform with a probability; it could differ only if a uniform fell within
    ~1e-7 of a threshold), continuous draws (mu + s * eps with the same eps) must agree to
    float32 tolerance. In float64 the rows are still stored as float32 (the encoded-row
    contract), so the tolerance cannot go below float32 resolution."""
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"b": rng.rand(300) < 0.4, "c": rng.choice(list("xyz"), 300),
                       "v": rng.normal(size=300), "w": rng.normal(size=300)})
    est = make().fit(df)
    module = est.net_.module_
    kinds = np.array(est.schema_.kinds)
    disc, cont = kinds != "continuous", kinds == "continuous"
    dtypes = [(torch.float32, 1e-5)]
    if isinstance(module.network, NADE):  # the order-agnostic MLP runs in float32 only
        dtypes.append((torch.float64, 1e-6))
    for dtype, atol in dtypes:
        module.to(dtype)
        fast = est._sample_encoded(400, torch.Generator().manual_seed(5)).numpy()
        plain = sample_plain(module, 400, torch.Generator().manual_seed(5)).numpy()
        np.testing.assert_array_equal(fast[:, disc], plain[:, disc])
        np.testing.assert_allclose(fast[:, cont], plain[:, cont], atol=atol, rtol=atol)
    module.to(torch.float32)
    pd.testing.assert_frame_equal(est.sample(50, random_state=2), est.sample(50, random_state=2))


def test_incremental_sampler_draws_the_plain_loops_bits_on_a_long_binary_row(block):
    """60 binary columns (the MNIST case, shorter), logits large enough that draws are not
    trivial: every draw of the incremental sampler equals the plain loop's."""
    D = 60
    net = NADE([1] * D, ["binary"] * D, [1] * D, n_hidden=16, n_orderings=2, order="random",
               seed=0)
    with torch.no_grad():
        net.W.mul_(4.0)
        net.outputs.weight.mul_(4.0)
    module = DensityModule(net, ColumnConditionals([Bernoulli()] * D)).eval()
    plain = sample_plain(module, 200, torch.Generator().manual_seed(1))
    fast = sample_nade(module, 200, torch.Generator().manual_seed(1))
    assert torch.equal(fast, plain)
    assert 0.05 < plain.mean() < 0.95


def test_estimators_sample_with_their_networks_own_sampler(binary10):
    """order_agnostic picks the network class; sampling asks the fitted network, so it follows
    what was fitted, not the current value of the parameter."""
    tied = NADEDensity(hidden_layer_sizes=(8,), **FAST).fit(binary10)
    deep = NADEDensity(**DEEP, **FAST).fit(binary10)
    assert type(tied.net_.module_.network) is NADE
    assert type(deep.net_.module_.network) is OrderAgnosticNADE
    for est, sampler in ((tied, sample_nade), (deep, sample_order_agnostic)):
        expected = sampler(est.net_.module_, 30, torch.Generator().manual_seed(3))
        est.set_params(order_agnostic=not est.order_agnostic)  # not refitted
        got = est._sample_encoded(30, torch.Generator().manual_seed(3))
        assert torch.equal(got, expected)


@pytest.mark.parametrize("params",
                         [dict(n_orderings=2, order="random"), dict(**DEEP, n_orderings=2)],
                         ids=["nade-ensemble", "deep-ensemble"])
def test_samples_match_probabilities_chi_square(params):
    rng = np.random.RandomState(0)
    X = (rng.rand(800, 4) < [0.2, 0.5, 0.7, 0.4]).astype(int)
    X[:, 3] = X[:, 0] ^ X[:, 1]
    est = NADEDensity(**{"hidden_layer_sizes": (8,), **params}, **FAST).fit(X)
    assert_samples_match_probabilities(est, all_binary_rows(4), n_samples=20_000)


def test_categorical_samples_match_probabilities_chi_square():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.choice(3, 500), rng.choice(4, 500, p=[0.1, 0.2, 0.3, 0.4])])
    est = NADEDensity(hidden_layer_sizes=(8,), categorical_features=[0, 1], n_orderings=2,
                      **FAST).fit(X)
    assert_samples_match_probabilities(est, np.array(list(itertools.product(range(3), range(4)))),
                                       n_samples=20_000)


# ---------------------------------------------------------------- consistency
def test_consistency_rnade_on_a_2d_gaussian_mixture_within_005_nats():
    rng = np.random.RandomState(0)
    w = np.array([0.3, 0.7])
    means = [np.array([-2.0, 1.0]), np.array([1.5, -0.5])]
    covs = [np.array([[0.5, 0.3], [0.3, 0.8]]), np.array([[1.0, -0.4], [-0.4, 0.6]])]

    def draw(n):
        z = rng.rand(n) < w[0]
        a = rng.multivariate_normal(means[0], covs[0], n)
        b = rng.multivariate_normal(means[1], covs[1], n)
        return np.where(z[:, None], a, b)

    X_train, X_test = draw(8_000), draw(20_000)
    est = RNADEDensity(hidden_layer_sizes=(32,), n_components=4, max_iter=25, batch_size=512,
                       learning_rate_init=1e-2, random_state=0).fit(X_train)
    comps = [np.log(wk) + stats.multivariate_normal(m, c).logpdf(X_test)
             for wk, m, c in zip(w, means, covs)]
    true_nll = -np.logaddexp.reduce(comps, axis=0).mean()  # entropy estimate
    model_nll = -est.score_samples(X_test).mean()
    assert -0.02 < model_nll - true_nll < 0.05, (model_nll, true_nll)


def test_consistency_rnade_mol_on_a_laplace_chain_within_005_nats():
    """x1 ~ Laplace(0, 1), x2 | x1 ~ Laplace(0.8 x1, 0.5): the entropy is exactly
    (1 + log 2) + (1 + log 1) nats, the sum of the two Laplace entropies 1 + log 2b."""
    rng = np.random.RandomState(0)

    def draw(n):
        x1 = rng.laplace(0.0, 1.0, n)
        return np.column_stack([x1, 0.8 * x1 + rng.laplace(0.0, 0.5, n)])

    entropy = (1 + np.log(2.0)) + (1 + np.log(1.0))
    est = RNADEDensity(hidden_layer_sizes=(32,), n_components=3, component="laplace",
                       max_iter=40, batch_size=256, learning_rate_init=3e-3,
                       random_state=0).fit(draw(10_000))
    model_nll = -est.score_samples(draw(40_000)).mean()
    assert -0.02 < model_nll - entropy < 0.05, (model_nll, entropy)


def test_consistency_nade_on_a_binary_bayes_net_within_005_nats():
    def cond(x):
        p = [0.3, 0.8 if x[0] else 0.1, 0.35 + 0.5 * x[0], 0.9 if x[1] else 0.25,
             [0.05, 0.6, 0.7, 0.95][2 * x[1] + x[2]]]
        return p

    rows = all_binary_rows(5)
    probs = np.array([np.prod([p if xi else 1 - p for xi, p in zip(x, cond(x))]) for x in rows])
    entropy = -(probs * np.log(probs)).sum()
    rng = np.random.RandomState(0)
    X = rows[rng.choice(32, size=5_000, p=probs)]
    est = NADEDensity(hidden_layer_sizes=(16,), max_iter=15, batch_size=500,
                      learning_rate_init=2e-2, random_state=0).fit(X)
    cross_entropy = -(probs * est.score_samples(rows)).sum()  # exact, no test-set noise
    assert cross_entropy - entropy < 0.05


# ---------------------------------------------------------------- scikit-learn API
@parametrize_with_checks(
    [
        NADEDensity(hidden_layer_sizes=(6,), max_iter=2, random_state=0),
        RNADEDensity(hidden_layer_sizes=(6,), n_components=2, n_orderings=2, max_iter=2,
                     early_stopping=False, random_state=0),
        RNADEDensity(hidden_layer_sizes=(6, 6), n_components=2, order_agnostic=True,
                     n_orderings=2, max_iter=2, early_stopping=False, random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_clone_and_pickle_round_trip():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    for est in (RNADEDensity(hidden_layer_sizes=(6,), n_components=2, n_orderings=2, **FAST),
                RNADEDensity(**DEEP, n_components=2, n_orderings=2, **FAST)):
        est.fit(X)
        c = clone(est)
        assert c.get_params() == est.get_params() and not hasattr(c, "net_")
        back = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))
        np.testing.assert_array_equal(back.sample(5, random_state=1), est.sample(5, random_state=1))


def test_per_feature_scores_sum_to_score_samples_and_refuse_ensembles():
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"v": rng.normal(size=200) * 3, "c": rng.choice(list("ab"), 200),
                       "b": rng.rand(200) < 0.5})
    est = RNADEDensity(hidden_layer_sizes=(8,), n_components=2, **FAST).fit(df)
    per = est.score_samples_per_feature(df)
    np.testing.assert_allclose(per.sum(1), est.score_samples(df), rtol=1e-6)
    ens = NADEDensity(hidden_layer_sizes=(8,), n_orderings=2, **FAST).fit(df)
    with pytest.raises(ValueError, match="2 orderings or masks"):
        ens.score_samples_per_feature(df)


def test_bad_parameters_and_input_name_the_problem(binary10):
    with pytest.raises(ValueError, match="exactly one hidden layer.*order_agnostic=True"):
        NADEDensity(hidden_layer_sizes=(8, 8), **FAST).fit(binary10)
    with pytest.raises(ValueError, match="positive integers"):
        RNADEDensity(hidden_layer_sizes=(), **FAST).fit(binary10)
    with pytest.raises(ValueError, match="permutation of range"):
        NADEDensity(hidden_layer_sizes=(4,), order=[0, 0, 1], **FAST).fit(binary10[:, :3])
    with pytest.raises(ValueError, match="n_orderings"):
        NADEDensity(n_orderings=0, **FAST).fit(binary10)
    with pytest.raises(ValueError, match="component"):
        RNADEDensity(component="cauchy", **FAST).fit(binary10)
    with pytest.raises(ValueError, match="init_params"):
        RNADEDensity(init_params="kmeans", **FAST).fit(binary10)
    est = NADEDensity(hidden_layer_sizes=(4,), **FAST).fit(binary10)
    bad = binary10[:3].copy()
    bad[1, 4] = 2
    # A value other than 0/1 in a binary column has probability zero (handle_unknown's
    # default); with handle_unknown="error" it is an error naming column, row and value.
    assert np.isneginf(est.score_samples(bad)).tolist() == [False, True, False]
    with pytest.raises(ValueError, match=r"column 4 is binary.*holds 2.0 at row 1"):
        est.set_params(handle_unknown="error").score_samples(bad)
    est.set_params(handle_unknown="zero_probability")
    # NaN is a missing cell, not bad input: with the missing columns last in the (natural)
    # ordering, the row's score is exactly the chain rule over its observed prefix.
    holes = binary10[:2].astype(float)
    holes[:, 6:] = np.nan
    prefix = est.score_samples_per_feature(binary10[:2])[:, :6].sum(1)
    np.testing.assert_allclose(est.score_samples(holes), prefix, rtol=1e-6)


def test_float32_scoring_of_quantized_columns_matches_the_exact_float64_pass(block):
    """RNADE scores in float32 throughout (column-major heads, vectorised float32 cell
    probabilities): on quantized columns, with random orderings, its scores equal those of
    the same network run in float64, whose cell probabilities are the exact log_ndtr
    branches, to 1e-4 nats per row; and the scoring pass hands the conditionals their
    column-major layout (no transposing copy)."""
    rng = np.random.RandomState(0)
    X = np.round(np.column_stack([rng.normal(size=400), rng.gamma(2.0, size=400),
                                  rng.normal(size=400) * 3]), 1)
    est = RNADEDensity(hidden_layer_sizes=(8,), n_components=3, n_orderings=2,
                       order="random", **FAST).fit(X)
    assert all(f.step > 0 for f in est.net_.module_.conditionals.families)
    got = est.score_samples(X)
    module = est.net_.module_
    z = torch.as_tensor(est.schema_.encode(X))
    with torch.no_grad():
        params = module.eval().network(z, 1)
        assert params.T.is_contiguous() and not params.is_contiguous()
        module.double()
        exact = module(z.double()).numpy() + est.schema_.log_jacobian
    module.float()
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-4)
