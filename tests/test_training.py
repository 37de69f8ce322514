"""The training recipe of :mod:`skar.training`: learning-rate schedules, weight averaging,
growing patience and ``refit``, each checked against numbers computed independently of the
callbacks (closed-form schedules, an EMA recomputed from the recorded weights, row counts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from skorch.callbacks import Callback
from torch import nn

import skar
from skar.training import WarmupCosine, build_net


class Gaussian(nn.Module):
    """log N(x | mu, sigma^2) per row, with learnable mu and log sigma; counts training rows."""

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(0.0))
        self.log_sigma = nn.Parameter(torch.tensor(0.0))
        self.extra = nn.Parameter(torch.tensor(0.0))  # no effect: keeps a frozen loss trainable
        self.shift = 0.0  # added to log p: lets a test script the loss curve
        self.rows_trained = 0

    def forward(self, x, sample_weight=None):
        if self.training:
            self.rows_trained += x.shape[0]
        z = (x[:, 0] - self.mu) / self.log_sigma.exp()
        log_p = -0.5 * z**2 - self.log_sigma - 0.5 * math.log(2 * math.pi)
        return log_p - self.shift + 0.0 * self.extra


def _data(n=64, seed=0):
    x = np.random.default_rng(seed).normal(3.0, 2.0, size=(n, 1)).astype(np.float32)
    return {"x": x, "sample_weight": np.ones(n, dtype=np.float32)}


def _net(module, **kw):
    options = dict(
        log_jacobian=0.0, learning_rate_init=0.05, alpha=0.0, max_iter=20, batch_size=16,
        early_stopping=False, validation_fraction=0.25, n_iter_no_change=3, tol=0.0, seed=0,
        verbose=0, device="cpu",
    )
    options.update(kw)
    torch.manual_seed(0)
    return build_net(module, **options)


def test_warmup_cosine_closed_form():
    f = WarmupCosine(total=10, warmup=2, floor=0.1)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0)
    # Half-way through the cosine part (epoch 2 + 4 of 8): cos(pi / 2) = 0.
    assert f(6) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(10) == pytest.approx(0.1) and f(50) == pytest.approx(0.1)


def test_cosine_schedule_is_applied_every_epoch():
    lr, T = 0.05, 20
    seen = []

    class Recorder(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append(net.optimizer_.param_groups[0]["lr"])

    net = _net(Gaussian(), lr_schedule="cosine", max_iter=T)
    net.set_params(callbacks=[*net.callbacks, ("recorder", Recorder())])
    net.fit(_data(), None)
    W = 1  # round(0.05 * 20)
    expected = [
        lr * ((t + 1) / W if t < W else 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W))))
        for t in range(T)
    ]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    np.testing.assert_allclose(net.history[:, "event_lr"], expected, rtol=1e-6)


def test_plateau_schedule_halves_after_patience():
    module = Gaussian()
    module.mu.requires_grad_(False)
    module.log_sigma.requires_grad_(False)  # a flat loss: never an improvement
    net = _net(module, lr_schedule="plateau", n_iter_no_change=4, max_iter=10,
               tol=1e-3)
    net.fit(_data(), None)
    # patience 4 // 2 = 2: best at epoch 1, three bad epochs (> 2) -> halved from epoch 5.
    expected = [0.05] * 4 + [0.025] * 3 + [0.0125] * 3
    np.testing.assert_allclose(net.history[:, "event_lr"], expected, rtol=1e-6)


class WeightRecorder(Callback):
    """The live weights after every optimiser step."""

    def on_train_begin(self, net, **kwargs):
        self.steps = []

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.steps.append([net.module_.mu.item(), net.module_.log_sigma.item()])


def _ema(steps, decay):
    avg = np.array(steps[0], dtype=np.float64)
    out = [avg.copy()]
    for s, w in enumerate(steps[1:], start=2):
        b = min(decay, s / (s + 9))
        avg = b * avg + (1 - b) * np.asarray(w)
        out.append(avg.copy())
    return np.array(out)


def test_averaged_weights_are_the_ones_kept():
    rec = WeightRecorder()
    net = _net(Gaussian(), average_weights=0.9, max_iter=6)
    net.set_params(callbacks=[*net.callbacks, ("rec", rec)])
    net.fit(_data(), None)
    assert len(rec.steps) == 6 * 4
    ema = _ema(rec.steps, 0.9)
    final = [net.module_.mu.item(), net.module_.log_sigma.item()]
    np.testing.assert_allclose(final, ema[-1], rtol=1e-5)
    assert not np.allclose(final, rec.steps[-1], rtol=1e-3)  # not the live weights


def test_averaged_weights_are_validated_and_restored():
    rec = WeightRecorder()
    data = _data(n=80)
    net = _net(Gaussian(), average_weights=0.8, early_stopping=True, max_iter=8,
               n_iter_no_change=100, learning_rate_init=0.2)
    net.set_params(callbacks=[*net.callbacks, ("rec", rec)])
    net.fit(data, None)
    ema = _ema(rec.steps, 0.8)
    valid_rows = data["x"][np.asarray(net.get_split_datasets(data)[1].indices), 0]
    steps_per_epoch = len(rec.steps) // 8
    for epoch in range(8):
        mu, log_sigma = ema[(epoch + 1) * steps_per_epoch - 1]
        z = (valid_rows - mu) / math.exp(log_sigma)
        nll = np.mean(0.5 * z**2 + log_sigma + 0.5 * math.log(2 * math.pi))
        assert net.history[epoch, "valid_loss"] == pytest.approx(nll, rel=1e-5)
    best = int(np.argmin(net.history[:, "valid_loss"]))
    final = [net.module_.mu.item(), net.module_.log_sigma.item()]
    np.testing.assert_allclose(final, ema[(best + 1) * steps_per_epoch - 1], rtol=1e-5)


class Scripted(Callback):
    """Sets the module's loss offset per epoch: decreasing until ``until``, flat after."""

    def __init__(self, until):
        self.until = until

    def on_epoch_begin(self, net, **kwargs):
        t = len(net.history)
        net.module_.shift = -float(min(t, self.until))


