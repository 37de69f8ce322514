"""Reliability catalogue: bad input and faults over every estimator and the outlier detector.

Each case asserts one of two outcomes:

* a **clear error**: the exception type, a message naming the problem and its place (column,
  row, value, parameter), and a previously fitted estimator whose scores on fixed rows are
  unchanged (bit for bit) after the failed call;
* a **defined value**: a documented result where an error would be wrong (a row beyond what the
  model represents scores ``-inf``, never NaN; a diverging fit warns and keeps its best
  weights; weights are scale-free).
"""

from __future__ import annotations

import pickle
import signal
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from skorch.callbacks import Callback
from skorch.dataset import Dataset, ValidSplit

from skar import (
    ARTransformerDensity,
    MADEDensity,
    NADEDensity,
    PixelCNNDensity,
    RNADEDensity,
    WaveNetDensity,
)
from skar.anomaly import DensityOutlierDetector
from skar.training import NLLCriterion


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models on a shared machine: one torch thread gives the same numbers, faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- the estimators
def _rng() -> np.random.RandomState:
    return np.random.RandomState(0)


def _gaussian(n: int = 80, d: int = 3) -> np.ndarray:
    return _rng().normal(size=(n, d)) @ np.triu(np.ones((d, d)))


def _walks(n: int = 80, d: int = 8) -> np.ndarray:
    return np.cumsum(_rng().normal(size=(n, d)), axis=1)


def _images(n: int = 80) -> np.ndarray:
    return (_rng().rand(n, 16) < 0.3).astype(int)  # 4 x 4 binary images


def _binary(n: int = 80) -> np.ndarray:
    return (_rng().rand(n, 4) < 0.3).astype(int)


# name -> (factory of a tiny unfitted estimator, training data, is the data continuous)
ESTIMATORS = {
    "made": (lambda **kw: MADEDensity(**{**dict(hidden_layer_sizes=(8,), max_iter=2,
                                                random_state=0), **kw}), _gaussian, True),
    "nade": (lambda **kw: NADEDensity(**{**dict(hidden_layer_sizes=(8,), max_iter=2,
                                                random_state=0), **kw}), _binary, False),
    "rnade": (lambda **kw: RNADEDensity(**{**dict(hidden_layer_sizes=(8,), n_components=2,
                                                  max_iter=2, random_state=0), **kw}),
              _gaussian, True),
    "transformer": (lambda **kw: ARTransformerDensity(**{**dict(
        n_layers=1, n_heads=2, d_model=8, max_iter=2, random_state=0), **kw}), _gaussian, True),
    "wavenet": (lambda **kw: WaveNetDensity(**{**dict(
        n_layers_per_block=2, residual_channels=8, dilation_channels=8, skip_channels=8,
        n_components=2, max_iter=2, random_state=0), **kw}), _walks, True),
    "pixelcnn": (lambda **kw: PixelCNNDensity(**{**dict(
        n_filters=8, n_layers=2, head_filters=8, max_iter=2, random_state=0), **kw}),
        _images, False),
}
ALL = list(ESTIMATORS)
CONTINUOUS = [k for k, (_, _, cont) in ESTIMATORS.items() if cont]

_FITTED: dict[str, bytes] = {}


def fitted(name: str):
    """A fitted tiny estimator (fitted once per session, then unpickled fresh per test)."""
    if name not in _FITTED:
        make, data, _ = ESTIMATORS[name]
        _FITTED[name] = pickle.dumps(make().fit(data()))
    return pickle.loads(_FITTED[name])


def rows(name: str) -> np.ndarray:
    """The fixed rows whose scores must not change after a failed call."""
    return ESTIMATORS[name][1]()[:5]


