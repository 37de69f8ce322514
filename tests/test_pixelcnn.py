"""PixelCNNDensity and the discretized logistic mixture: the autoregressive property over pixels
and channels (no blind spot), normalisation by enumeration, sampling against scoring, the cached
sampler against the plain loop, class conditioning, scikit-learn compatibility, bad input."""

import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar.base import sample_plain
from skar.distributions import DiscretizedLogisticMixture
from skar.models.pixelcnn import GatedPixelCNN, PixelCNNDensity, sample_row_cached

from .contract import all_binary_rows, assert_samples_match_probabilities, assert_sums_to_one


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny convolutions run far faster on one thread, above all on a shared, busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = dict(n_filters=6, n_layers=2, head_filters=8, max_iter=2, early_stopping=False,
            random_state=0)


def all_level_rows(d: int, k: int) -> np.ndarray:
    """Every row of {0, .., k-1}^d."""
    return np.array(list(itertools.product(range(k), repeat=d)), dtype=np.int64)


# ---------------------------------------------------------------------------- the family
def _logistic_bins_reference(logits, loc, scale, k):
    """Bin masses from scipy's logistic CDF in float64, tails folded into the edge levels."""
    w = np.exp(logits - logits.max())
    w /= w.sum()
    edges = np.concatenate([[-np.inf], 2 * (np.arange(k - 1) + 0.5) / (k - 1) - 1, [np.inf]])
    cdf = stats.logistic.cdf((edges[:, None] - loc) / scale)  # (k+1, n_components)
    return (np.diff(cdf, axis=0) * w).sum(1)


@pytest.mark.parametrize("k", [2, 3, 17, 256])
def test_discretized_logistic_mixture_sums_to_one_and_matches_scipy(k):
    fam = DiscretizedLogisticMixture(n_components=3, n_levels=k)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(6, 9, generator=g, dtype=torch.float64) * 2
    params[0, 3:6] = torch.tensor([-1.0, 1.0, 0.0])  # components centred on both edges
    params[1, 6:] = -30.0  # scales at the floor: nearly all mass in one bin
    params[2, 3:6] = torch.tensor([-9.0, 9.0, 40.0])  # far outside [-1, 1]
    levels = torch.arange(k, dtype=torch.float64)
    logp = fam.log_prob(params[:, None, :].expand(6, k, 9), levels.expand(6, k))  # (6, k)
    assert torch.isfinite(logp).all()
    np.testing.assert_allclose(logp.exp().sum(1).numpy(), 1.0, atol=1e-12)
    for row in range(6):
        logits, loc, raw = params[row].numpy().reshape(3, 3)
        scale = fam.min_scale + np.logaddexp(0, raw)
        ref = _logistic_bins_reference(logits, loc, scale, k)
        np.testing.assert_allclose(logp[row].exp().numpy(), ref, rtol=1e-6, atol=1e-12)


def test_discretized_logistic_mixture_samples_match_its_probabilities():
    fam = DiscretizedLogisticMixture(n_components=2, n_levels=9)
    params = torch.tensor([[0.3, -0.2, -0.8, 0.9, -1.0, -1.5]], dtype=torch.float64)
    probs = fam.log_prob(params.expand(9, 6), torch.arange(9.0)).exp().numpy()
    draws = fam.sample(params.expand(40_000, 6), torch.Generator().manual_seed(1)).numpy()
    assert set(np.unique(draws)) <= set(range(9))
    counts = np.bincount(draws.astype(int), minlength=9)
    assert stats.chisquare(counts, probs * 40_000).pvalue > 1e-3


# ---------------------------------------------------------------------------- the network
def _jacobian(net, x, context=None):
    """``(D, D)``: the sum over the images of ``x`` (B, D) and over each column's parameters
    of ``|d params[column d] / d x[column e]|``, one backward pass per column."""
    B, D = x.shape
    x = x.detach().requires_grad_()
    out = net(x, context=None if context is None else context.expand(B)).view(B, D, -1)
    dep = torch.zeros(D, D, dtype=x.dtype)
    for d in range(D):
        (grad,) = torch.autograd.grad(out[:, d].sum(), x, retain_graph=True)
        dep[d] = grad.abs().sum(0)
    return dep