def test_growing_patience_waits_longer_after_a_long_improvement():
    def run(fraction):
        module = Gaussian()
        module.mu.requires_grad_(False)
        module.log_sigma.requires_grad_(False)
        net = _net(module, early_stopping=True, n_iter_no_change=3, max_iter=100,
                   patience_fraction=fraction)
        net.set_params(callbacks=[("script", Scripted(20)), *net.callbacks])
        net.fit(_data(), None)  # no KeyboardInterrupt: the stop was asked for
        return len(net.history)

    # Best epoch 20; plain patience 3 stops at 23; patience max(3, ceil(t / 2)) at
    # the first t with t - 20 = ceil(t / 2), t = 40.
    assert run(0.0) == 23
    assert run(0.5) == 40


def test_refit_trains_on_all_rows_for_the_chosen_epochs():
    data = _data(n=64)
    module = Gaussian()
    initial = [module.mu.item(), module.log_sigma.item()]
    net = _net(module, early_stopping=True, refit=True, n_iter_no_change=2, max_iter=200,
               tol=1e-2, learning_rate_init=0.1)
    starts = []

    class Start(Callback):
        def on_train_begin(self, net, **kwargs):
            starts.append([net.module_.mu.item(), net.module_.log_sigma.item()])

    net.set_params(callbacks=[*net.callbacks, ("start", Start())])
    net.fit(data, None)
    chosen = int(np.argmin(net.selection_history_[:, "valid_loss"])) + 1
    n_run = len(net.selection_history_)
    assert chosen < n_run  # early stopping chose an earlier epoch than it ran
    assert net.refit_epochs_ == chosen == len(net.history)
    for epoch in range(chosen):
        assert sum(net.history[epoch, "batches", :, "train_batch_size"]) == 64
    # Rows seen: the selection run on its 48 training rows, the refit on all 64.
    assert module.rows_trained == 48 * n_run + 64 * chosen
    np.testing.assert_allclose(starts, [initial, initial], rtol=0, atol=0)


