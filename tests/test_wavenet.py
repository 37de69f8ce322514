"""WaveNetDensity: causality and the exact receptive field, normalisation, units of the
quantised models, sampling (chi-square; queued == plain), consistency with a Gaussian AR(1)
process, scikit-learn checks, bad input; and the sequence data set helpers."""

import itertools
import pickle

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar import WaveNetDensity
from skar.base import sample_plain
from skar.datasets import load_sunspots, make_windows
from skar.models.wavenet import WaveNet, mu_law_compress, mu_law_expand, sample_queued

from .contract import (
    all_binary_rows,
    assert_samples_match_probabilities,
    assert_sums_to_one,
    integrate_1d,
    integrate_2d,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: these models are tiny, and on a shared machine torch's spinning
    worker threads slow every step down by an order of magnitude."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = dict(n_layers_per_block=2, residual_channels=6, dilation_channels=6, skip_channels=6)
FAST = dict(**TINY, max_iter=5, early_stopping=False, random_state=0)


def _ar1(n, T, phi, sigma, rng):
    """Stationary Gaussian AR(1): x_0 ~ N(0, sigma^2 / (1 - phi^2)), x_t = phi x_{t-1} + e_t."""
    x = np.empty((n, T))
    x[:, 0] = rng.normal(scale=sigma / np.sqrt(1 - phi**2), size=n)
    for t in range(1, T):
        x[:, t] = phi * x[:, t - 1] + rng.normal(scale=sigma, size=n)
    return x


# ---------------------------------------------------------------------------- causality
@pytest.mark.parametrize("kind", ["continuous", "binary"])
@pytest.mark.parametrize("layers,blocks,k", [(3, 2, 2), (2, 1, 3), (1, 1, 2)])
def test_step_t_depends_on_exactly_the_receptive_field_before_it(kind, layers, blocks, k):
    """d params_t / d x_s is non-zero exactly for t - R <= s <= t - 1 (Jacobian by autograd)."""
    torch.manual_seed(0)
    P, T = 3, 40
    # Wide enough that no output ReLU is dead everywhere (a dead unit has zero gradient).
    net = WaveNet(T, kind, P, n_layers_per_block=layers, n_blocks=blocks, kernel_size=k,
                  residual_channels=8, dilation_channels=8, skip_channels=16).double()
    R = net.receptive_field
    assert R == 1 + (k - 1) * blocks * (2**layers - 1)
    w = torch.randn(P, dtype=torch.float64)  # a generic combination of every step's params
    x = torch.randn(2, T, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda u: (net(u).reshape(2, T, P) * w).sum(-1), x, vectorize=True)  # (2, T, 2, T)
    assert torch.count_nonzero(jac[0, :, 1]) == 0 and torch.count_nonzero(jac[1, :, 0]) == 0
    jac = jac[0, :, 0].abs() + jac[1, :, 1].abs()  # (t, s)
    t, s = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    inside = torch.as_tensor((s < t) & (s >= t - R))
    assert torch.count_nonzero(jac[~inside]) == 0, "a step sees itself, the future or beyond R"
    assert (jac[inside] > 0).all(), "a step ignores part of its receptive field"


def test_categorical_inputs_causal_by_perturbation():
    torch.manual_seed(0)
    T, K = 30, 5
    net = WaveNet(T, "categorical", K, n_levels=K, n_layers_per_block=3, kernel_size=2,
                  residual_channels=8, dilation_channels=8, skip_channels=16)
    R = net.receptive_field
    x = torch.randint(K, (1, T)).float()
    base = net(x).reshape(T, K)
    for s in range(T):
        y = x.clone()
        y[0, s] = (y[0, s] + 1) % K
        changed = (net(y).reshape(T, K) != base).any(1).numpy()
        expected = (np.arange(T) > s) & (np.arange(T) <= s + R)
        np.testing.assert_array_equal(changed, expected, err_msg=f"input {s}")


def test_fitted_receptive_field_and_translation_equivariance():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 24))
    est = WaveNetDensity(n_layers_per_block=3, n_blocks=2, kernel_size=3, residual_channels=2,
                         dilation_channels=2, skip_channels=2, max_iter=1).fit(X[:5])
    assert est.receptive_field_ == 1 + 2 * 2 * 7
    # Past the receptive field, the conditional only depends on the window: shifting a
    # sequence by s steps shifts its per-step scores by s steps.
    est = WaveNetDensity(**FAST).fit(X)
    R = est.receptive_field_
    per = est.score_samples_per_feature(X[:5])
    shifted = np.roll(X[:5], -3, axis=1)
    per_s = est.score_samples_per_feature(shifted)
    np.testing.assert_allclose(per_s[:, R : 24 - 3], per[:, R + 3 :], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- normalisation
def test_binary_sequences_sum_to_one():
    rng = np.random.RandomState(0)
    X = (rng.rand(300, 7) < 0.3).astype(int)
    X[:, 1:] ^= X[:, :-1]
    est = WaveNetDensity(**FAST).fit(X)
    assert_sums_to_one(est, all_binary_rows(7))


def test_integer_codes_sum_to_one_and_are_log_probabilities():
    rng = np.random.RandomState(0)
    X = rng.randint(3, size=(300, 4))
    est = WaveNetDensity(quantization="integer", n_levels=3, **FAST).fit(X)
    space = np.array(list(itertools.product(range(3), repeat=4)))
    assert_sums_to_one(est, space)
    assert (est.score_samples(space) < 0).all()
    s = est.sample(50, random_state=0)
    assert s.dtype == X.dtype and set(np.unique(s)) <= {0, 1, 2}


def test_continuous_density_integrates_to_one_for_t1_and_t2():
    rng = np.random.RandomState(0)
    x1 = np.concatenate([rng.normal(-2, 0.5, 200), rng.normal(1, 1, 200)])[:, None]
    est = WaveNetDensity(n_components=3, **FAST).fit(x1)
    assert integrate_1d(est, -12, 12) == pytest.approx(1.0, abs=1e-2)
    X2 = _ar1(400, 2, 0.8, 1.0, rng)
    est = WaveNetDensity(n_components=2, component="logistic", **FAST).fit(X2)
    assert integrate_2d(est, (-12, -12), (12, 12)) == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("quantization", ["linear", "mu_law"])
def test_quantised_density_integrates_to_one_in_user_units(quantization):
    """Summing P(codes) times the bins' widths is exactly 1; integrating the density on a fine
    grid over value_range (T=1) is 1 too."""
    rng = np.random.RandomState(0)
    X = np.tanh(_ar1(300, 2, 0.9, 0.5, rng)) * 3.0
    est = WaveNetDensity(quantization=quantization, n_levels=16, value_range=(-3, 3),
                         **FAST).fit(X)
    edges = est.schema_.edges
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    grid = np.array(list(itertools.product(centres, repeat=2)))
    cell = np.prod(list(itertools.product(widths, repeat=2)), axis=1)
    assert np.sum(np.exp(est.score_samples(grid)) * cell) == pytest.approx(1.0, abs=1e-5)
    if quantization == "mu_law":
        assert widths[0] > 10 * widths[7]  # mu-law: fine bins near the centre
    est1 = WaveNetDensity(quantization=quantization, n_levels=16, value_range=(-3, 3),
                          **FAST).fit(X[:, :1])
    assert integrate_1d(est1, -3, 3, n=200_001) == pytest.approx(1.0, abs=1e-3)


def test_mu_law_companding_round_trip_and_256_levels():
    y = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(mu_law_expand(mu_law_compress(y, 255), 255), y, atol=1e-12)
    rng = np.random.RandomState(0)
    X = np.clip(rng.laplace(scale=0.1, size=(100, 8)), -1, 1)
    est = WaveNetDensity(quantization="mu_law", value_range=(-1, 1), **FAST).fit(X)
    assert len(est.schema_.edges) == 257
    assert est.net_.module_.network.n_params == 256
    s = est.sample(20, random_state=0)
    assert s.min() >= -1 and s.max() <= 1


# ---------------------------------------------------------------------------- sampling
def test_samples_match_probabilities_chi_square():
    rng = np.random.RandomState(0)
    X = (rng.rand(600, 5) < 0.4).astype(int)
    X[:, 2:] ^= X[:, :-2]
    est = WaveNetDensity(**FAST).fit(X)
    assert_samples_match_probabilities(est, all_binary_rows(5), n_samples=20_000)


def test_quantised_samples_fall_in_bins_with_the_model_probabilities():
    rng = np.random.RandomState(0)
    X = np.tanh(_ar1(300, 2, 0.9, 0.7, rng))
    est = WaveNetDensity(quantization="mu_law", n_levels=4, value_range=(-1, 1), **FAST).fit(X)
    S = est.sample(20_000, random_state=0)
    codes = est.schema_.encode(S).astype(int)
    centres = (est.schema_.edges[:-1] + est.schema_.edges[1:]) / 2
    space = np.array(list(itertools.product(centres, repeat=2)))
    probs = np.exp(est.score_samples(space)) * np.prod(
        np.diff(est.schema_.edges)[np.array(list(itertools.product(range(4), repeat=2)))], 1)
    counts = np.bincount(codes[:, 0] * 4 + codes[:, 1], minlength=16)
    assert stats.chisquare(counts, probs / probs.sum() * len(S)).pvalue > 1e-3
    # Within a bin, the position is uniform (the density is flat on each bin).
    k = codes[:, 0] == 1
    lo, hi = est.schema_.edges[1:3]
    assert stats.kstest((S[k, 0] - lo) / (hi - lo), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("quantization,data", [
    (None, "real"), (None, "binary"), ("integer", "codes"), ("mu_law", "real")])
def test_queued_sampler_draws_what_the_plain_loop_draws(quantization, data):
    rng = np.random.RandomState(0)
    X = {"real": np.tanh(_ar1(100, 40, 0.9, 0.5, rng)),
         "binary": (rng.rand(100, 40) < 0.5).astype(int),
         "codes": rng.randint(5, size=(100, 40))}[data]
    kw = dict(n_levels=5) if quantization == "integer" else {}
    est = WaveNetDensity(n_layers_per_block=3, n_blocks=2, kernel_size=3, residual_channels=6,
                         dilation_channels=6, skip_channels=6, max_iter=2, early_stopping=False,
                         random_state=0, quantization=quantization, **kw).fit(X)
    assert est.receptive_field_ < 40  # the queues wrap around
    module = est.net_.module_
    plain = sample_plain(module, 64, torch.Generator().manual_seed(3))
    fast = sample_queued(module, 64, torch.Generator().manual_seed(3))
    if quantization is None and data == "real":
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)
    else:
        torch.testing.assert_close(fast.floor(), plain.floor(), rtol=0, atol=0)
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)
    # And the estimator's sample() uses the queues.
    np.testing.assert_allclose(
        np.asarray(est.sample(64, random_state=5), dtype=float),
        np.asarray(est.schema_.decode(sample_plain(
            module, 64, torch.Generator().manual_seed(
                int(np.random.RandomState(5).randint(np.iinfo(np.int32).max)))).numpy()),
            dtype=float),
        atol=1e-3)