@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 4, 4), (2, 3, 5)])
@pytest.mark.parametrize("n_classes", [0, 3])
def test_jacobian_is_exactly_autoregressive_over_pixels_and_channels_without_blind_spot(
    shape, n_classes
):
    torch.manual_seed(0)
    net = GatedPixelCNN(shape, n_levels=5, n_params=2, n_filters=12, n_layers=6,
                        kernel_size=3, head_filters=12, n_classes=n_classes).double()
    D = math.prod(shape)
    ordering = net.ordering().numpy()
    position = np.empty(D, dtype=np.int64)
    position[ordering] = np.arange(D)
    context = torch.tensor([1]) if n_classes else None
    x = torch.rand(4, D, dtype=torch.float64) * 4
    dep = _jacobian(net, x, context).numpy() != 0  # dep[d, e]: column d's params use x_e
    earlier = position[None, :] < position[:, None]
    assert not dep[~earlier].any(), "a conditional sees its own pixel channel or a later one"
    # No blind spot: with 6 layers of 3 x 3 the receptive field covers the whole image, so
    # every earlier pixel channel (above-right included) influences every conditional.
    missing = np.argwhere(earlier & ~dep)
    assert missing.size == 0, f"blind spot: column {missing[0, 0]} ignores {missing[0, 1]}"
    # Channel order inside a pixel: G sees R of the same pixel, R sees neither G nor B.
    if shape[0] == 3:
        H, W = shape[1:]
        r, g, b = (c * H * W + 1 * W + 2 for c in range(3))
        assert dep[g, r] and dep[b, r] and dep[b, g] and not dep[r, g] and not dep[r, b]


def test_jacobian_test_catches_a_blind_spot_and_a_leak():
    """The checks above can fail: without the vertical-to-horizontal link the stack cannot see
    the rows above (the blind spot of a single masked stack); with the centre tap of the first
    layer unmasked a pixel sees itself."""
    torch.manual_seed(0)
    net = GatedPixelCNN((1, 4, 4), n_levels=2, n_params=1, n_filters=4, n_layers=6,
                        kernel_size=3, head_filters=4).double()
    x = torch.rand(4, 16, dtype=torch.float64)
    for block in net.blocks:
        torch.nn.init.zeros_(block.v_to_h.weight)
    dep = _jacobian(net, x).numpy() != 0
    assert not dep[5, 2]  # pixel (1, 1) no longer sees (0, 2), above-right of it
    net = GatedPixelCNN((1, 4, 4), n_levels=2, n_params=1, n_filters=4, n_layers=2,
                        kernel_size=3, head_filters=4).double()
    net.blocks[0].h_conv.mask.fill_(1.0)
    assert (_jacobian(net, x).numpy().diagonal() != 0).any()


# ---------------------------------------------------------------------------- normalisation
@pytest.fixture(scope="module")
def binary_2x2():
    rng = np.random.RandomState(0)
    rows = all_binary_rows(4)
    p = rng.dirichlet(np.ones(16))
    return rows[rng.choice(16, size=300, p=p)]


@pytest.mark.parametrize("side", [2, 3])
def test_binary_images_sum_to_one_by_enumeration(side):
    rng = np.random.RandomState(side)
    X = (rng.rand(200, side * side) < 0.4).astype(int)
    est = PixelCNNDensity(**TINY).fit(X)
    assert est.image_shape_ == (1, side, side) and est.output_ == "bernoulli"
    assert_sums_to_one(est, all_binary_rows(side * side))


