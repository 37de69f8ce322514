"""RNNDensity: the autoregressive property, normalisation, sampling (stateful equals plain),
consistency with a Markov chain's entropy, scikit-learn checks."""

import itertools
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar.base import DensityModule, sample_plain
from skar.distributions import Bernoulli, ColumnConditionals
from skar.models.rnn import RNN, RNNDensity, sample_stateful

from .contract import (
    all_binary_rows,
    assert_autoregressive,
    assert_samples_match_probabilities,
    assert_sums_to_one,
    integrate_2d,
    product_frame,
)

TINY = dict(hidden_size=16)
FAST = dict(**TINY, max_iter=3, early_stopping=False, random_state=0)

KINDS = ["binary", "categorical", "continuous", "categorical", "continuous", "binary"]
INPUT_SIZES = [1, 3, 1, 3, 1, 1]
OUTPUT_SIZES = [1, 3, 6, 3, 6, 1]
# Columns 1 and 3 (same categories), 2 and 4, 0 and 5 share their weights when tied.
TIE_KEYS = ["b", "c", "r", "c", "r", "b"]


def _net(cell="lstm", tied=False, order="random", n_orderings=3, n_layers=2, **kw):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = RNN(INPUT_SIZES, KINDS, OUTPUT_SIZES, tie_keys=TIE_KEYS if tied else None,
                  cell=cell, hidden_size=8, n_layers=n_layers, n_orderings=n_orderings,
                  order=order, seed=3, **kw)
    with torch.no_grad():  # the column embeddings start at zero; make them matter
        net.wqe.weight.normal_(generator=torch.Generator().manual_seed(0))
    return net.eval()


def _slices(output_sizes):
    offsets = np.concatenate([[0], np.cumsum(output_sizes)])
    return list(zip(offsets[:-1], offsets[1:]))


def _random_rows(n, seed=0):
    """Encoded rows of the KINDS table: 0/1, codes, standard normal values."""
    rng = np.random.RandomState(seed)
    x = np.column_stack([rng.randint(0, 2, n), rng.randint(0, 3, n), rng.normal(size=n),
                         rng.randint(0, 3, n), rng.normal(size=n), rng.randint(0, 2, n)])
    return torch.as_tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------------------- autoregressive
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("tied", [False, True])
def test_jacobian_wrt_embeddings_of_later_positions_is_exactly_zero(cell, tied):
    """Every column kind enters through its value embedding E_d(x_d): differentiate w.r.t.
    those (B, D, H) embeddings, which covers binary and categorical columns too."""
    net = _net(cell, tied)
    D, H = len(KINDS), net.hidden_size
    for k in range(net.n_members):
        assert_autoregressive(
            lambda u, k=k: net.forward_embeddings(u.view(-1, D, H), k), D * H,
            np.repeat(np.arange(D), H), _slices(OUTPUT_SIZES), net.ordering(k).numpy(),
        )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("order", ["natural", "random"])
def test_jacobian_wrt_continuous_inputs_of_later_positions_is_exactly_zero(cell, order):
    D = 5
    net = RNN([1] * D, ["continuous"] * D, [3] * D, cell=cell, hidden_size=8, n_layers=2,
              n_orderings=2, order=order, seed=1).eval()
    for k in range(2):
        assert_autoregressive(lambda x, k=k: net(x, k), D, np.arange(D), _slices([3] * D),
                              net.ordering(k).numpy())


def test_changing_a_discrete_column_never_changes_earlier_or_own_parameters():
    """Perturbation test on the codes themselves (no gradient exists for them)."""
    net = _net()
    x = _random_rows(16)
    slices = _slices(OUTPUT_SIZES)
    n_values = {0: 2, 1: 3, 3: 3, 5: 2}
    with torch.no_grad():
        for k in range(net.n_members):
            pos = net.positions[k].numpy()
            base = net(x, k)
            for j, nv in n_values.items():
                x2 = x.clone()
                x2[:, j] = (x2[:, j] + 1) % nv
                out = net(x2, k)
                for d, (a, b) in enumerate(slices):
                    if pos[d] <= pos[j]:
                        assert torch.equal(out[:, a:b], base[:, a:b]), (k, j, d)
                if pos[j] < len(KINDS) - 1:  # the column right after j does read it
                    nxt = int(net.ordering(k)[pos[j] + 1])
                    a, b = slices[nxt]
                    assert not torch.equal(out[:, a:b], base[:, a:b])