# ---------------------------------------------------------------------------- consistency
def test_consistency_gaussian_ar1_entropy_rate_within_005_nats_per_step():
    """The NLL of the first step approaches the stationary marginal's entropy
    0.5 log(2 pi e sigma^2 / (1 - phi^2)), and later steps the entropy rate
    0.5 log(2 pi e sigma^2)."""
    phi, sigma, T = 0.8, 0.5, 6
    rng = np.random.RandomState(0)
    X_train, X_test = _ar1(4_000, T, phi, sigma, rng), _ar1(20_000, T, phi, sigma, rng)
    est = WaveNetDensity(n_layers_per_block=1, residual_channels=8, dilation_channels=8,
                         skip_channels=16, n_components=1, max_iter=12, batch_size=256,
                         learning_rate_init=1e-2, early_stopping=False,
                         random_state=0).fit(X_train)
    per = -est.score_samples_per_feature(X_test).mean(0)  # NLL per step
    h0 = 0.5 * np.log(2 * np.pi * np.e * sigma**2 / (1 - phi**2))
    rate = 0.5 * np.log(2 * np.pi * np.e * sigma**2)
    assert per[0] - h0 == pytest.approx(0.0, abs=0.05), (per[0], h0)
    assert per[1:].mean() - rate == pytest.approx(0.0, abs=0.05), (per[1:], rate)
    true_nll = h0 + (T - 1) * rate
    assert (-est.score_samples(X_test).mean() - true_nll) / T < 0.05