@pytest.mark.parametrize(
    "shape,k,output",
    [((2, 2, 2), 2, "auto"), ((1, 2, 2), 3, "auto"), ((1, 2, 2), 4, "logistic_mixture"),
     ((2, 1, 2), 4, "categorical")],
)
def test_multichannel_and_multilevel_images_sum_to_one(shape, k, output):
    D = math.prod(shape)
    rng = np.random.RandomState(0)
    X = rng.randint(k, size=(150, D))
    est = PixelCNNDensity(shape, output=output, n_components=2, **TINY).fit(X)
    assert est.n_levels_ == k
    assert_sums_to_one(est, all_level_rows(D, k))


def test_samples_match_scores_chi_square(binary_2x2):
    est = PixelCNNDensity(**{**TINY, "max_iter": 20}).fit(binary_2x2)
    assert_samples_match_probabilities(est, all_binary_rows(4), n_samples=20_000)


def test_logistic_mixture_samples_match_scores_chi_square():
    rng = np.random.RandomState(0)
    X = rng.randint(5, size=(200, 2)) // 2 * 2
    est = PixelCNNDensity((1, 1, 2), output="logistic_mixture", n_components=2,
                          n_levels=5, **{**TINY, "max_iter": 10}).fit(X)
    assert_samples_match_probabilities(est, all_level_rows(2, 5), n_samples=20_000)


# ---------------------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    "shape,k,output,labels",
    [((1, 5, 5), 2, "auto", False), ((1, 4, 6), 2, "auto", True),
     ((3, 3, 3), 256, "auto", False), ((2, 3, 4), 6, "categorical", True)],
)
def test_cached_sampler_draws_exactly_what_the_plain_loop_draws(shape, k, output, labels):
    rng = np.random.RandomState(0)
    X = rng.randint(k, size=(60, math.prod(shape)))
    X[0] = k - 1
    y = rng.randint(3, size=60) if labels else None
    est = PixelCNNDensity(shape, output=output, n_components=3,
                          **{**TINY, "n_layers": 3, "max_iter": 1}).fit(X, y)
    module = est.net_.module_
    context = torch.tensor([0, 1, 2] * 10) if labels else None
    plain = sample_plain(module, 30, torch.Generator().manual_seed(7), context)
    cached = sample_row_cached(module, 30, torch.Generator().manual_seed(7), context)
    assert torch.equal(plain, cached)
    assert plain.min() >= 0 and plain.max() <= k - 1
    assert len(torch.unique(plain)) > 1


def test_sample_shapes_dtypes_and_reproducibility(binary_2x2):
    est = PixelCNNDensity(**TINY).fit(binary_2x2.astype(np.uint8))
    a = est.sample(7, random_state=3)
    assert a.shape == (7, 4) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, est.sample(7, random_state=3))
    np.testing.assert_array_equal(est.sample(5), est.sample(5))  # estimator's random_state


# ---------------------------------------------------------------------------- conditioning
@pytest.fixture(scope="module")
def labelled():
    """Class 0: mostly-dark 2x2 images, class 1 mostly-bright, class 7 anything."""
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 7], [150, 100, 50])
    p = np.where(y == 0, 0.15, np.where(y == 1, 0.85, 0.5))
    X = (rng.rand(300, 4) < p[:, None]).astype(int)
    est = PixelCNNDensity(**{**TINY, "max_iter": 30, "learning_rate_init": 1e-2}).fit(X, y)
    return X, y, est


def test_conditional_sums_to_one_for_every_class_and_the_mixture(labelled):
    X, y, est = labelled
    assert est.classes_.tolist() == [0, 1, 7]
    np.testing.assert_allclose(est.class_prior_, [0.5, 1 / 3, 1 / 6])
    rows = all_binary_rows(4)
    per_class = []
    for label in est.classes_:
        logp = est.score_samples(rows, np.full(16, label))
        assert abs(np.exp(logp).sum() - 1) < 1e-5
        per_class.append(logp)
    mixture = est.score_samples(rows)  # y=None: sum_k p(k) p(x | k)
    assert abs(np.exp(mixture).sum() - 1) < 1e-5
    expected = np.log(np.exp(np.array(per_class)).T @ est.class_prior_)
    np.testing.assert_allclose(mixture, expected, rtol=1e-6)
    # The label is used: dark images are likelier under class 0 than under class 1.
    dark = np.zeros((1, 4), dtype=int)
    assert est.score_samples(dark, [0])[0] > est.score_samples(dark, [1])[0] + 2.0