def test_tied_columns_share_embeddings_and_heads():
    """Tied: columns 1 and 3 (same key) give the same embedding to the same code and the
    same head; untied they differ. The parameter count says the weights are shared."""
    tied, untied = _net(tied=True), _net(tied=False)
    codes = torch.tensor([0.0, 1.0, 2.0])
    for net, same in ((tied, True), (untied, False)):
        with torch.no_grad():
            embed = net.embedding.embed_column
            assert torch.equal(embed(codes, 1), embed(codes, 3)) == same
            assert (net.heads.head_index[1] == net.heads.head_index[3]) == same
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_tied < n_untied


def test_marginal_start_makes_continuous_parameters_constant_and_refuses_tied_heads():
    net = _net()
    theta0 = torch.linspace(-1.0, 1.0, sum(OUTPUT_SIZES))
    independent = torch.tensor([k == "continuous" for k, s in zip(KINDS, OUTPUT_SIZES)
                                for _ in range(s)])
    with torch.no_grad():
        net.init_marginals(theta0, independent)
        out = net(_random_rows(16), 1)
    # Continuous columns' parameters no longer read the state; discrete ones still do (but
    # the first column of the ordering, which reads nothing).
    np.testing.assert_array_equal(out[:, independent].numpy(),
                                  np.broadcast_to(theta0[independent].numpy(), (16, 12)))
    first = int(net.ordering(1)[0])
    reads = torch.tensor([k != "continuous" and d != first
                          for d, (k, s) in enumerate(zip(KINDS, OUTPUT_SIZES)) for _ in range(s)])
    assert reads.sum() >= 4 and out[:, reads].std(0).min() > 0
    with pytest.raises(ValueError, match="share one output head"):
        _net(tied=True).init_marginals(theta0, independent)


# ---------------------------------------------------------------------------- normalisation
@pytest.fixture(scope="module")
def binary8():
    rng = np.random.RandomState(1)
    z = rng.rand(400, 1) < 0.5
    return np.where(z, rng.rand(400, 8) < 0.8, rng.rand(400, 8) < 0.2).astype(int)


@pytest.mark.parametrize("params", [dict(), dict(cell="gru", n_layers=2),
                                    dict(n_orderings=3, order="random", tie_columns=True)])
def test_binary_probabilities_sum_to_one(binary8, params):
    est = RNNDensity(**{**FAST, **params}).fit(binary8)
    assert_sums_to_one(est, all_binary_rows(8))


@pytest.mark.parametrize("tied", [False, True])
def test_categorical_times_binary_space_sums_to_one(tied):
    rng = np.random.RandomState(0)
    levels = {"a": ["x", "y", "z"], "b": ["p", "q", "r", "s"], "c": ["x", "y", "z"]}
    train = pd.DataFrame({c: pd.Categorical(rng.choice(lv, 200), categories=lv)
                          for c, lv in levels.items()})
    train["flag"] = rng.rand(200) < 0.3
    est = RNNDensity(n_orderings=2, order="random", tie_columns=tied, **FAST).fit(train)
    space = product_frame(levels)
    space = pd.concat([space.assign(flag=False), space.assign(flag=True)], ignore_index=True)
    assert len(space) == 3 * 4 * 3 * 2
    assert_sums_to_one(est, space)


def test_continuous_density_integrates_to_one_in_2d():
    rng = np.random.RandomState(0)
    X2 = rng.normal(size=(300, 2)) @ np.array([[1.0, 0.8], [0.0, 0.6]])
    est = RNNDensity(n_components=2, **FAST).fit(X2)
    assert integrate_2d(est, (-9, -9), (9, 9), n=301) == pytest.approx(1.0, abs=1e-2)
    est = RNNDensity(n_components=2, n_orderings=2, order="random", cell="gru",
                     **FAST).fit(X2)
    assert integrate_2d(est, (-9, -9), (9, 9), n=301) == pytest.approx(1.0, abs=1e-2)


def test_mixed_categorical_and_continuous_sums_and_integrates_to_one():
    rng = np.random.RandomState(0)
    c = rng.choice(["a", "b", "c"], 300)
    v = rng.normal(size=300) + (c == "b") * 2.0
    est = RNNDensity(n_components=2, order=[1, 0], **FAST).fit(pd.DataFrame({"v": v, "c": c}))
    grid = np.linspace(-10, 12, 2001)
    total = 0.0
    for cat in "abc":
        df = pd.DataFrame({"v": grid, "c": [cat] * grid.size})
        total += np.trapezoid(np.exp(est.score_samples(df)), grid)
    assert total == pytest.approx(1.0, abs=1e-2)