# ---------------------------------------------------------------------------- scikit-learn
# The subset-invariance check compares a row's score alone and inside a bigger batch at
# rtol=1e-7. The network computes in float32 and the CPU convolution kernels choose their
# algorithm by the batch, so a row's log density can move by one float32 ulp (seen: 4.8e-7 on
# a score of -2.98) with the batch it is scored in; the check then passes or fails by chance.
# The same property is tested below at float32 tolerance.
EXPECTED_FAILED = {
    "check_methods_subset_invariance": "float32 convolution rounding depends on the batch; "
    "tested at rtol=1e-5 in test_scores_do_not_depend_on_the_batch",
}


@parametrize_with_checks(
    [WaveNetDensity(**TINY, max_iter=2, random_state=0),
     WaveNetDensity(**TINY, quantization="linear", n_levels=8, max_iter=2, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_scores_do_not_depend_on_the_batch():
    rng = np.random.RandomState(0)
    X = np.cumsum(rng.normal(size=(120, 16)), axis=1)
    est = WaveNetDensity(**TINY, quantization="linear", n_levels=8, max_iter=2,
                         random_state=0).fit(X)
    whole = est.score_samples(X)
    one_by_one = np.concatenate([est.score_samples(X[i : i + 1]) for i in range(0, 120, 7)])
    np.testing.assert_allclose(one_by_one, whole[::7], rtol=1e-5)


def test_clone_and_pickle_round_trip():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 12))
    est = WaveNetDensity(**FAST).fit(X)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "net_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(back.sample(4, random_state=1), est.sample(4, random_state=1))
    assert back.receptive_field_ == est.receptive_field_


def test_units_scaling_by_ten_shifts_log_density_by_t_log_10():
    rng = np.random.RandomState(0)
    X = _ar1(200, 10, 0.7, 1.0, rng) + 4.0
    a = WaveNetDensity(**FAST).fit(X).score_samples(X)
    b = WaveNetDensity(**FAST).fit(10 * X).score_samples(10 * X)
    np.testing.assert_allclose(a - b, 10 * np.log(10.0), atol=1e-4)
    qa = WaveNetDensity(quantization="linear", n_levels=8, **FAST).fit(X).score_samples(X)
    qb = WaveNetDensity(quantization="linear", n_levels=8, **FAST).fit(10 * X).score_samples(
        10 * X)
    np.testing.assert_allclose(qa - qb, 10 * np.log(10.0), atol=1e-4)


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(60, 10))
    return (WaveNetDensity(**FAST).fit(X),
            WaveNetDensity(quantization="mu_law", value_range=(-1, 1), n_levels=16,
                           **FAST).fit(X),
            WaveNetDensity(quantization="integer", n_levels=4, **FAST).fit(
                rng.randint(4, size=(60, 10))))


