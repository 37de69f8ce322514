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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["EpochProgressBar", "NLLCriterion", "build_net", "history_frame"]


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
        # A batch whose weights are all zero contributes nothing rather than 0/0 = NaN.
        return -(w * log_prob).sum() / w.sum().clamp_min(1e-12) - self.log_jacobian


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


class _DensityNet(NeuralNet):
    """The skorch net: only the loss differs from a plain ``NeuralNet``."""

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

    ``net_cls`` (a subclass of the density net, default the plain one) and ``net_kwargs``
    (handed to its constructor) are for :mod:`skar.accelerate`; the default path uses neither.
    """
    callbacks: list[Any] = []
    train_split = None
    if early_stopping:
        train_split = ValidSplit(validation_fraction, stratified=False, random_state=seed)
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
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
        **net_kwargs,
    )


def history_frame(net: NeuralNet) -> pd.DataFrame:
    """Per-epoch train and validation NLL (nats per row, user units) as a DataFrame."""
    rows = []
    for h in net.history:
        rows.append(
            {
                "epoch": h["epoch"],
                "train_nll": h.get("train_loss", np.nan),
                "valid_nll": h.get("valid_loss", np.nan),
                "duration": h.get("dur", np.nan),
            }
        )
    return pd.DataFrame(rows, columns=["epoch", "train_nll", "valid_nll", "duration"])