def test_quantized_column_cells_sum_to_one_and_samples_lie_on_the_grid():
    """A count column, detected as quantized with step 1, after a categorical one: its score is
    log P(cell) (step 1), so exp(score) summed over both categories and every cell of a wide
    grid is 1 (the cells far out carry nothing), and it is the same anywhere in a cell. Forced
    continuous, it is a density again."""
    rng = np.random.RandomState(0)
    c = rng.choice(["a", "b"], 300)
    frame = pd.DataFrame({"c": c, "k": rng.poisson(np.where(c == "a", 3.0, 8.0))})
    est = RNNDensity(n_components=2, **FAST).fit(frame)
    assert est.schema_.feature_types == ["categorical", "quantized"]
    grid = np.arange(-60, 80)
    total = sum(np.exp(est.score_samples(pd.DataFrame({"c": [cat] * grid.size, "k": grid}))).sum()
                for cat in "ab")
    assert total == pytest.approx(1.0, abs=1e-3)
    # The dequantized density is constant on each cell (a density's value would move).
    cells = pd.DataFrame({"c": ["a"] * 12, "k": np.arange(12.0)})
    np.testing.assert_allclose(est.score_samples(cells.assign(k=cells["k"] + 0.3)),
                               est.score_samples(cells), rtol=1e-6)
    out = est.sample(300, random_state=0)
    assert (out["k"] == np.round(out["k"])).all() and out["k"].nunique() > 3
    forced = RNNDensity(feature_types={"k": "continuous"}, point_masses=None, **FAST).fit(frame)
    assert forced.schema_.feature_types == ["categorical", "continuous"]
    assert not (forced.sample(50, random_state=0)["k"] % 1 == 0).all()


# ---------------------------------------------------------------------------- sampling
def test_samples_match_probabilities_chi_square():
    rng = np.random.RandomState(0)
    X = (rng.rand(600, 4) < [0.2, 0.5, 0.7, 0.4]).astype(int)
    X[:, 3] = X[:, 0] ^ X[:, 1]
    est = RNNDensity(n_orderings=2, order="random", **{**FAST, "max_iter": 10}).fit(X)
    assert_samples_match_probabilities(est, all_binary_rows(4), n_samples=20_000)


@pytest.fixture(scope="module")
def mixed_frame():
    rng = np.random.RandomState(0)
    n = 300
    c = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({
        "b": rng.rand(n) < 0.4,
        "c": c,
        "v": rng.normal(size=n) + (c == "b") * 2.0,
        "d": rng.choice(["p", "q"], n),
        "w": rng.gamma(2.0, size=n),
    })


@pytest.mark.parametrize(
    "params",
    [dict(), dict(cell="gru", n_layers=2, n_orderings=3, order="random"),
     dict(n_layers=2, n_orderings=3, order="random", tie_columns=True)],
)
def test_stateful_sampler_draws_what_the_plain_loop_draws(mixed_frame, params):
    """Same generator, same stream: both loops draw the members through member_rows and then
    every column through ColumnConditionals.sample_column in generation order.

    Discrete columns must be *identical*; continuous columns agree to float tolerance (the
    values are mu + s * eps with the same eps, and mu, s computed by one cell step from the
    carried state instead of a full pass may differ in the last bits). Rows are stored as
    float32 in both loops, so the float64 tolerance cannot go below float32 resolution."""
    est = RNNDensity(n_components=2, **{**FAST, **params}).fit(mixed_frame)
    module = est.net_.module_
    kinds = np.array(est.schema_.kinds)
    disc, cont = kinds != "continuous", kinds == "continuous"
    for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-6)):
        module.to(dtype)
        plain = sample_plain(module, 200, torch.Generator().manual_seed(5)).numpy()
        fast = sample_stateful(module, 200, torch.Generator().manual_seed(5)).numpy()
        np.testing.assert_array_equal(fast[:, disc], plain[:, disc])
        np.testing.assert_allclose(fast[:, cont], plain[:, cont], atol=atol, rtol=atol)
    module.to(torch.float32)