def test_wrong_length_names_both_lengths(fitted):
    est = fitted[0]
    with pytest.raises(ValueError, match="sequence of length 10") as info:
        est.score_samples(np.zeros((3, 7)))
    assert "X has 7 features" in str(info.value)


def test_nan_and_inf_name_row_step_and_value(fitted):
    X = np.zeros((3, 10))
    X[2, 4] = np.nan
    for est in fitted[:2]:
        with pytest.raises(ValueError, match=r"nan at row 2, time step 4.*finite"):
            est.score_samples(X)
    X[2, 4] = np.inf
    with pytest.raises(ValueError, match=r"inf at row 2, time step 4"):
        fitted[0].score_samples(X)
    with pytest.raises(ValueError, match=r"time step 4"):
        WaveNetDensity(**FAST).fit(np.vstack([X, np.ones((5, 10))]))


def test_values_outside_the_quantisation_range_are_errors(fitted):
    X = np.zeros((2, 10))
    X[1, 6] = 1.5
    with pytest.raises(ValueError,
                       match=r"1\.5 at row 1, time step 6.*value_range \[-1\.0, 1\.0\]"):
        fitted[1].score_samples(X)
    X[1, 6] = 4
    with pytest.raises(ValueError, match=r"4\.0 at row 1, time step 6.*codes 0 \.\. 3"):
        fitted[2].score_samples(X)
    X[1, 6] = 0.5
    with pytest.raises(ValueError, match=r"0\.5 at row 1.*integer codes"):
        fitted[2].score_samples(X)
    with pytest.raises(ValueError, match="value_range must be two finite numbers"):
        WaveNetDensity(quantization="linear", value_range=(1, -1), **FAST).fit(X)


