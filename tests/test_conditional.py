"""Conditional densities p(x | y) of the tabular estimators (``fit(X, y)``): normalisation for
every y by exact enumeration and by quadrature, sampling against scoring (chi-square), the
marginal over the training y, conditioning that helps, unconditional fits left exactly as they
were, round trips and bad y."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.base import clone

from skar import ARTransformerDensity, MADEDensity, NADEDensity, RNADEDensity, RNNDensity
from skar.base import sample_plain
from skar.models.made import MADE
from skar.models.nade import NADE
from skar.models.rnn import RNN
from skar.models.transformer import ARTransformer

from .contract import all_binary_rows

FAST = dict(max_iter=15, early_stopping=False, batch_size=100, learning_rate_init=1e-2,
            random_state=0)

CONDITIONAL = {
    "made": lambda **kw: MADEDensity(hidden_layer_sizes=(12,), **{**FAST, **kw}),
    "made_ensemble": lambda **kw: MADEDensity(hidden_layer_sizes=(12,), n_orderings=2,
                                              order="random", **{**FAST, **kw}),
    "fvsbn": lambda **kw: MADEDensity(hidden_layer_sizes=(), **{**FAST, **kw}),
    "transformer": lambda **kw: ARTransformerDensity(d_model=8, n_heads=2, n_layers=1,
                                                     **{**FAST, **kw}),
    "transformer_ensemble": lambda **kw: ARTransformerDensity(
        d_model=8, n_heads=2, n_layers=1, n_orderings=2, order="random", **{**FAST, **kw}),
    "nade": lambda **kw: NADEDensity(hidden_layer_sizes=(12,), **{**FAST, **kw}),
    "nade_ensemble": lambda **kw: NADEDensity(hidden_layer_sizes=(12,), n_orderings=2,
                                              order="random", **{**FAST, **kw}),
    "rnn": lambda **kw: RNNDensity(hidden_size=8, **{**FAST, **kw}),
    "rnn_gru_ensemble": lambda **kw: RNNDensity(hidden_size=8, cell="gru", n_layers=2,
                                                n_orderings=2, order="random",
                                                **{**FAST, **kw}),
    "nade_order_agnostic": lambda **kw: NADEDensity(hidden_layer_sizes=(12, 12),
                                                    order_agnostic=True, n_orderings=2,
                                                    **{**FAST, **kw}),
}
# The real-valued NADE for continuous x (NADEDensity refuses continuous columns).
CONDITIONAL_CONTINUOUS = {**CONDITIONAL, "nade": lambda **kw: RNADEDensity(
    hidden_layer_sizes=(12,), **{**FAST, **kw})}


def _binary_given_label(n=600, seed=0):
    """Binary D=4 rows whose bits depend strongly on a label y in {0, 1, 2}."""
    rng = np.random.RandomState(seed)
    y = rng.randint(3, size=n)
    p = np.array([[0.9, 0.1, 0.5, 0.2], [0.1, 0.9, 0.3, 0.8], [0.5, 0.5, 0.9, 0.1]])[y]
    X = (rng.uniform(size=p.shape) < p).astype(np.int64)
    X[:, 3] = X[:, 3] ^ X[:, 0]  # and a dependence among the bits
    return X, y


@pytest.fixture(scope="module")
def binary_data():
    return _binary_given_label()


@pytest.fixture(scope="module", params=sorted(CONDITIONAL))
def fitted_binary(request, binary_data):
    X, y = binary_data
    return request.param, CONDITIONAL[request.param]().fit(X, y)


# ---------------------------------------------------------------- normalisation, sampling
def test_every_conditional_sums_to_one_over_all_binary_rows(fitted_binary):
    name, est = fitted_binary
    rows = all_binary_rows(4)
    for label in (0, 1, 2):
        total = np.exp(est.score_samples(rows, np.full(len(rows), label))).sum()
        assert abs(total - 1.0) < 1e-5, (name, label, total)


def test_the_conditionals_differ_between_labels(fitted_binary):
    _, est = fitted_binary
    rows = all_binary_rows(4)
    p0 = np.exp(est.score_samples(rows, np.zeros(16)))
    p1 = np.exp(est.score_samples(rows, np.ones(16)))
    assert np.abs(p0 - p1).sum() > 0.2  # total variation > 0.1: y reaches the network


def test_the_marginal_without_y_is_the_mixture_over_training_labels(fitted_binary, binary_data):
    _, est = fitted_binary
    _, y = binary_data
    rows = all_binary_rows(4)
    prior = np.bincount(y) / len(y)
    mixture = sum(prior[k] * np.exp(est.score_samples(rows, np.full(16, k))) for k in range(3))
    np.testing.assert_allclose(np.exp(est.score_samples(rows)), mixture, rtol=1e-6)
    assert abs(np.exp(est.score_samples(rows)).sum() - 1.0) < 1e-5


def _chi_square_pvalue(rows, probs, draws):
    """Chi-square of the draws' counts against ``probs`` over ``rows``, pooling the cells of
    expected count below 5 (as the approximation requires)."""
    index = {tuple(r): i for i, r in enumerate(rows.tolist())}
    counts = np.bincount([index[tuple(r)] for r in draws.tolist()], minlength=len(rows))
    expected = probs / probs.sum() * len(draws)
    keep = expected >= 5
    obs, exp = counts[keep], expected[keep]
    if not keep.all():
        obs, exp = np.append(obs, counts[~keep].sum()), np.append(exp, expected[~keep].sum())
    return stats.chisquare(obs, exp / exp.sum() * obs.sum()).pvalue


@pytest.mark.parametrize("label", [0, 2])
def test_samples_given_y_match_the_conditional_probabilities(fitted_binary, label):
    _, est = fitted_binary
    rows = all_binary_rows(4)
    probs = np.exp(est.score_samples(rows, np.full(16, label)))
    draws = np.asarray(est.sample(4000, y=label, random_state=1))
    assert _chi_square_pvalue(rows, probs, draws) > 1e-3


def test_samples_without_y_match_the_marginal(fitted_binary):
    _, est = fitted_binary
    rows = all_binary_rows(4)
    probs = np.exp(est.score_samples(rows))
    draws = np.asarray(est.sample(4000, random_state=2))
    assert _chi_square_pvalue(rows, probs, draws) > 1e-3


@pytest.mark.parametrize("name", ["made", "transformer", "nade", "rnn"])
def test_a_continuous_conditional_integrates_to_one_for_every_y(name):
    rng = np.random.RandomState(0)
    y = rng.normal(size=500)
    x = (2.0 * y + 0.3 * rng.standard_t(4, size=500))[:, None]
    est = CONDITIONAL_CONTINUOUS[name](n_components=3, quantization=None,
                                       point_masses=None).fit(x, y)
    grid = np.linspace(-25, 25, 20001)[:, None]
    for value in (-1.5, 0.0, 2.0):
        dens = np.exp(est.score_samples(grid, np.full(len(grid), value)))
        assert abs(np.trapezoid(dens, grid[:, 0]) - 1.0) < 1e-3, (value,)
    means = [np.trapezoid(grid[:, 0] * np.exp(est.score_samples(grid, np.full(len(grid), v))),
                          grid[:, 0]) for v in (-1.5, 2.0)]
    assert means[1] - means[0] > 2.0  # the conditional mean follows y (truth: 7.0 apart)


def test_a_mixed_frame_y_of_two_columns_is_normalised_for_each_row():
    rng = np.random.RandomState(1)
    n = 600
    Y = pd.DataFrame({"group": pd.Categorical(rng.choice(["a", "b", "c"], n)),
                      "level": rng.normal(size=n)})
    shift = Y["group"].cat.codes.to_numpy() + (Y["level"].to_numpy() > 0)
    X = (rng.uniform(size=(n, 4)) < (0.15 + 0.2 * shift[:, None])).astype(np.int64)
    rows = all_binary_rows(4)
    for est in (CONDITIONAL["made"]().fit(X, Y), CONDITIONAL["transformer"]().fit(X, Y)):
        assert est.context_schema_.kinds == ["categorical", "continuous"]
        for group, level in (("a", -1.0), ("c", 0.7)):
            y_rows = pd.DataFrame({"group": pd.Categorical([group] * 16, categories=["a", "b",
                                                                                     "c"]),
                                   "level": [level] * 16})
            assert abs(np.exp(est.score_samples(rows, y_rows)).sum() - 1.0) < 1e-5
        one = est.sample(5, y={"group": "b", "level": 0.3}, random_state=0)
        assert one.shape == (5, 4)
        with pytest.raises(ValueError, match="needed|pass y"):  # 600 distinct y rows
            est.score_samples(rows)


# ---------------------------------------------------------------- conditioning helps
@pytest.mark.parametrize("name", ["made", "transformer", "nade", "rnn"])
def test_conditioning_beats_the_unconditional_fit_on_held_out_rows(name):
    rng = np.random.RandomState(3)
    n = 1200
    y = rng.randint(3, size=n)
    X = np.column_stack([3.0 * y + rng.normal(scale=0.5, size=n),
                         -2.0 * y + rng.normal(scale=0.5, size=n)])
    train, test = slice(0, 900), slice(900, None)
    kw = dict(max_iter=40, n_components=2, quantization=None, point_masses=None)
    cond = CONDITIONAL_CONTINUOUS[name](**kw).fit(X[train], y[train])
    uncond = CONDITIONAL_CONTINUOUS[name](**kw).fit(X[train])
    gain = cond.score_samples(X[test], y[test]).mean() - uncond.score_samples(X[test]).mean()
    # The truth: the label carries log 3 = 1.10 nats about x (the mixture is well separated).
    assert gain > 0.6, gain


# ---------------------------------------------------------------- unconditional unchanged
@pytest.mark.parametrize("name", ["made", "transformer", "nade", "rnn"])
def test_fit_without_y_builds_the_unconditional_network(name, binary_data):
    X, y = binary_data
    a = CONDITIONAL[name]().fit(X)
    b = CONDITIONAL[name]().fit(X, y=None)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    net = a.net_.module_.network
    assert not any("context" in k or "cross" in k for k in net.state_dict())
    assert not hasattr(a, "context_schema_")
    # The same network built directly, without the conditioning code path: same parameter
    # count and the same initial weights for the same seed.
    if name == "made":
        def build(**kw):
            torch.manual_seed(0)
            return MADE([1] * 4, ["binary"] * 4, [1] * 4, (12,), seed=0, **kw)
    elif name == "transformer":
        def build(**kw):
            torch.manual_seed(0)
            return ARTransformer([1] * 4, ["binary"] * 4, [1] * 4, 8, 2, 1, seed=0, **kw)
    elif name == "nade":
        def build(**kw):
            torch.manual_seed(0)
            return NADE([1] * 4, ["binary"] * 4, [1] * 4, 12, seed=0, **kw)
    else:
        def build(**kw):
            torch.manual_seed(0)
            return RNN([1] * 4, ["binary"] * 4, [1] * 4, hidden_size=8, seed=0, **kw)
    plain, cond = build(), build(context_sizes=[1])
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_plain == sum(p.numel() for p in net.parameters())
    assert n_plain < sum(p.numel() for p in cond.parameters())
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(cond.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["made", "transformer", "nade", "rnn"])
def test_refitting_without_y_forgets_the_conditioning(name, binary_data):
    X, y = binary_data
    est = CONDITIONAL[name]().fit(X, y)
    est.fit(X)
    assert not hasattr(est, "context_schema_")
    np.testing.assert_array_equal(est.score_samples(X), CONDITIONAL[name]().fit(X).score_samples(X))


# ---------------------------------------------------------------- samplers, round trips
def test_the_cached_transformer_sampler_draws_what_the_plain_loop_draws(binary_data):
    X, y = binary_data
    est = CONDITIONAL["transformer_ensemble"]().fit(X, y)
    context = torch.as_tensor(est._encode_context(y[:300], reset=False))
    plain = sample_plain(est.net_.module_, 300, torch.Generator().manual_seed(5), context)
    cached = est._sample_encoded(300, torch.Generator().manual_seed(5), context=context)
    torch.testing.assert_close(cached, plain, rtol=0, atol=0)


def test_the_nade_and_rnn_samplers_draw_what_the_plain_loop_draws(binary_data):
    X, y = binary_data
    context = None
    for name in ("nade_ensemble", "nade_order_agnostic", "rnn_gru_ensemble"):
        est = CONDITIONAL[name]().fit(X, y)
        context = torch.as_tensor(est._encode_context(y[:500], reset=False))
        plain = sample_plain(est.net_.module_, 500, torch.Generator().manual_seed(5), context)
        fast = est._sample_encoded(500, torch.Generator().manual_seed(5), context=context)
        # The incremental sum (state) rounds differently from the pass: a draw may flip only
        # where a uniform falls within float32 rounding of its threshold.
        assert (fast != plain).float().mean() < 1e-3, name


@pytest.mark.parametrize("name", ["made", "transformer", "nade", "rnn"])
def test_clone_pickle_and_get_params_of_a_conditional_fit(name, binary_data):
    X, y = binary_data
    est = CONDITIONAL[name]().fit(X, y.astype(str))
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "context_schema_")
    back = pickle.loads(pickle.dumps(est))
    labels = np.array(["0", "2", "1"] * 5)
    np.testing.assert_array_equal(back.score_samples(X[:15], labels),
                                  est.score_samples(X[:15], labels))
    np.testing.assert_array_equal(back.sample(7, y="1", random_state=3),
                                  est.sample(7, y="1", random_state=3))
    assert est.context_schema_.kinds == ["categorical"]
    first_seen = list(pd.unique(y.astype(str)))
    assert est.context_values_.iloc[:, 0].tolist() == first_seen
    counts = pd.Series(y.astype(str)).value_counts()
    np.testing.assert_allclose(est.context_prior_, counts[first_seen].to_numpy() / len(y))


def test_series_y_and_score_with_y():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = pd.Series(rng.choice(["u", "v"], 200), name="kind")
    est = CONDITIONAL["made"](max_iter=3).fit(X, y)
    assert est.score(X, y) == pytest.approx(est.score_samples(X, y).sum())
    assert list(est.sample(3, y="u", random_state=0).columns) == ["a", "b"]


# ---------------------------------------------------------------- bad y
@pytest.fixture(scope="module")
def fitted_frame_y():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    Y = pd.DataFrame({"colour": rng.choice(["red", "blue"], 200), "size": rng.normal(size=200)})
    return X, Y, CONDITIONAL["made"](max_iter=2).fit(X, Y)


def test_y_with_the_wrong_number_of_rows_is_refused(fitted_frame_y):
    X, Y, est = fitted_frame_y
    with pytest.raises(ValueError, match="y has 5 entries, but X has 6 rows"):
        est.score_samples(X[:6], Y[:5])
    with pytest.raises(ValueError, match="y has 199 entries, but X has 200 rows"):
        clone(est).fit(X, Y[:199])


def test_an_unseen_category_in_y_is_named(fitted_frame_y):
    X, Y, est = fitted_frame_y
    bad = Y[:4].copy()
    bad.loc[2, "colour"] = "green"
    before = est.score_samples(X[:4], Y[:4])
    with pytest.raises(ValueError, match=r"in y: column 'colour' holds the category 'green' "
                                         r"at row 2, which was not seen in fit"):
        est.score_samples(X[:4], bad)
    np.testing.assert_array_equal(est.score_samples(X[:4], Y[:4]), before)


@pytest.mark.parametrize("where", ["fit", "score"])
def test_nan_in_y_is_named(fitted_frame_y, where):
    X, Y, est = fitted_frame_y
    bad = Y.copy()
    bad.loc[7, "size"] = np.nan
    with pytest.raises(ValueError, match=r"y column 'size' holds a missing value \(nan\) at row 7"):
        if where == "fit":
            clone(est).fit(X, bad)
        else:
            est.score_samples(X, bad)


def test_y_of_the_wrong_width_or_columns_is_refused(fitted_frame_y):
    X, Y, est = fitted_frame_y
    with pytest.raises(ValueError, match=r"y has 1 column\(s\), but .* fitted with 2 y column"):
        est.score_samples(X[:3], Y[["size"]][:3])
    with pytest.raises(ValueError, match=r"y has the columns \['size', 'colour'\]"):
        est.score_samples(X[:3], Y[["size", "colour"]][:3])


def test_y_is_needed_after_a_fit_with_a_continuous_y(fitted_frame_y):
    X, Y, est = fitted_frame_y
    with pytest.raises(ValueError, match=r"fitted with y .*pass y"):
        est.score_samples(X[:3])
    with pytest.raises(ValueError, match=r"fitted with y .*pass y"):
        est.sample(3)
    with pytest.raises(ValueError, match=r"fitted with y .*pass y"):
        est.score_samples_per_feature(X[:3])
    assert est.score_samples_per_feature(X[:3], Y[:3]).shape == (3, 2)


def test_y_given_to_an_unconditional_fit_is_refused():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 2))
    est = CONDITIONAL["made"](max_iter=2).fit(X)
    for call in (lambda: est.score_samples(X, np.zeros(100)),
                 lambda: est.score(X, np.zeros(100)),
                 lambda: est.sample(2, y=0)):
        with pytest.raises(ValueError, match=r"fitted without y, so it models p\(x\)"):
            call()


def test_the_blocked_nade_pass_differentiates_a_per_row_bias_as_autograd_does(monkeypatch):
    """NADE's pass with several blocks (its written-out gradient) takes the conditioning bias
    per row; its gradients equal autograd's through the one-block pass."""
    from skar.models import nade as nade_module

    torch.manual_seed(0)
    net = NADE([1, 3, 1, 1, 1], ["binary", "categorical", "binary", "binary", "continuous"],
               [1, 3, 1, 1, 3], 6, seed=0, context_sizes=[2, 1]).double()
    x = torch.tensor([[1, 2, 0, 1, 0.3], [0, 0, 1, 1, -1.2], [1, 1, 1, 0, 2.0]],
                     dtype=torch.float64)
    context = torch.tensor([[1, 0, 0.5], [0, 1, -1.0], [0, 1, 2.0]], dtype=torch.float64)
    grads = []
    for block in (2, 5):  # several blocks (the written-out gradient), then one (autograd)
        monkeypatch.setattr(nade_module, "_block_size", lambda *a, b=block: b)
        net.zero_grad()
        out = net(x, 0, context)
        (out * torch.linspace(-1, 1, out.shape[1], dtype=torch.float64)).sum().backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    for name, g in grads[1].items():
        torch.testing.assert_close(grads[0][name], g, rtol=1e-10, atol=1e-12, msg=name)
    assert grads[1]["context.weight"].abs().sum() > 0