@pytest.mark.parametrize(
    "name", ["MADEDensity", "ARTransformerDensity", "NADEDensity", "RNADEDensity"]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_marginal_start_is_the_product_of_the_fitted_marginals(name, seed):
    rng = np.random.default_rng(0)
    # Correlated columns: a network that saw the other column would score differently.
    x0 = rng.normal(2.0, 3.0, 400)
    X = np.column_stack([x0, 0.5 * x0 + rng.normal(-1.0, 0.5, 400)])
    est = getattr(skar, name)(
        n_components=1, component="gaussian", max_iter=1, learning_rate_init=1e-12,
        early_stopping=False, lr_schedule=None, average_weights=0.0, random_state=seed,
    ).fit(X)
    # One Gaussian per column fitted alone: the maximum-likelihood mean and deviation.
    expected = sum(norm.logpdf(X[:, d], X[:, d].mean(), X[:, d].std()) for d in range(2))
    np.testing.assert_allclose(est.score_samples(X), expected, atol=2e-3)
    random_start = getattr(skar, name)(
        n_components=1, component="gaussian", max_iter=1, learning_rate_init=1e-12,
        early_stopping=False,
        lr_schedule=None, average_weights=0.0, random_state=seed, init_params="random",
    ).fit(X)
    assert np.abs(random_start.score_samples(X) - expected).max() > 0.1


@pytest.mark.parametrize("name", ["MADEDensity", "ARTransformerDensity", "RNADEDensity"])
def test_a_diverged_run_keeps_the_restored_weights_not_their_average(name):
    """Training diverges in its first epoch; StopOnDivergence restores the initial weights,
    the product of the columns' Gaussian marginals (maximum-likelihood mean and deviation).
    The weight average then holds the diverged steps and must not replace them (it did: the
    rows scored -896 nats with logistic kernels, -79 with Gaussian ones)."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    x0 = rng.normal(2.0, 3.0, 400)
    X = np.column_stack([x0, 0.5 * x0 + rng.normal(-1.0, 0.5, 400)])
    est = getattr(skar, name)(
        n_components=1, component="gaussian", learning_rate_init=1e3, max_iter=4,
        early_stopping=False, lr_schedule=None, average_weights=0.99, batch_size=100,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="initial weights were restored"):
        est.fit(X)
    expected = sum(norm.logpdf(X[:, d], X[:, d].mean(), X[:, d].std()) for d in range(2))
    np.testing.assert_allclose(est.score_samples(X), expected, atol=2e-3)


def test_no_refit_after_a_diverged_run():
    from sklearn.exceptions import ConvergenceWarning

    module = Gaussian()
    net = _net(module, early_stopping=True, refit=True, learning_rate_init=1e4, max_iter=20,
               n_iter_no_change=50)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        net.fit(_data(n=64, seed=1) | {"x": _data(n=64, seed=1)["x"] * 1e3}, None)
    assert not hasattr(net, "refit_epochs_")
    assert module.rows_trained == 48 * len(net.history)  # the selection run only


@pytest.mark.parametrize("name", ["NADEDensity", "RNADEDensity"])
def test_nade_estimators_train_with_the_recipe_they_declare(name):
    """NADE and RNADE hand their recipe parameters to the net: the cosine rates of the
    closed form epoch by epoch, and a refit on all rows for the epochs early stopping chose;
    with the recipe off, neither."""
    X = np.random.default_rng(0).normal(size=(200, 2))
    common = dict(hidden_layer_sizes=(8,), n_components=2, max_iter=12, random_state=0,
                  learning_rate_init=1e-2, n_iter_no_change=2)
    est = getattr(skar, name)(lr_schedule="cosine", refit=True, **common).fit(X)
    T, W = 12, 1  # warm-up round(0.05 * 12) = 1 epoch
    rates = [1e-2 * ((t + 1) / W if t < W else
                     0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))) for t in range(T)]
    n_run = len(est.net_.selection_history_)
    np.testing.assert_allclose(est.net_.selection_history_[:, "event_lr"], rates[:n_run],
                               rtol=1e-6)
    chosen = int(np.argmin(est.net_.selection_history_[:, "valid_loss"])) + 1
    assert est.net_.refit_epochs_ == chosen == est.n_iter_
    off = getattr(skar, name)(lr_schedule=None, average_weights=0.0, patience_fraction=0.0,
                              refit=False, **common).fit(X)
    assert not hasattr(off.net_, "refit_epochs_")
    assert "event_lr" not in off.net_.history[-1]