class Fitted:
    """A fitted estimator and its scores on the fixed rows, to check after a failed call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.est = fitted(name)
        self.before = self.est.score_samples(rows(name))

    def unchanged(self) -> None:
        np.testing.assert_array_equal(self.est.score_samples(rows(self.name)), self.before)


def _with_value(X: np.ndarray, value: float, row: int = 3, col: int = 1) -> np.ndarray:
    X = np.array(X, dtype=np.float64)
    X[row, col] = value
    return X


# ---------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("name", ALL)
def test_nan_in_refit_is_named_and_the_fitted_model_survives(name):
    f = Fitted(name)
    X = _with_value(ESTIMATORS[name][1](), np.nan)
    with pytest.raises(ValueError, match=r"(?i)NaN.*row 3|row 3.*NaN"):
        f.est.fit(X)
    f.unchanged()


@pytest.mark.parametrize("name", ALL)
def test_inf_at_score_is_named(name):
    f = Fitted(name)
    X = _with_value(rows(name), np.inf)
    with pytest.raises(ValueError, match=r"(?i)inf.*row 3|row 3.*inf"):
        f.est.score_samples(X)
    f.unchanged()


@pytest.mark.parametrize("name", ALL)
def test_wrong_width_at_score_is_named(name):
    f = Fitted(name)
    X = rows(name)
    with pytest.raises(ValueError, match=rf"{X.shape[1] + 1} features.*expecting {X.shape[1]}"):
        f.est.score_samples(np.hstack([X, X[:, :1]]))
    f.unchanged()


@pytest.mark.parametrize("name", ALL)
def test_empty_refit_is_named(name):
    f = Fitted(name)
    with pytest.raises(ValueError, match="0 sample"):
        f.est.fit(rows(name)[:0])
    f.unchanged()


@pytest.mark.parametrize("name", ALL)
def test_unfitted_estimator_raises_not_fitted(name):
    est = ESTIMATORS[name][0]()
    with pytest.raises(NotFittedError):
        est.score_samples(rows(name))


@pytest.mark.parametrize("name", ["made", "pixelcnn"])
def test_negative_sample_weight_is_named(name):
    f = Fitted(name)
    X = ESTIMATORS[name][1]()
    w = np.ones(len(X))
    w[7] = -1.0
    with pytest.raises(ValueError, match="(?i)negative.*sample_weight"):
        f.est.fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="(?i)sample.weight.*(non-zero|sums to 0)"):
        f.est.fit(X, sample_weight=np.zeros(len(X)))
    f.unchanged()


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_a_device_that_is_not_a_torch_device_is_named(device):
    f = Fitted("made")
    with pytest.raises(ValueError, match=rf"device={device!r}"):
        f.est.set_params(device=device).fit(_gaussian())
    f.unchanged()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_cuda_without_a_gpu_is_named():
    f = Fitted("made")
    with pytest.raises(ValueError, match=r"device='cuda'.*torch.cuda.is_available\(\) is False"):
        f.est.set_params(device="cuda").fit(_gaussian())
    f.unchanged()


@pytest.mark.parametrize("device", ["meta", "xpu"])
def test_a_device_skar_cannot_train_on_is_rejected_up_front(device):
    f = Fitted("made")
    with pytest.raises(ValueError, match=rf"device={device!r}.*'cpu'"):
        f.est.set_params(device=device).fit(_gaussian())
    f.unchanged()


def test_text_in_a_numeric_column_is_named():
    f = Fitted("made")
    X = _rng().normal(size=(5, 3)).astype(object)
    X[2, 0] = "abc"
    with pytest.raises((TypeError, ValueError), match=r"column 0 holds 'abc' at row 2"):
        f.est.score_samples(X)
    f.unchanged()


def test_unseen_category_is_named():
    df = pd.DataFrame({"c": ["a", "b"] * 30, "v": _rng().normal(size=60)})
    est = MADEDensity(hidden_layer_sizes=(8,), max_iter=2, handle_unknown="error",
                      random_state=0).fit(df)
    before = est.score_samples(df[:5])
    with pytest.raises(ValueError, match=r"column 'c' holds the category 'zzz' at row 1"):
        est.score_samples(pd.DataFrame({"c": ["a", "zzz"], "v": [0.0, 1.0]}))
    np.testing.assert_array_equal(est.score_samples(df[:5]), before)


def test_binary_column_holding_two_is_named():
    f = Fitted("nade")
    X = _with_value(rows("nade"), 2.0, row=4, col=2)
    s = f.est.score_samples(X)  # handle_unknown="zero_probability": probability zero
    assert s[4] == -np.inf and np.isfinite(np.delete(s, 4)).all()
    with pytest.raises(ValueError, match=r"column 2 is binary.*holds 2.0 at row 4"):
        f.est.set_params(handle_unknown="error").score_samples(X)
    f.est.set_params(handle_unknown="zero_probability")
    f.unchanged()


def test_pixel_out_of_range_is_named():
    f = Fitted("pixelcnn")
    X = _with_value(rows("pixelcnn"), 7.0, row=2, col=5)
    with pytest.raises(ValueError, match=r"7"):
        f.est.score_samples(X)
    f.unchanged()


def test_unseen_pixelcnn_label_is_named():
    X, y = _images(), np.array(["a", "b"] * 40)
    est = ESTIMATORS["pixelcnn"][0]().fit(X, y)
    before = est.score_samples(X[:5], y[:5])
    with pytest.raises(ValueError, match=r"label 'c' at row 1.*not seen in fit"):
        est.score_samples(X[:2], np.array(["a", "c"]))
    np.testing.assert_array_equal(est.score_samples(X[:5], y[:5]), before)


def test_none_among_pixelcnn_labels_is_named():
    X = _images()
    y = np.array(["a", "b"] * 40, dtype=object)
    y[6] = None
    est = ESTIMATORS["pixelcnn"][0]()
    with pytest.raises(ValueError, match=r"y holds None at row 6"):
        est.fit(X, y)


def test_mixed_type_pixelcnn_labels_are_named():
    X = _images()
    y = np.array(["a", 1] * 40, dtype=object)
    with pytest.raises(ValueError, match=r"y mixes labels of types \['int', 'str'\]"):
        ESTIMATORS["pixelcnn"][0]().fit(X, y)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_sample_weight_is_named(bad):
    f = Fitted("made")
    X = _gaussian()
    w = np.ones(len(X))
    w[4] = bad
    with pytest.raises(ValueError, match=r"(?i)sample_weight.*(infinity|NaN)"):
        f.est.fit(X, sample_weight=w)
    f.unchanged()


def test_pixelcnn_labels_of_the_wrong_length_are_named():
    X, y = _images(), np.array(["a", "b"] * 40)
    est = ESTIMATORS["pixelcnn"][0]().fit(X, y)
    before = est.score_samples(X[:5], y[:5])
    with pytest.raises(ValueError, match=r"y has 3 entries, but X has 5 rows"):
        est.score_samples(X[:5], y[:3])
    np.testing.assert_array_equal(est.score_samples(X[:5], y[:5]), before)


def test_bad_n_samples_is_named():
    f = Fitted("made")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            f.est.sample(bad)
    f.unchanged()


# ---------------------------------------------------------------------------- interrupts
class _RaiseAt(Callback):
    """Interrupts training at the second minibatch of the second epoch."""

    def __init__(self, how: str) -> None:
        self.how = how

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == 2 and len(net.history[-1]["batches"]) == 2:
            if self.how == "signal":
                signal.raise_signal(signal.SIGINT)  # a real Ctrl-C
            raise KeyboardInterrupt


def _inject(monkeypatch, cls, callback):
    make_net = cls._make_net

    def faulty(self, module, **options):
        net = make_net(self, module, **options)
        net.callbacks = [*net.callbacks, ("fault", callback)]
        return net

    monkeypatch.setattr(cls, "_make_net", faulty)


@pytest.mark.parametrize("how", ["raise", "signal"])
def test_ctrl_c_in_refit_raises_and_keeps_the_fitted_model(monkeypatch, how):
    f = Fitted("made")
    n_iter = f.est.n_iter_
    _inject(monkeypatch, MADEDensity, _RaiseAt(how))
    with pytest.raises(KeyboardInterrupt):
        f.est.set_params(max_iter=5, batch_size=20).fit(_gaussian())
    f.unchanged()
    assert f.est.n_iter_ == n_iter and f.est.max_iter == 5


@pytest.mark.parametrize("name", ALL)
def test_keyboard_interrupt_in_the_module_propagates(monkeypatch, name):
    """A KeyboardInterrupt raised inside the network's forward pass mid-epoch, every model."""
    f = Fitted(name)
    module_cls = type(f.est.net_.module_)
    forward = module_cls.forward
    calls = {"n": 0}

    def interrupted(self, *args, **kwargs):
        if self.training:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(module_cls, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        f.est.set_params(max_iter=4, batch_size=20).fit(ESTIMATORS[name][1]())
    assert calls["n"] == 3
    monkeypatch.setattr(module_cls, "forward", forward)
    f.unchanged()


def test_ctrl_c_in_a_first_fit_leaves_the_estimator_unfitted(monkeypatch):
    _inject(monkeypatch, MADEDensity, _RaiseAt("raise"))
    est = ESTIMATORS["made"][0](max_iter=4, batch_size=20)
    with pytest.raises(KeyboardInterrupt, match="interrupted during epoch 2 of 4"):
        est.fit(_gaussian())
    assert not hasattr(est, "net_")
    with pytest.raises(NotFittedError):
        est.score_samples(_gaussian()[:2])


def test_early_stopping_is_not_an_interrupt():
    """skorch stops early by raising KeyboardInterrupt itself: that must still end normally."""
    est = MADEDensity(hidden_layer_sizes=(8,), max_iter=50, n_iter_no_change=1, tol=100.0,
                      refit=False, random_state=0).fit(_gaussian())
    assert est.n_iter_ == 2


# ---------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("name", ["made", "rnade"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_divergence_stops_with_a_warning_and_keeps_the_best_weights(name, early_stopping):
    X = _gaussian(600, 5)
    est = ESTIMATORS[name][0](learning_rate_init=1e3, early_stopping=early_stopping, max_iter=6,
                              batch_size=100)
    with pytest.warns(ConvergenceWarning, match=r"Training diverged at epoch \d.*"
                                                 r"learning_rate_init \(it is 1000.0\)"):
        est.fit(X)
    scores = est.score_samples(X)
    assert np.isfinite(scores).all()
    first, worst = est.history_["train_nll"].iloc[0], est.history_["train_nll"].max()
    # Not absurd: the kept weights score the training rows no worse than (about) the initial
    # weights did, far from the diverged epoch. (Independent scale: 5 standard normals have
    # an entropy of 7.1 nats; these columns are sums of them.)
    assert -scores.mean() < min(first, 100.0) and worst > 1e3
    assert est.n_iter_ < 6


def test_a_healthy_fit_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MADEDensity(hidden_layer_sizes=(8,), max_iter=5, early_stopping=False,
                          random_state=0).fit(_gaussian())
    assert est.n_iter_ == 5


# ---------------------------------------------------------------------------- overflow
@pytest.mark.parametrize(
    "name",
    CONTINUOUS,
)
def test_a_value_beyond_float32_scores_minus_inf(name):
    f = Fitted(name)
    X = _with_value(rows(name), 1e39, row=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's cast warning, if any
        s = f.est.score_samples(X)
    assert s[1] == -np.inf
    np.testing.assert_array_equal(np.delete(s, 1), np.delete(f.before, 1))
    f.unchanged()


@pytest.mark.parametrize(
    "name",
    CONTINUOUS,
)
def test_a_huge_finite_value_never_scores_nan(name):
    f = Fitted(name)
    X = _with_value(rows(name), 1e25, row=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = f.est.score_samples(X)
    assert not np.isnan(s).any() and s[1] < f.before.min()


@pytest.mark.parametrize("scale", [1e200, 1e300])
@pytest.mark.parametrize(
    "name",
    ["made", "rnade"],
)
def test_fit_on_data_scaled_by_a_huge_factor(name, scale):
    """A density is equivariant: scaling X by c shifts every log density by -D log c."""
    X = ESTIMATORS[name][1]()
    est = ESTIMATORS[name][0]().fit(X)
    big = ESTIMATORS[name][0]().fit(X * scale)
    shifted = big.score_samples(X[:5] * scale) + X.shape[1] * np.log(scale)
    np.testing.assert_allclose(shifted, est.score_samples(X[:5]), rtol=0, atol=1e-3)
    assert np.isfinite(big.sample(5, random_state=0)).all()


# ---------------------------------------------------------------------------- sample_weight
@pytest.mark.parametrize(
    "factor",
    [2.0, 1e39, 1e-50],
)
def test_sample_weight_is_scale_free(factor):
    X = _gaussian()
    w = _rng().uniform(0.5, 2.0, size=len(X))
    make = ESTIMATORS["made"][0]
    ref = make(early_stopping=False, max_iter=3).fit(X, sample_weight=w)
    est = make(early_stopping=False, max_iter=3).fit(X, sample_weight=w * factor)
    np.testing.assert_allclose(est.score_samples(X[:5]), ref.score_samples(X[:5]), rtol=1e-4)


def test_all_positive_weight_in_the_validation_rows_is_named():
    X = _gaussian(40)
    # The rows the estimator's seeded skorch split holds out for early stopping.
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    data = {"x": X.astype(np.float32), "sample_weight": np.ones(40, np.float32)}
    valid = np.asarray(ValidSplit(0.1, stratified=False, random_state=seed)(
        Dataset(data, None))[1].indices)
    w = np.zeros(len(X))
    w[valid] = 1.0
    f = Fitted("made")
    with pytest.raises(ValueError, match=r"no positive weight in the training rows.*"
                                         r"early_stopping=False"):
        f.est.fit(X, sample_weight=w)
    f.unchanged()


@pytest.mark.parametrize("factor", [1e-30, 1e-3, 1e3, 1e30])
def test_the_criterion_is_scale_free_in_float32(factor):
    """The weighted mean NLL, -(sum w log p) / sum w, does not depend on the weights' scale,
    also in float32 (where a clamp of sum w at 1e-12 used to rescale small weights)."""
    g = torch.Generator().manual_seed(0)
    log_p = -torch.rand(50, generator=g) * 10
    w = torch.rand(50, generator=g)
    crit = NLLCriterion(log_jacobian=0.5)
    expected = -(w.double() * log_p.double()).sum() / w.double().sum() - 0.5
    torch.testing.assert_close(crit(log_p, w * factor).double(), expected, rtol=1e-6, atol=0)
    assert crit(log_p, torch.zeros(50)).item() == -0.5  # all-zero batch: no NaN


# ---------------------------------------------------------------------------- tiny data
@pytest.mark.parametrize("n", [1, 2])
def test_rnade_fits_one_or_two_rows(n):
    est = ESTIMATORS["rnade"][0](early_stopping=False).fit(_gaussian()[:n])
    assert np.isfinite(est.score_samples(_gaussian()[:5])).all()


# ---------------------------------------------------------------------------- the detector
TINY = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)


def _detector(**kw) -> DensityOutlierDetector:
    return DensityOutlierDetector(MADEDensity(**TINY), random_state=0, **kw)


class FittedDetector:
    def __init__(self) -> None:
        self.X = _gaussian(100, 2)
        self.det = _detector().fit(self.X)
        self.before = self.det.pvalues(self.X[:20])
        self.state = (self.det.n_features_in_, self.det.offset_,
                      self.det.calibration_scores_.copy())

    def unchanged(self) -> None:
        np.testing.assert_array_equal(self.det.pvalues(self.X[:20]), self.before)
        assert self.det.n_features_in_ == self.state[0] and self.det.offset_ == self.state[1]
        np.testing.assert_array_equal(self.det.calibration_scores_, self.state[2])


def test_detector_failed_refit_on_a_new_width_leaves_it_as_it_was():
    f = FittedDetector()
    wide = _with_value(_gaussian(100, 3), np.nan, row=50, col=2)
    with pytest.raises(ValueError, match=r"column 2 holds NaN at row 50"):
        f.det.fit(wide)
    f.unchanged()
    with pytest.raises(ValueError, match="X has 3 features, but DensityOutlierDetector is "
                                         "expecting 2"):
        f.det.predict(_gaussian(5, 3))
    # A refit that succeeds switches the width everywhere at once.
    f.det.fit(_gaussian(100, 3))
    assert f.det.n_features_in_ == 3 == f.det.estimator_.n_features_in_
    assert f.det.predict(_gaussian(5, 3)).shape == (5,)


def test_detector_interrupted_refit_leaves_it_as_it_was(monkeypatch):
    f = FittedDetector()
    _inject(monkeypatch, MADEDensity, _RaiseAt("raise"))
    f.det.set_params(estimator=MADEDensity(**{**TINY, "max_iter": 4, "batch_size": 10}))
    with pytest.raises(KeyboardInterrupt):
        f.det.fit(_gaussian(100, 3))
    f.unchanged()


@pytest.mark.parametrize("where", ["calibration", "training"])
def test_detector_errors_name_the_users_row(where):
    f = FittedDetector()
    X = _gaussian(100, 2)
    cal = f.det.calibration_indices_
    rest = np.setdiff1d(np.arange(100), cal)
    row = int(cal[3] if where == "calibration" else rest[10])
    X[row, 1] = np.inf
    with pytest.raises(ValueError, match=rf"column 1 holds \+inf at row {row};.*positions in "
                                         r"the X passed to fit"):
        f.det.fit(X)
    f.unchanged()


def test_detector_learns_a_category_seen_only_in_calibration_rows():
    n = 100
    cal = _detector().fit(_gaussian(n, 2)).calibration_indices_  # the seeded split
    df = pd.DataFrame({"cat": np.where(np.arange(n) % 2, "a", "b").astype(object),
                       "v": _rng().normal(size=n)})
    df.loc[cal[1], "cat"] = "rare"
    made = MADEDensity(hidden_layer_sizes=(8,), max_iter=30, early_stopping=False,
                       learning_rate_init=1e-2, random_state=0)
    det = DensityOutlierDetector(made, random_state=0).fit(df)
    np.testing.assert_array_equal(det.calibration_indices_, cal)
    assert list(det.estimator_.schema_.columns[0].categories) == ["a", "b", "rare"]
    assert np.isfinite(det.calibration_scores_).all()
    p = det.pvalues(df)
    assert np.isfinite(p).all() and ((p > 0) & (p <= 1)).all()
    # Never seen by the density, the category is less probable than either seen one (the
    # first column's own term, log p(cat)).
    probe = pd.DataFrame({"cat": ["rare", "a", "b"], "v": [0.0, 0.0, 0.0]})
    log_p_cat = det.estimator_.score_samples_per_feature(probe)[:, 0]
    assert log_p_cat[0] < min(log_p_cat[1], log_p_cat[2])


def test_detector_reports_a_category_seen_only_in_calibration_rows_of_an_array():
    n = 100
    cal = _detector().fit(_gaussian(n, 2)).calibration_indices_
    X = np.empty((n, 2), dtype=object)
    X[:, 0] = np.where(np.arange(n) % 2, "a", "b")
    X[:, 1] = _rng().normal(size=n)
    X[cal[1], 0] = "rare"
    default = DensityOutlierDetector(MADEDensity(**TINY, categorical_features=[0]),
                                     random_state=0)
    with pytest.warns(UserWarning, match=rf"row {cal[1]} of X, held out for calibration, has "
                                         "probability zero"):
        default.fit(X)  # handle_unknown="zero_probability": that row's score is -inf
    assert default.calibration_scores_[0] == -np.inf
    det = DensityOutlierDetector(MADEDensity(**TINY, categorical_features=[0],
                                             handle_unknown="error"), random_state=0)
    with pytest.raises(ValueError, match=rf"category 'rare' at row {cal[1]}, which was not seen"
                                         r".*occurs only in rows held out for calibration"):
        det.fit(X)


def test_detector_flags_a_row_beyond_float32_with_the_smallest_pvalue():
    f = FittedDetector()
    probe = np.array([[1e39, 0.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the inner NaN until the base scores such rows -inf
        p, labels = f.det.pvalues(probe), f.det.predict(probe)
        decision = f.det.decision_function(probe)
    n_cal = len(f.det.calibration_scores_)
    assert p[0] == 1.0 / (n_cal + 1) and labels[0] == -1 and decision[0] == -np.inf
    assert not np.isnan(p).any()
    f.unchanged()


class _Stub(DensityMixin, BaseEstimator):
    """A density that returns NaN for rows whose first value is above 100, else -x^2."""

    def __init__(self, nan_above: float = 100.0) -> None:
        self.nan_above = nan_above

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def score_samples(self, X):
        x = np.asarray(X, dtype=float)[:, 0]
        return np.where(x > self.nan_above, np.nan, -(x**2))


def test_detector_treats_a_nan_log_density_as_minus_inf_with_a_warning():
    X = _rng().normal(size=(30, 1))  # 6 calibration rows: too few for a 5% rate
    with pytest.warns(UserWarning, match="flags nothing"):
        det = DensityOutlierDetector(_Stub(), random_state=0).fit(X)
    assert det.offset_ == -np.inf
    with pytest.warns(UserWarning, match=r"returned NaN for 1 row\(s\) \(first: row 1\)"):
        p = det.pvalues([[0.0], [500.0]])
    assert p[1] == 1 / 7 and p[0] == 1.0
    with pytest.warns(UserWarning, match="returned NaN"):
        labels = det.predict([[0.0], [500.0]])
    np.testing.assert_array_equal(labels, [1, -1])  # -inf is flagged even when offset_ is -inf


def test_detector_contamination_threshold_is_defined_with_minus_inf_scores():
    X = _rng().normal(size=(50, 1))
    X[:3, 0] = 1e3  # the stub calls these NaN, i.e. -inf
    with pytest.warns(UserWarning, match="returned NaN"):
        det = DensityOutlierDetector(_Stub(), contamination=0.1, random_state=0).fit(X)
    assert not np.isnan(det.offset_)
    assert np.isfinite(det.offset_)  # 10% of 50 rows is past the 3 impossible ones


def test_detector_explain_names_the_overflowing_column():
    f = FittedDetector()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = f.det.explain(np.array([[0.0, 1e39]]))
    assert ex["feature"].iloc[0] == "x1" and ex["contribution"].iloc[0] == np.inf
    assert np.isfinite(ex["contribution"].iloc[1])


# ---------------------------------------------------------------------------- property test
_kinds = st.sampled_from(["float", "int", "bool", "category"])


@st.composite
def _frames(draw):
    n = draw(st.integers(min_value=3, max_value=12))
    kinds = draw(st.lists(_kinds, min_size=1, max_size=3))
    cols = {}
    for j, kind in enumerate(kinds):
        if kind == "float":
            values = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False,
                                             width=32), min_size=n, max_size=n))
            cols[f"f{j}"] = np.asarray(values, dtype=np.float64)
        elif kind == "int":
            cols[f"i{j}"] = np.asarray(draw(st.lists(st.integers(-1000, 1000), min_size=n,
                                                     max_size=n)), dtype=np.int64)
        elif kind == "bool":
            cols[f"b{j}"] = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        else:
            labels = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n))
            cols[f"c{j}"] = pd.Categorical(labels)
    return pd.DataFrame(cols)


del hpd  # the frame strategy above mixes kinds hypothesis.extra.pandas cannot express


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames())
def test_any_finite_mixed_frame_round_trips_and_scores_finitely(df):
    est = MADEDensity(hidden_layer_sizes=(4,), max_iter=1, early_stopping=False,
                      random_state=0).fit(df)
    schema = est.schema_
    back = schema.decode(schema.encode(df))
    assert list(back.columns) == list(df.columns)
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype) or df[c].dtype == bool:
            assert back[c].tolist() == df[c].tolist()
        else:
            # float32 codes: the round trip is exact to float32 precision of the standardised
            # value, i.e. relative to the column's spread and offset.
            x = df[c].to_numpy(np.float64)
            tol = 1e-6 * (np.abs(x).max() + x.std() + 1.0)
            np.testing.assert_allclose(back[c].to_numpy(np.float64), x, rtol=0, atol=tol)
    s = est.score_samples(df)
    assert np.isfinite(s).all()