def test_conditional_samples_match_scores_per_class(labelled):
    X, y, est = labelled
    rows = all_binary_rows(4)
    for label in (0, 1):
        probs = np.exp(est.score_samples(rows, np.full(16, label)))
        draws = est.sample(6000, random_state=label, y=label)
        index = {tuple(r): i for i, r in enumerate(rows.tolist())}
        counts = np.bincount([index[tuple(r)] for r in draws.tolist()], minlength=16)
        expected = probs / probs.sum() * 6000
        keep = expected >= 5
        obs = np.append(counts[keep], counts[~keep].sum())
        exp = np.append(expected[keep], expected[~keep].sum())
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        assert stats.chisquare(obs, exp).pvalue > 1e-3
    mixed = est.sample(400, random_state=0)  # labels drawn from class_prior_
    assert mixed.shape == (400, 4)
    assert 0.3 < mixed.mean() < 0.7


def test_unconditional_fit_ignores_y_at_score_time(binary_2x2):
    est = PixelCNNDensity(**TINY).fit(binary_2x2)
    assert not hasattr(est, "classes_")
    np.testing.assert_array_equal(est.score_samples(binary_2x2[:5]),
                                  est.score_samples(binary_2x2[:5], np.arange(5)))
    # Refitting with labels makes it conditional, refitting without makes it unconditional.
    est.fit(binary_2x2, np.arange(300) % 2)
    assert est.classes_.tolist() == [0, 1]
    est.fit(binary_2x2)
    assert not hasattr(est, "classes_")
    assert est.net_.module_.network.n_classes == 0


def test_score_and_bits_per_dim(labelled):
    X, y, est = labelled
    assert est.score(X, y) == pytest.approx(est.score_samples(X, y).sum())
    assert est.score(X) == pytest.approx(est.score_samples(X).sum())
    bpd = est.bits_per_dim(X, y)
    assert bpd == pytest.approx(-est.score_samples(X, y).mean() / (4 * np.log(2)))
    assert 0 < bpd < 1  # a binary pixel costs at most one bit under a sensible model
    per_pixel = est.score_samples_per_feature(X[:20], y[:20])
    np.testing.assert_allclose(per_pixel.sum(1), est.score_samples(X[:20], y[:20]), rtol=1e-6)


# ---------------------------------------------------------------------------- input forms
def test_three_and_four_dimensional_images_are_flattened(binary_2x2):
    flat = PixelCNNDensity(**TINY).fit(binary_2x2)
    imgs = binary_2x2.reshape(-1, 2, 2)
    est3 = PixelCNNDensity(**TINY).fit(imgs)
    est4 = PixelCNNDensity(**TINY).fit(imgs[:, None])
    assert est3.image_shape_ == est4.image_shape_ == (1, 2, 2)
    ref = flat.score_samples(binary_2x2)
    np.testing.assert_allclose(est3.score_samples(imgs), ref, rtol=1e-6)
    np.testing.assert_allclose(est4.score_samples(imgs[:, None]), ref, rtol=1e-6)
    np.testing.assert_allclose(est4.score_samples(binary_2x2), ref, rtol=1e-6)
    rgb = np.random.RandomState(0).randint(4, size=(50, 3, 2, 3))
    est = PixelCNNDensity(**TINY).fit(rgb)
    assert est.image_shape_ == (3, 2, 3) and est.n_features_in_ == 18
    assert PixelCNNDensity(**TINY).fit(np.zeros((20, 6), dtype=int) + [0, 1] * 3).image_shape_ \
        == (1, 1, 6)
    # The image shape travels with the data, not through the estimator: fit leaves no
    # private attribute behind, and the fitted attributes are only the documented ones.
    assert [k for k in vars(est4) if k.startswith("_") and "shape" in k] == []
    assert {"image_shape_", "n_levels_", "output_"} <= set(vars(est4))