def test_binary_model_rejects_other_values_and_text_is_a_type_error(fitted):
    rng = np.random.RandomState(0)
    est = WaveNetDensity(**FAST).fit((rng.rand(40, 5) < 0.5).astype(int))
    X = np.zeros((2, 5))
    X[0, 3] = 2
    with pytest.raises(ValueError, match=r"2\.0 at row 0, time step 3.*binary"):
        est.score_samples(X)
    bad = np.zeros((2, 10), dtype=object)
    bad[1, 2] = "x"
    with pytest.raises(TypeError, match=r"'x' at row 1, time step 2"):
        fitted[0].score_samples(bad)


# ---------------------------------------------------------------------------- data sets
def test_make_windows():
    w = make_windows(np.arange(10), window=4, stride=3)
    np.testing.assert_array_equal(w, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    assert w.flags.writeable and w.flags.c_contiguous
    assert make_windows([1.0, 2.0], 2).shape == (1, 2)
    with pytest.raises(ValueError, match="longer than the series"):
        make_windows(np.arange(3), 4)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        make_windows(np.arange(3), 2, stride=0)
    with pytest.raises(ValueError, match="1-D"):
        make_windows(np.zeros((3, 2)), 2)


def test_load_sunspots():
    b = load_sunspots()
    assert b.data.shape == (3126,) and b.data.dtype == np.float64
    assert (b.year[0], b.month[0], b.year[-1], b.month[-1]) == (1749, 1, 2009, 6)
    assert np.all(np.diff(b.year * 12 + b.month) == 1)  # no gap
    assert b.data[0] == 58.0 and b.data[-1] == 2.6 and b.data.max() == 253.8
    assert b.data.min() >= 0 and "SILSO" in b.citation
    series, y = load_sunspots(return_X_y=True)
    assert y is None and np.array_equal(series, b.data)


@pytest.mark.parametrize("quantization", ["linear", "mu_law"])
def test_history_is_in_the_units_of_x_like_the_scores(quantization):
    """Every row the same sequence: the validation NLL of the one epoch is minus the score of
    that row, in the units of X (the bins' log-widths included), and the per-step scores add
    up to it."""
    row = np.array([-0.9, -0.2, 0.05, 0.3, 0.8, 0.95])
    X = np.tile(row, (20, 1))
    est = WaveNetDensity(n_layers_per_block=2, residual_channels=4, dilation_channels=4,
                         skip_channels=4, quantization=quantization, n_levels=8,
                         value_range=(-1, 1), max_iter=1, validation_fraction=0.2,
                         random_state=0).fit(X)
    score = est.score_samples(row[None])[0]
    codes = est.schema_.encode(row[None])
    widths = np.diff(est.schema_.edges)[codes.astype(int)]
    assert np.log(widths).sum() != pytest.approx(0.0)  # the units matter here
    valid = est.history_["valid_nll"].iloc[-1]
    assert valid == pytest.approx(-score, abs=1e-4)
    np.testing.assert_allclose(est.score_samples_per_feature(row[None]).sum(), score,
                               rtol=1e-6)
