"""Training: a skorch ``NeuralNet`` whose loss is the weighted mean negative log-likelihood.

skar writes no training loop. skorch runs the epochs and batches, the seeded validation split,
early stopping with the best weights restored, the progress bar and the device moves. What is
specific to density estimation is small:

* the module returns ``log p(x)`` per row (standardised units), so the *criterion* is
  ``-(sum_n w_n log p(x_n)) / sum_n w_n - log|J|``, the weighted mean NLL in the user's units
  (``log|J|`` from :mod:`skar.schema` is a constant: it does not change gradients, only makes
  the reported losses comparable with ``score_samples``);
* there is no target: rows go in as a dict ``{"x": ..., "sample_weight": ...}`` with
  ``y=None`` (skorch passes dict keys to ``module.forward`` as keyword arguments).

Two callbacks, always on, make training fail loudly rather than silently:

* :class:`StopOnDivergence` stops training when the training loss becomes non-finite or grows
  by orders of magnitude, restores the weights of the best epoch and warns
  (:class:`sklearn.exceptions.ConvergenceWarning`), with or without early stopping;
* :class:`RaiseOnInterrupt` re-raises a user's :class:`KeyboardInterrupt` (Ctrl-C, SIGINT).
  skorch stops training by raising ``KeyboardInterrupt`` itself (that is how
  :class:`~skorch.callbacks.EarlyStopping` ends the loop), so ``NeuralNet.partial_fit`` catches
  every ``KeyboardInterrupt`` and returns normally: without this callback a Ctrl-C would give a
  half-trained model and no error. The estimators' ``fit`` then restores the estimator as it
  was before the call (a previously fitted model stays fitted and unchanged).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from skorch.history import History
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

__all__ = [
    "EpochProgressBar",
    "GrowingPatience",
    "NLLCriterion",
    "RaiseOnInterrupt",
    "StopOnDivergence",
    "WarmupCosine",
    "WeightAveraging",
    "build_net",
    "history_frame",
]


def _silent(*args: Any, **kwargs: Any) -> None:
    """A picklable sink that prints nothing (a lambda would break pickling the net)."""


class NLLCriterion(nn.Module):
    r"""Weighted mean negative log-likelihood.

    .. math::  L = -\frac{\sum_n w_n \log p(x_n)}{\sum_n w_n} - \log|J|

    Parameters
    ----------
    log_jacobian : float
        The schema's log|Jacobian| (a constant) so the loss is in the user's units.
    """

    def __init__(self, log_jacobian: float = 0.0) -> None:
        super().__init__()
        self.log_jacobian = float(log_jacobian)

    def forward(self, log_prob: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        if sample_weight is None:
            return -log_prob.mean() - self.log_jacobian
        w = sample_weight.to(log_prob)
        total = w.sum()
        # Exactly scale-free (w and c w give the same loss) for any positive total; a batch
        # whose weights are all zero contributes 0 rather than 0/0 = NaN. (A clamp such as
        # total.clamp_min(eps) would silently rescale batches of small weights.) The
        # estimators normalise the weights to mean 1 in float64 before the float32 cast, so
        # the products w * log p neither overflow nor underflow.
        return -(w * log_prob).sum() / torch.where(total > 0, total, 1.0) - self.log_jacobian


class EpochProgressBar(Callback):
    """One tqdm bar over epochs, showing the latest train and validation NLL.

    skorch's own :class:`~skorch.callbacks.ProgressBar` advances per batch and restarts every
    epoch; for the hundreds of short epochs of a tabular density this bar is the readable one.
    ``verbose=1`` shows it; ``verbose=2`` shows skorch's epoch table and per-batch bar instead.
    """

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.bar_ = tqdm(total=net.max_epochs, desc="epochs", unit="epoch", leave=True)

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        h = net.history[-1]
        postfix = {"train_nll": f"{h['train_loss']:.4f}"}
        if "valid_loss" in h:
            postfix["valid_nll"] = f"{h['valid_loss']:.4f}"
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        self.bar_.close()
        self.bar_ = None  # a tqdm object does not pickle with the net


def _clone_state(module: nn.Module) -> dict[str, Tensor]:
    """A detached copy of ``module``'s weights (on their device: copying is cheap there)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class StopOnDivergence(Callback):
    r"""Stop training when the training loss diverges, and restore the best epoch's weights.

    The loss of epoch :math:`t` is skorch's ``train_loss`` (the mean minibatch NLL over the
    epoch, in nats per row). With :math:`b` the best (lowest) finite loss so far, counting the
    loss of the very first minibatch (the initial weights' loss, so that an epoch that
    diverges half-way through the first one is caught too), epoch :math:`t` *diverged* when

    .. math::  L_t \notin \mathbb{R} \quad\text{or}\quad
               L_t > b + \text{factor} \cdot \max(1, |b|).

    The default factor of 100 is growth by two orders of magnitude of the loss's own size,
    far beyond the noise of a healthy run (losses move by a few nats from epoch to epoch), and
    it catches a learning rate that throws the network far from its start within the first
    epoch (RNADE at ``learning_rate_init=1e3``: first minibatch 12 nats, first epoch 1,500).

    Training then stops, the weights the network had at the *start* of the best epoch are
    restored (an epoch's loss is averaged over its minibatches, so it describes the weights it
    started from far better than those it ended with: one step at a huge learning rate can end
    an epoch with ruined weights), and a :class:`~sklearn.exceptions.ConvergenceWarning` says
    what happened and how to fix it. When the first epoch already diverged, the initial
    weights are restored.

    With early stopping, :class:`~skorch.callbacks.EarlyStopping` (``load_best=True``) runs its
    ``on_train_end`` after this callback stopped the loop, and restores the weights of the
    epoch with the best *validation* loss, which then win: they were chosen on held-out rows.
    The diverged epoch stays in the history (``history_``).

    Parameters
    ----------
    factor : float, default=100
        How many times ``max(1, |best|)`` the loss may exceed the best before training stops.

    Attributes
    ----------
    stopped_epoch_ : int or None
        The epoch (1-based) at which training was stopped, or None.
    best_epoch_ : int or None
        The epoch with the best loss (None: the first minibatch, at the initial weights).
    """

    def __init__(self, factor: float = 1e2) -> None:
        self.factor = factor

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.stopped_epoch_: int | None = None
        self.best_epoch_: int | None = None
        self.best_loss_ = math.inf
        self.initial_state_ = _clone_state(net.module_)
        self.best_state_: dict[str, Tensor] | None = None
        self.start_state_: dict[str, Tensor] | None = None
        self.epochs_begun_ = 0
        self.batches_seen_ = 0

    def on_epoch_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        # The first epoch starts from the initial weights: no second copy of them.
        self.start_state_ = None if self.epochs_begun_ == 0 else _clone_state(net.module_)
        self.epochs_begun_ += 1

    def on_batch_end(
        self, net: NeuralNet, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        if not training:
            return
        self.batches_seen_ += 1
        if self.batches_seen_ == 1:
            # Computed before the first optimiser step: the loss of the initial weights.
            first = float(kwargs["loss"].item()) if "loss" in kwargs else math.nan
            if math.isfinite(first):
                self.best_loss_ = first

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        loss = float(net.history[-1].get("train_loss", math.nan))
        epoch = int(net.history[-1]["epoch"])
        best = self.best_loss_
        if math.isfinite(loss) and loss < best:
            self.best_loss_, self.best_epoch_ = loss, epoch
            self.best_state_ = self.start_state_  # None: the initial weights
            return
        limit = best + self.factor * max(1.0, abs(best)) if math.isfinite(best) else math.inf
        if math.isfinite(loss) and loss <= limit:
            return
        self.stopped_epoch_ = epoch
        state = self.initial_state_ if self.best_state_ is None else self.best_state_
        net.module_.load_state_dict(state)
        if self.best_epoch_ is None:
            restored = "the initial weights were restored"
            if math.isfinite(best):
                restored += f" (their train NLL on the first minibatch: {best:.6g})"
        else:
            restored = (
                f"the best epoch was {self.best_epoch_} (train NLL {best:.6g}), whose starting "
                "weights were restored"
            )
        warnings.warn(
            f"Training diverged at epoch {epoch}: the train NLL became {loss:.6g} nats per row; "
            f"training stopped and {restored}. Lower learning_rate_init (it is {net.lr!r}), or "
            "check the data for extreme values.",
            ConvergenceWarning,
            stacklevel=2,
        )
        # skorch's own way to end the loop (as EarlyStopping does); RaiseOnInterrupt knows
        # this stop was asked for through ``stopped_epoch_``.
        raise KeyboardInterrupt

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        # The copies are only needed while training; they would double the pickled size.
        self.initial_state_ = self.best_state_ = self.start_state_ = None


def _diverged(net: NeuralNet) -> bool:
    """Whether :class:`StopOnDivergence` ended the loop (and restored weights)."""
    return any(isinstance(cb, StopOnDivergence) and cb.stopped_epoch_ is not None
               for _, cb in net.callbacks_)


def _stop_was_requested(net: NeuralNet) -> bool:
    """Whether a callback ended the loop on purpose (early stopping or divergence)."""
    if _diverged(net):
        return True
    for _, cb in net.callbacks_:
        if isinstance(cb, GrowingPatience):
            if getattr(cb, "stopped_", False):
                return True
        elif isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience:
            return True
    return False


class RaiseOnInterrupt(Callback):
    """Re-raise a user's ``KeyboardInterrupt`` that skorch swallowed.

    ``NeuralNet.partial_fit`` catches every ``KeyboardInterrupt`` raised while training,
    because skorch's callbacks stop the loop that way, then runs ``on_train_end`` and returns
    normally. This callback, the last one, tells the two apart in ``on_train_end``: training
    ended normally when every epoch finished (this callback saw ``max_epochs`` epoch ends) or a
    stopping callback asked for the stop (:class:`~skorch.callbacks.EarlyStopping` ran out of
    patience, :class:`StopOnDivergence` fired). Anything else is an interrupt from outside
    (Ctrl-C, SIGINT, a ``KeyboardInterrupt`` raised in the module or another callback), and it
    is raised again, after the other callbacks' ``on_train_end`` (progress bars closed).

    The estimators' ``fit`` restores the estimator's previous state on any exception, so an
    interrupted ``fit`` raises ``KeyboardInterrupt`` and leaves a previously fitted estimator
    exactly as it was; a half-trained model is never kept silently.
    """

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.epochs_done_ = 0

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        self.epochs_done_ += 1

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        if self.epochs_done_ >= net.max_epochs or _stop_was_requested(net):
            return
        raise KeyboardInterrupt(
            f"fit was interrupted during epoch {len(net.history)} of {net.max_epochs}; the "
            "estimator was left as it was before this call to fit"
        )


class WarmupCosine:
    r"""Learning-rate factor of epoch :math:`t` (0-based): linear warm-up, then cosine decay.

    .. math::  f(t) = \begin{cases} (t + 1) / W & t < W \\
               \tfrac12 \bigl(1 + \cos(\pi \, \min(1, (t - W) / (T - W)))\bigr)
               \cdot (1 - f_{\min}) + f_{\min} & t \ge W \end{cases}

    with :math:`W` warm-up epochs and :math:`T` the epoch budget (``max_iter``): the rate climbs
    to ``learning_rate_init`` over the first :math:`W` epochs (Adam's early steps are large
    while its second-moment estimate is young) and anneals to ``floor`` times it at the last
    epoch. A plain class rather than a lambda, so that the net pickles.

    Parameters
    ----------
    total : int
        The epoch budget :math:`T`.
    warmup : int
        Warm-up epochs :math:`W` (``0 <= W < T``).
    floor : float, default=0.0
        The factor :math:`f_{\min}` at the end of the budget.
    """

    def __init__(self, total: int, warmup: int, floor: float = 0.0) -> None:
        self.total, self.warmup, self.floor = int(total), int(warmup), float(floor)

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (epoch - self.warmup) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _lr_callback(
    schedule: str, max_iter: int, patience: int, tol: float, validated: bool
) -> LRScheduler:
    """skorch's :class:`~skorch.callbacks.LRScheduler` for a named schedule (stepped per epoch;
    skorch records the rate each epoch used as ``event_lr`` in the history)."""
    if schedule == "cosine":
        warmup = min(max(1, round(0.05 * max_iter)), max_iter - 1) if max_iter > 1 else 0
        return LRScheduler(policy=LambdaLR, lr_lambda=WarmupCosine(max_iter, warmup))
    # "plateau": halve the rate when the monitored NLL has not improved by ``tol`` nats (early
    # stopping's absolute threshold) for more than half the patience.
    return LRScheduler(
        policy=ReduceLROnPlateau,
        monitor="valid_loss" if validated else "train_loss",
        mode="min",
        factor=0.5,
        patience=max(1, patience // 2),
        threshold=tol,
        threshold_mode="abs",
    )


class _LerpWithWarmup:
    r"""The EMA update of :class:`WeightAveraging` (picklable, for
    :class:`~torch.optim.swa_utils.AveragedModel`'s ``multi_avg_fn``)."""

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)

    def __call__(self, averaged: list[Tensor], current: list[Tensor], n: Tensor | int) -> None:
        n = float(n)
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(averaged, current, 1.0 - decay)


class WeightAveraging(Callback):
    r"""An exponential moving average (EMA) of the weights, which is what gets validated,
    restored and scored.

    After every optimiser step :math:`s` (counted from 1; the first step copies the weights)

    .. math::  \bar\theta_s = \beta_s \bar\theta_{s-1} + (1 - \beta_s) \theta_s, \qquad
               \beta_s = \min\Bigl(\beta, \frac{s}{s + 9}\Bigr),

    kept by :class:`torch.optim.swa_utils.AveragedModel` (parameters only; buffers follow the
    live network). The warm-up of :math:`\beta_s` keeps the average from remembering the
    random start when an epoch is a single step (a hundred rows in one minibatch).

    The average replaces the live weights for the validation pass of every epoch (from the
    first validation batch), so the validation NLL, early stopping's best epoch and the
    weights it restores are the averaged ones; the live weights come back before the next
    training step. Training ends with the averaged weights in the network (or early stopping's
    best averaged weights): those are the ones ``score_samples`` uses. Place it before
    :class:`~skorch.callbacks.EarlyStopping`.

    Parameters
    ----------
    decay : float
        :math:`\beta`, in [0, 1).
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.averaged_ = AveragedModel(net.module_, multi_avg_fn=_LerpWithWarmup(self.decay))
        self.live_: dict[str, Tensor] | None = None  # the live weights while the EMA is loaded

    def _load_average(self, net: NeuralNet) -> None:
        if self.live_ is None and self.averaged_.n_averaged > 0:
            self.live_ = _clone_state(net.module_)
            net.module_.load_state_dict(self.averaged_.module.state_dict())

    def on_batch_begin(
        self, net: NeuralNet, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        if not training:
            self._load_average(net)
        elif self.live_ is not None:
            net.module_.load_state_dict(self.live_)
            self.live_ = None

    def on_batch_end(
        self, net: NeuralNet, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        if training:
            self.averaged_.update_parameters(net.module_)

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        if _diverged(net):
            # StopOnDivergence restored the weights it trusts; an average over the diverged
            # steps must not replace them.
            self.live_ = None
        else:
            # Without a validation pass in the last epoch the live weights are still loaded.
            self._load_average(net)
        self.averaged_ = None  # a second copy of the network would double the pickled size
        self.live_ = None


class GrowingPatience(EarlyStopping):
    r""":class:`~skorch.callbacks.EarlyStopping` whose patience grows with the epoch count.

    At epoch :math:`t` the patience is :math:`\max(P, \lceil \rho\, t \rceil)`: a run that
    found its best epoch at 150 is not stopped by the 10 noisy epochs that would end a run at
    epoch 15. With :math:`\rho < 1` the patience grows by less than one epoch per epoch, so a
    run that stopped improving still ends.

    Parameters
    ----------
    patience_fraction : float
        :math:`\rho` in [0, 1); 0 is plain early stopping.
    **kwargs
        :class:`~skorch.callbacks.EarlyStopping`'s parameters (``patience`` is :math:`P`).
    """

    def __init__(self, patience_fraction: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patience_fraction = patience_fraction

    def initialize(self) -> GrowingPatience:
        self.base_patience_ = self.patience
        return super().initialize()

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.stopped_ = False
        super().on_train_begin(net, **kwargs)

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        epoch = len(net.history)
        self.patience = max(self.base_patience_, math.ceil(self.patience_fraction * epoch))
        self.stopped_ = self.misses_ + 1 >= self.patience  # skorch raises only in this case
        super().on_epoch_end(net, **kwargs)
        self.stopped_ = False  # not raised: the epoch improved or patience was left

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        super().on_train_end(net, **kwargs)
        self.patience = self.base_patience_  # a later fit starts from the parameter again


class _DensityNet(NeuralNet):
    """The skorch net: the loss differs from a plain ``NeuralNet``, and ``refit``.

    With ``refit=True`` (and a validation split), :meth:`fit` first trains as usual with early
    stopping, which chooses the epoch count :math:`t^*` (its best epoch), then puts the
    initial weights back and trains again on *all* rows, without a hold-out, for exactly
    :math:`t^*` epochs (the same schedule, averaging and seed-driven shuffling as the first
    run). The first run's history is kept as ``selection_history_``; ``history`` is the refit's.
    When the first run diverged (:class:`StopOnDivergence` fired), there is no refit.
    """

    def __init__(self, *args: Any, refit: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refit = refit

    def _bare_module(self) -> nn.Module:
        """The module without a training wrapper, whose state-dict keys are the model's own."""
        return self.module_

    def _before_refit(self) -> None:
        """Undo what :meth:`initialize` did and a second ``initialize`` would not redo."""

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> _DensityNet:
        if not (self.refit and self.train_split is not None):
            return super().fit(X, y, **fit_params)
        if not self.warm_start or not self.initialized_:
            self.initialize()
        initial = _clone_state(self._bare_module())
        rng_state = torch.random.get_rng_state()
        self.partial_fit(X, y, **fit_params)
        if dict(self.callbacks_)["divergence"].stopped_epoch_ is not None:
            # The selection run diverged (and warned): a refit at the same learning rate
            # would diverge again; its restored best weights are kept.
            return self
        stopper = dict(self.callbacks_).get("early_stopping")
        best = getattr(stopper, "best_epoch_", None) or len(self.history)
        self.selection_history_ = History(list(self.history))  # skorch clears its own
        train_split, max_epochs = self.train_split, self.max_epochs
        # The callbacks (early stopping among them) keep their objects; without a split the
        # early-stopping monitor has nothing to watch, so it is switched off for the refit.
        self.set_params(train_split=None, max_epochs=int(best), callbacks__early_stopping=None)
        try:
            self._before_refit()
            self.initialize()  # fresh optimiser, callbacks and history; same module object
            self._bare_module().load_state_dict(initial)
            torch.random.set_rng_state(rng_state)
            self.partial_fit(X, y, **fit_params)
        finally:
            self.train_split, self.max_epochs = train_split, max_epochs
        self.refit_epochs_ = int(best)
        return self

    def get_loss(
        self, y_pred: Tensor, y_true: Any, X: Any = None, training: bool = False
    ) -> Tensor:
        w = X.get("sample_weight") if isinstance(X, dict) else None
        return self.criterion_(y_pred, w)


def build_net(
    module: nn.Module,
    *,
    log_jacobian: float,
    learning_rate_init: float,
    alpha: float,
    max_iter: int,
    batch_size: int,
    early_stopping: bool,
    validation_fraction: float,
    n_iter_no_change: int,
    tol: float,
    seed: int,
    verbose: int,
    device: str | None,
    lr_schedule: str | None = None,
    average_weights: float = 0.0,
    patience_fraction: float = 0.0,
    refit: bool = False,
    net_cls: type[NeuralNet] | None = None,
    **net_kwargs: Any,
) -> NeuralNet:
    """Configure the skorch net that trains ``module``.

    Parameters mirror the estimators' (see :class:`skar.base.BaseAutoregressiveDensity`).
    ``alpha`` is the L2 penalty, applied as Adam's ``weight_decay``. With ``early_stopping``
    a seeded :class:`~skorch.dataset.ValidSplit` holds out ``validation_fraction`` of the rows
    and :class:`~skorch.callbacks.EarlyStopping` stops when the validation NLL has not improved
    by ``tol`` nats (an absolute threshold: skorch's relative one misbehaves for negative
    losses, which densities often have) for ``n_iter_no_change`` epochs, then restores the
    best weights.

    The training recipe (each off by default here; the estimators' defaults are in
    :mod:`skar.base`):

    * ``lr_schedule``: ``None`` (constant rate), ``"cosine"`` (:class:`WarmupCosine` over
      ``max_iter`` epochs, warm-up 5% of them) or ``"plateau"`` (halve the rate when the
      validation NLL, or without early stopping the train NLL, has not improved by ``tol``
      for more than ``n_iter_no_change // 2`` epochs), through skorch's
      :class:`~skorch.callbacks.LRScheduler`;
    * ``average_weights``: the decay of an EMA of the weights (:class:`WeightAveraging`), 0 for
      none; the average is what is validated, restored and scored;
    * ``patience_fraction``: early stopping's patience grows to that share of the epochs run
      (:class:`GrowingPatience`);
    * ``refit``: with early stopping, retrain from the same initial weights on all rows for
      the best epoch count (see ``_DensityNet``).

    Always on: :class:`StopOnDivergence` (a diverging training loss stops training, restores
    the best weights and warns) and, last, :class:`RaiseOnInterrupt` (Ctrl-C during training
    raises ``KeyboardInterrupt`` instead of returning a half-trained net).

    ``net_cls`` (a subclass of the density net, default the plain one) and ``net_kwargs``
    (handed to its constructor) are for :mod:`skar.accelerate`; the default path uses neither.
    """
    # Divergence first: it must see every epoch's loss before EarlyStopping may end the loop.
    callbacks: list[Any] = [("divergence", StopOnDivergence())]
    if lr_schedule is not None:
        schedule = _lr_callback(lr_schedule, max_iter, n_iter_no_change, tol, early_stopping)
        callbacks.append(("lr_schedule", schedule))
    if average_weights > 0:
        # Before early stopping: the weights it records and restores are the averaged ones.
        callbacks.append(("average_weights", WeightAveraging(average_weights)))
    train_split = None
    if early_stopping:
        train_split = ValidSplit(validation_fraction, stratified=False, random_state=seed)
        callbacks.append(
            (
                "early_stopping",
                GrowingPatience(
                    patience_fraction=patience_fraction,
                    monitor="valid_loss",
                    patience=n_iter_no_change,
                    threshold=tol,
                    threshold_mode="abs",
                    lower_is_better=True,
                    load_best=True,
                    sink=tqdm.write if verbose else _silent,
                ),
            )
        )
    if verbose == 1:
        callbacks.append(("progress_bar", EpochProgressBar()))
    elif verbose >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.append(("interrupt", RaiseOnInterrupt()))  # last: it judges how training ended
    return (net_cls or _DensityNet)(
        module=module,
        criterion=NLLCriterion,
        criterion__log_jacobian=log_jacobian,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=alpha,
        lr=learning_rate_init,
        max_epochs=max_iter,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        iterator_valid__batch_size=max(batch_size, 1024),
        train_split=train_split,
        callbacks=callbacks,
        device=device,
        verbose=int(verbose >= 2),
        refit=refit,
        **net_kwargs,
    )


def history_frame(net: NeuralNet, history: History | None = None) -> pd.DataFrame:
    """Per-epoch train and validation NLL (nats per row, user units) as a DataFrame, of
    ``history`` (default: ``net.history``)."""
    rows = []
    for h in net.history if history is None else history:
        rows.append(
            {
                "epoch": h["epoch"],
                "train_nll": h.get("train_loss", np.nan),
                "valid_nll": h.get("valid_loss", np.nan),
                "duration": h.get("dur", np.nan),
            }
        )
    return pd.DataFrame(rows, columns=["epoch", "train_nll", "valid_nll", "duration"])