def test_old_sampler_name_warns_and_draws_the_same(binary_2x2):
    from skar.models import pixelcnn

    est = PixelCNNDensity(**TINY).fit(binary_2x2)
    module = est.net_.module_
    new = sample_row_cached(module, 5, torch.Generator().manual_seed(3))
    with pytest.warns(FutureWarning, match="renamed sample_row_cached"):
        old = pixelcnn.sample_cached(module, 5, torch.Generator().manual_seed(3))
    assert torch.equal(new, old)


def test_clone_and_pickle_round_trip(labelled):
    X, y, est = labelled
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "net_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.score_samples(X, y), est.score_samples(X, y))
    np.testing.assert_array_equal(back.sample(5, random_state=1, y=7),
                                  est.sample(5, random_state=1, y=7))


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make_bad,pattern",
    [
        (lambda X: X[:, :3], "X has 3 features, but PixelCNNDensity is expecting 4"),
        (lambda X: np.where(np.arange(4) == 2, 2, X),
         r"pixel 2 \(channel 0, row 1, column 0\) of row 0 holds 2.0; pixels must be "
         r"integers in 0..1"),
        (lambda X: np.where(np.arange(4) == 1, -1, X), r"Negative values.*pixel 1 .* holds -1.0"),
        (lambda X: np.where(np.arange(4) == 3, 0.5, X), r"pixel 3 .* holds 0.5"),
        (lambda X: np.where(np.arange(4) == 0, np.nan, X), r"pixel 0 .* holds NaN"),
        (lambda X: X.reshape(-1, 1, 1, 4), r"images of shape \(1, 1, 4\).* \(1, 2, 2\)"),
    ],
)
def test_bad_pixels_are_named_and_leave_the_model_as_it_was(labelled, make_bad, pattern):
    X, y, est = labelled
    before = est.score_samples(X[:10], y[:10])
    with pytest.raises(ValueError, match=pattern):
        est.score_samples(make_bad(X[:10].astype(float)), y[:10])
    np.testing.assert_array_equal(est.score_samples(X[:10], y[:10]), before)


def test_bad_labels_and_shapes_are_named(labelled):
    X, y, est = labelled
    with pytest.raises(ValueError, match=r"label 5 at row 1, which was not seen in fit.*"
                                         r"\[0, 1, 7\]"):
        est.score_samples(X[:3], [0, 5, 1])
    with pytest.raises(ValueError, match="label 3"):
        est.sample(2, y=3)
    with pytest.raises(ValueError, match="y has 2 entries, but X has 3 rows"):
        est.score_samples(X[:3], [0, 1])
    with pytest.raises(ValueError, match="fitted with class labels y"):
        est.score_samples_per_feature(X[:3])
    with pytest.raises(ValueError, match=r"image_shape=\(1, 3, 3\) needs 9 features"):
        PixelCNNDensity((3, 3), **TINY).fit(X)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        PixelCNNDensity(kernel_size=4, **TINY).fit(X)
    with pytest.raises(ValueError, match="output='bernoulli' needs binary pixels"):
        PixelCNNDensity(output="bernoulli", **TINY).fit(X * 2)
    with pytest.raises(ValueError, match=r"n_filters=2 is smaller than the 3 image channels"):
        PixelCNNDensity((3, 2, 2), **{**TINY, "n_filters": 2}).fit(np.zeros((10, 12)))
    with pytest.raises(ValueError,
                       match=r"pixel \d+ .* holds 3.0; .*integers in 0..2 .*set n_levels"):
        PixelCNNDensity(n_levels=3, **TINY).fit(X * 3)


# ---------------------------------------------------------------------------- scikit-learn
# Expected failures, each for a reason that is not a bug:
EXPECTED_FAILED: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "the check fits on real values in [0, 1) without applying the categorical input tag; "
        "pixels are integer levels, so fit rightly rejects them"
    ),
}


@parametrize_with_checks(
    [PixelCNNDensity(n_filters=4, n_layers=1, head_filters=4, max_iter=2, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