def test_estimator_samples_with_the_stateful_sampler_and_decodes(mixed_frame):
    est = RNNDensity(**FAST).fit(mixed_frame)
    out = est.sample(50, random_state=3)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(mixed_frame.columns)
    assert (out.dtypes == mixed_frame.dtypes).all()
    ref = sample_plain(est.net_.module_, 50, torch.Generator().manual_seed(
        int(np.random.RandomState(3).randint(np.iinfo(np.int32).max))))
    ref = est.schema_.decode(ref.numpy())
    pd.testing.assert_frame_equal(out[["b", "c", "d"]], ref[["b", "c", "d"]])
    np.testing.assert_allclose(out[["v", "w"]], ref[["v", "w"]], atol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_binary_sequence_stateful_equals_plain_on_a_long_row(cell):
    """A 40-step binary sequence: every step exact, with draws that are not all trivial."""
    D = 40
    with torch.random.fork_rng():  # the weights, without touching the global stream
        torch.manual_seed(0)
        net = RNN([1] * D, ["binary"] * D, [1] * D, tie_keys=[0] * D, cell=cell,
                  hidden_size=8, n_layers=2, seed=0).eval()
    with torch.no_grad():  # logits of a few units, so many draws are close calls
        net.heads.weight.normal_(0, 3.0, generator=torch.Generator().manual_seed(0))
    module = DensityModule(net, ColumnConditionals([Bernoulli()] * D)).eval()
    plain = sample_plain(module, 64, torch.Generator().manual_seed(1))
    fast = sample_stateful(module, 64, torch.Generator().manual_seed(1))
    assert torch.equal(plain, fast)
    assert 0.05 < plain.mean() < 0.95


# ---------------------------------------------------------------------------- consistency
def _markov_chain():
    """A 3-state chain: transition matrix, stationary distribution and entropy rate."""
    P = np.array([[0.80, 0.15, 0.05],
                  [0.10, 0.60, 0.30],
                  [0.25, 0.25, 0.50]])
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    rate = -(pi[:, None] * P * np.log(P)).sum()  # h = -sum_i pi_i sum_j P_ij log P_ij
    return P, pi, rate


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_consistency_markov_chain_entropy_rate_within_005_nats(cell):
    """Sequences of D=10 steps of a stationary 3-state chain. In closed form the entropy per
    step is (H(pi) + 9 h) / 10, h the entropy rate; the model's expected NLL per step is
    computed exactly over all 3^10 sequences (no test-set noise)."""
    P, pi, rate = _markov_chain()
    D = 10
    per_step = (-(pi * np.log(pi)).sum() + (D - 1) * rate) / D
    rng = np.random.RandomState(0)
    n = 4000
    X = np.empty((n, D), dtype=np.int64)
    X[:, 0] = rng.choice(3, n, p=pi)
    cum = P.cumsum(1)
    for t in range(1, D):
        X[:, t] = (rng.rand(n, 1) > cum[X[:, t - 1]]).sum(1)
    est = RNNDensity(cell=cell, hidden_size=8, tie_columns=True,
                     categorical_features=list(range(D)), max_iter=8, batch_size=100,
                     learning_rate_init=1e-2, early_stopping=False, random_state=0).fit(X)
    space = np.array(list(itertools.product(range(3), repeat=D)))
    logp_true = np.log(pi[space[:, 0]]) + np.log(P[space[:, :-1], space[:, 1:]]).sum(1)
    p_true = np.exp(logp_true)
    assert p_true.sum() == pytest.approx(1.0)
    assert -(p_true * logp_true).sum() / D == pytest.approx(per_step)
    model_per_step = -(p_true * est.score_samples(space)).sum() / D
    assert 0 <= model_per_step - per_step < 0.05, (model_per_step, per_step, rate)
    assert abs(model_per_step - rate) < 0.05 + abs(per_step - rate)


# ---------------------------------------------------------------------------- scikit-learn
# The subset-invariance check compares a row's score alone and inside a bigger batch at
# rtol=1e-7. The network computes in float32, and the CPU GEMM kernels choose their blocking
# by the number of rows, so a row's log density can move by ~1 float32 ulp with the batch it
# is scored in; the check then passes or fails by chance. The same property is tested below at
# float32 tolerance.
EXPECTED_FAILED = {
    "check_methods_subset_invariance": "float32 GEMM rounding depends on the batch size; "
    "tested at rtol=1e-5 in test_scores_do_not_depend_on_the_batch",
}


@parametrize_with_checks(
    [RNNDensity(hidden_size=8, max_iter=2, random_state=0),
     RNNDensity(cell="gru", hidden_size=8, n_layers=2, n_orderings=2, order="random",
                tie_columns=True, max_iter=2, early_stopping=False, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_scores_do_not_depend_on_the_batch(mixed_frame):
    est = RNNDensity(n_orderings=2, order="random", **FAST).fit(mixed_frame)
    whole = est.score_samples(mixed_frame)
    one_by_one = np.concatenate([est.score_samples(mixed_frame.iloc[i : i + 1])
                                 for i in range(0, 300, 7)])
    np.testing.assert_allclose(one_by_one, whole[::7], rtol=1e-5)


def test_clone_and_pickle_round_trip(mixed_frame):
    est = RNNDensity(n_orderings=2, order="random", cell="gru", **FAST).fit(mixed_frame)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "net_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.score_samples(mixed_frame), est.score_samples(mixed_frame))
    pd.testing.assert_frame_equal(back.sample(5, random_state=1), est.sample(5, random_state=1))


def test_grid_search_and_pipeline(binary8):
    grid = GridSearchCV(RNNDensity(**FAST), {"cell": ["lstm", "gru"]}, cv=2).fit(binary8)
    assert grid.best_params_["cell"] in ("lstm", "gru")
    pipe = make_pipeline(FunctionTransformer(), RNNDensity(**FAST)).fit(binary8)
    np.testing.assert_allclose(pipe.score(binary8),
                               pipe[-1].score_samples(binary8).sum(), rtol=1e-6)


def test_dropout_is_active_in_training_only():
    net = _net(dropout=0.5)
    x = _random_rows(8)
    net.train()
    torch.manual_seed(0)
    assert not torch.equal(net(x, 0), net(x, 0))
    net.eval()
    assert torch.equal(net(x, 0), net(x, 0))


def test_single_column_and_given_order():
    rng = np.random.RandomState(0)
    for X in (rng.normal(size=(100, 1)), (rng.rand(100, 1) < 0.3).astype(int)):
        est = RNNDensity(**FAST).fit(X)
        assert est.score_samples(X).shape == (100,)
        assert est.sample(3).shape == (3, 1)
    X = all_binary_rows(3)[[0, 1, 2, 3, 5, 7] * 20]
    est = RNNDensity(order=[2, 0, 1], **FAST).fit(X)
    assert est.net_.module_.network.ordering(0).tolist() == [2, 0, 1]
    assert_sums_to_one(est, all_binary_rows(3))


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params,pattern",
    [
        ({"cell": "rnn"}, "cell"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"n_layers": 0}, "n_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"tie_columns": "yes"}, "tie_columns"),
        ({"n_orderings": 0}, "n_orderings"),
        ({"order": "sideways"}, "order"),
        ({"order": [0, 0, 1]}, "permutation of range"),
        ({"component": "cauchy"}, "component"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"handle_unknown": "ignore"}, "handle_unknown"),
    ],
)
def test_invalid_parameters_are_named(params, pattern):
    X = np.random.RandomState(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=pattern):
        RNNDensity(**{**FAST, **params}).fit(X)


def test_bad_rows_are_named_and_leave_the_model_as_it_was(mixed_frame):
    est = RNNDensity(**FAST).fit(mixed_frame)
    before = est.score_samples(mixed_frame)
    bad = mixed_frame.copy()
    bad.loc[4, "v"] = np.nan
    with pytest.raises(ValueError, match=r"column 'v' holds NaN at row 4"):
        est.fit(bad)  # fit refuses missing cells; scoring marginalises them (skar.missing)
    assert np.isfinite(est.score_samples(bad)[4])
    bad = mixed_frame.copy()
    bad.loc[2, "c"] = "zzz"
    assert np.isneginf(est.score_samples(bad)[2])  # handle_unknown="zero_probability"
    with pytest.raises(ValueError, match=r"column 'c' holds the category 'zzz' at row 2"):
        est.set_params(handle_unknown="error").score_samples(bad)
    est.set_params(handle_unknown="zero_probability")
    with (pytest.raises(ValueError, match="4 features, but RNNDensity is expecting 5"),
          pytest.warns(UserWarning, match="feature names")):
        est.score_samples(mixed_frame.iloc[:, :4].to_numpy())
    np.testing.assert_array_equal(est.score_samples(mixed_frame), before)
