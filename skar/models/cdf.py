r"""Neural estimators of a one-dimensional CDF: SLC and SIC (Magdon-Ismail & Atiya, NIPS 1998;
IEEE Trans. Neural Networks 13(3), 2002; seed lecture 001).

Both methods fit a monotone network :math:`H(x)` to the cumulative distribution function
:math:`G(x) = \int_{-\infty}^x g(x')\,dx'` of sorted data :math:`x_1 \le \dots \le x_N`, and
read the density off as :math:`\hat g(x) = dH/dx`. Since :math:`G(x_n)` is distributed as the
:math:`n`-th smallest of :math:`N` uniform draws, the regression targets are

* **SLC** (stochastic learning of the cumulative): sorted uniform draws
  :math:`u_1 \le \dots \le u_N \sim U[0, 1]`, *redrawn every cycle* (every epoch), which
  smooths the fit;
* **SIC** (smooth interpolation of the cumulative): their expected values
  :math:`E[u_n] = n / (N + 1)`, the plotting positions of the empirical CDF; the network is
  a smooth interpolant of the empirical CDF.

The loss of one cycle is the lecture's

.. math::

    L = \sum_{n=1}^N (H(x_n) - u_n)^2
        + \lambda \sum_k \Theta\big(H(y_k) - H(y_k + \Delta)\big)
          \big(H(y_k) - H(y_k + \Delta)\big)^2 .

Here monotonicity is *structural*: :math:`H = \sigma \circ f` with

.. math::

    f(z) = a z + b + v^\top h_L(z), \qquad
    h_l = \tanh(W_l h_{l-1} + c_l), \quad h_0 = z,

where :math:`a`, every entry of every :math:`W_l` and of :math:`v` are positive (the softplus
of free parameters). Every term of :math:`f` is non-decreasing in :math:`z` and :math:`a z`
strictly increasing, so :math:`H(y) < H(y + \Delta)` for every :math:`y` and
:math:`\Delta > 0`: the step function :math:`\Theta` of the penalty is always 0 and the penalty
is identically zero. It is therefore not computed, and :math:`\lambda`, :math:`\Delta` are not
parameters. The loss minimised is the mean (not the sum) of the squared errors, which only
rescales the gradient.

Normalisation is exact: :math:`|v^\top h_L| \le \sum_k v_k`, so :math:`f(z) \to \pm\infty`
and :math:`H \to 0, 1` as :math:`z \to \mp\infty`. The density is

.. math::

    \log \hat g(z) = \log \sigma(f) + \log \sigma(-f) + \log f'(z), \qquad
    f'(z) = a + v^\top \frac{dh_L}{dz} > 0,

with :math:`dh_L/dz` carried forward through the layers
(:math:`dh_l/dz = (1 - h_l^2) \odot W_l\, dh_{l-1}/dz`), the closed form of autograd's
derivative. Sampling inverts :math:`H`: for :math:`u \sim U(0, 1)` and
:math:`t = \operatorname{logit} u`, the root of :math:`f(z) = t` lies in the exact bracket
:math:`[(t - b - S)/a,\ (t - b + S)/a]` with :math:`S = \sum_k v_k`, and bisection narrows it
to float64 resolution.

``x`` is standardised in float64, :math:`z = (x - \mu)/s`, and scores add
:math:`\log|dz/dx| = -\log s`, so densities are per unit of ``x`` as the user measures it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler
from torch import Tensor, nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.utils.data import Dataset, Sampler

from ..base import resolve_device
from ..training import RaiseOnInterrupt

__all__ = ["CDFDensity", "CDFRegressionLoss", "MonotoneCDF", "RedrawTargets"]

#: Bisection steps of the sampler: the exact bracket shrinks by 2^-100, far below float64
#: resolution of any root.
_BISECTION_STEPS = 100


def _inv_softplus(y: Tensor) -> Tensor:
    """The ``x`` with ``softplus(x) = y`` (``y > 0``)."""
    return y + torch.log(-torch.expm1(-y))


class MonotoneCDF(nn.Module):
    r"""A CDF :math:`H(z) = \sigma(f(z))` with :math:`f` strictly increasing (a torch module).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the tanh layers with positive weights; ``()`` gives the logistic
        distribution :math:`H(z) = \sigma(a z + b)`.

    Notes
    -----
    Parameters are float64. The first layer starts with slopes in ``[1, 3]`` and centres
    spread over ``[-2.5, 2.5]`` (standardised units, where the data are), the skip slope
    :math:`a` at 1.7 (:math:`\sigma(1.7 z) \approx \Phi(z)`) and the output weights small, so
    training starts near a standard normal CDF.
    """

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (16,)) -> None:
        super().__init__()
        sizes = (1, *hidden_layer_sizes)
        self.raw_weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for l_in, l_out in zip(sizes[:-1], sizes[1:]):
            if l_in == 1:
                slope = 1.0 + 2.0 * torch.rand(l_out, 1, dtype=torch.float64)
                centre = 5.0 * torch.rand(l_out, dtype=torch.float64) - 2.5
                bias = -slope[:, 0] * centre
            else:
                # Positive weights summing to about 1 per unit keep tanh off saturation.
                slope = (0.5 + torch.rand(l_out, l_in, dtype=torch.float64)) / l_in
                bias = 0.5 * torch.randn(l_out, dtype=torch.float64)
            self.raw_weights.append(nn.Parameter(_inv_softplus(slope)))
            self.biases.append(nn.Parameter(bias))
        width = sizes[-1]
        self.raw_slope = nn.Parameter(_inv_softplus(torch.tensor(1.7, dtype=torch.float64)))
        self.raw_out = nn.Parameter(
            _inv_softplus(torch.full((width,), 0.1 / width, dtype=torch.float64))
        ) if hidden_layer_sizes else None
        self.bias = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def logit_and_slope(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`f(z)` and :math:`f'(z)` (shape ``(B,)`` each) for ``z`` of shape ``(B,)``."""
        a = F.softplus(self.raw_slope)
        f = a * z + self.bias
        if self.raw_out is None:
            return f, a.expand_as(z)
        h = z[:, None]  # (B, 1)
        dh = torch.ones_like(h)  # (B, 1): dh_0/dz
        for raw, c in zip(self.raw_weights, self.biases):
            W = F.softplus(raw)  # (out, in), positive
            h = torch.tanh(h @ W.T + c)  # (B, out)
            dh = (1.0 - h * h) * (dh @ W.T)  # (B, out): chain rule, forward mode
        v = F.softplus(self.raw_out)  # (width,)
        return f + h @ v, a + dh @ v

    def forward(self, z: Tensor) -> Tensor:
        """:math:`H(z)`, shape ``(B,)`` (what the regression fits)."""
        return torch.sigmoid(self.logit_and_slope(z.reshape(-1))[0])

    def log_density(self, z: Tensor) -> Tensor:
        r""":math:`\log dH/dz`, shape ``(B,)``, computed without cancellation in the tails."""
        f, df = self.logit_and_slope(z)
        return F.logsigmoid(f) + F.logsigmoid(-f) + torch.log(df)

    @torch.no_grad()
    def inverse(self, u: Tensor) -> Tensor:
        r""":math:`H^{-1}(u)` by bisection on :math:`f(z) = \operatorname{logit} u` in the exact
        bracket :math:`[(t - b - S)/a, (t - b + S)/a]`, vectorised over ``u`` of shape ``(B,)``."""
        t = torch.logit(u)
        a = F.softplus(self.raw_slope)
        s = F.softplus(self.raw_out).sum() if self.raw_out is not None else 0.0 * a
        lo = (t - self.bias - s) / a
        hi = (t - self.bias + s) / a
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            below = self.logit_and_slope(mid)[0] < t
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return 0.5 * (lo + hi)


class RankedPoints(Dataset):
    """The sorted standardised points and their ranks, indexed a whole minibatch at a time.

    With :class:`ShuffledBatches` as the DataLoader's sampler (and ``batch_size=None``) each
    minibatch is one tensor index; skorch's default dataset and loader index and collate the
    rows of a batch one by one, which costs more than the gradient step of this tiny network.
    """

    def __init__(self, z: Tensor, rank: Tensor) -> None:
        self.z = z
        self.rank = rank

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return self.z[rows], self.rank[rows]


class ShuffledBatches(Sampler):
    """Minibatches of a fresh random permutation every epoch, as index tensors.

    The permutation is drawn from torch's global generator, which ``fit`` seeds inside
    :func:`torch.random.fork_rng`.
    """

    def __init__(self, n_samples: int, batch_size: int) -> None:
        self.n_samples = n_samples
        self.batch_size = batch_size

    def __iter__(self):
        yield from torch.randperm(self.n_samples).split(self.batch_size)

    def __len__(self) -> int:
        return math.ceil(self.n_samples / self.batch_size)


class CDFRegressionLoss(nn.Module):
    r"""Mean squared error between :math:`H(x_n)` and the target of rank :math:`n`.

    The targets are a float64 vector indexed by rank (0-based): for SIC the fixed
    :math:`n/(N+1)`, for SLC sorted uniforms that :class:`RedrawTargets` replaces every epoch.
    The lecture's monotonicity penalty is identically zero for :class:`MonotoneCDF` (see the
    module docstring), so it has no term here.

    Parameters
    ----------
    n_samples : int
        :math:`N`, the number of training points.
    """

    def __init__(self, n_samples: int) -> None:
        super().__init__()
        n = int(n_samples)
        self.register_buffer(
            "targets", torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)
        )

    def forward(self, H: Tensor, rank: Tensor) -> Tensor:
        return torch.mean((H - self.targets[rank]) ** 2)


class RedrawTargets(Callback):
    """SLC's cycle: at the start of every epoch, new sorted uniform targets ``u_1 <= ... <= u_N``.

    Parameters
    ----------
    seed : int
        Seeds the CPU generator of the draws (the global RNGs are not touched).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        self.generator_ = torch.Generator().manual_seed(int(self.seed))

    def on_epoch_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        targets = net.criterion_.targets
        u = torch.rand(targets.shape[0], generator=self.generator_, dtype=torch.float64)
        targets.copy_(torch.sort(u).values.to(targets.device))

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        self.generator_ = None


class CDFDensity(DensityMixin, BaseEstimator):
    r"""One-dimensional density estimation by a neural CDF: SLC or SIC.

    A monotone network :math:`H(x)` is fitted by least squares to sorted uniform targets
    (SLC, redrawn every epoch) or to the plotting positions :math:`n/(N+1)` (SIC) at the sorted
    training points; the density is :math:`dH/dx` and sampling inverts :math:`H`. A drop-in
    replacement for :class:`sklearn.neighbors.KernelDensity` on one column, with a smooth
    density and no bandwidth to choose.

    .. math::

        H(x) = \sigma\big(a z + b + v^\top h_L(z)\big), \quad z = (x - \mu)/s, \quad
        \hat g(x) = \frac{dH}{dx}

    with positive :math:`a`, :math:`v` and layer weights, so :math:`H` increases strictly,
    :math:`H(-\infty) = 0` and :math:`H(\infty) = 1` exactly: the density is non-negative and
    integrates to 1. The monotonicity penalty of the lecture is identically zero for this
    network and is not computed (see :mod:`skar.models.cdf`).

    Parameters
    ----------
    method : {"sic", "slc"}, default="sic"
        ``"sic"``: smooth interpolation of the cumulative, targets are :math:`n/(N+1)`.
        ``"slc"``: stochastic learning of the cumulative, targets are sorted uniform draws
        redrawn every epoch. SLC minimises SIC's loss in expectation
        (:math:`E(H - u_n)^2 = (H - n/(N+1))^2 + \operatorname{Var} u_n`), so it is SIC with
        noisy targets: smoother early on, and it needs more epochs to reach the same fit.
    hidden_layer_sizes : array-like of int, default=(16,)
        Widths of the monotone tanh layers; ``()`` fits a logistic distribution. Smaller
        networks give smoother densities.
    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" is ``min(256, ceil(n_samples / 8))``, so that every epoch
        takes at least 8 steps.
    learning_rate_init : float, default=3e-2
        Adam's initial learning rate, annealed to 0 over ``max_iter`` epochs by a cosine
        schedule (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`).
    max_iter : int, default=300
        Number of epochs (SLC cycles). There is no early stopping: the CDF regression has no
        held-out criterion that the targets of SLC do not make noisy.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the SLC targets and (by default) ``sample``; the
        global torch and numpy RNGs are left as they were.
    verbose : int, default=0
        0 trains silently; 1 or more prints skorch's epoch table (train loss: the mean squared
        CDF error).
    device : str, default="auto"
        ``"auto"`` trains on CUDA when available, else the CPU; or any torch device string.

    Attributes
    ----------
    n_features_in_ : int
        Always 1.
    feature_names_in_ : ndarray of shape (1,)
        The column name, when X was a DataFrame with a string column name.
    mean_ : float
        :math:`\mu`, the training mean.
    scale_ : float
        :math:`s`, the training standard deviation (1 for a constant column).
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the :class:`MonotoneCDF`.
    history_ : pandas.DataFrame
        Per-epoch ``train_loss`` (mean squared CDF error) and ``duration``.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    M. Magdon-Ismail and A. Atiya. Neural networks for density estimation. NIPS 11, 1998.
    M. Magdon-Ismail and A. Atiya. Density estimation and random variate generation using
    multilayer networks. IEEE Transactions on Neural Networks 13(3), 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from skar.models.cdf import CDFDensity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 1))
    >>> est = CDFDensity(method="sic", max_iter=20, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 1)
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"slc", "sic"})],
        "hidden_layer_sizes": ["array-like"],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        method: str = "sic",
        *,
        hidden_layer_sizes: Any = (16,),
        batch_size: Any = "auto",
        learning_rate_init: float = 3e-2,
        max_iter: int = 300,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.method = method
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # ------------------------------------------------------------------ input checks
    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validate X as a finite float64 array of one column; the error names the shape.

        In ``fit`` scikit-learn's checks come first (sparse, empty, NaN and inf, non-numeric
        input get its usual messages), then the width; in scoring the width comes first, so
        a wrong width is reported as such rather than as a feature-count mismatch.
        """
        if not reset:
            self._check_width(getattr(X, "shape", None))
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        self._check_width(X.shape)
        return X

    @staticmethod
    def _check_width(shape: Any) -> None:
        if shape is not None and len(shape) == 2 and shape[1] != 1:
            raise ValueError(
                f"CDFDensity models one column, but X has shape {tuple(shape)} "
                f"({shape[1]} columns); pass a single column of shape (n_samples, 1), e.g. "
                "X[:, [j]] or x.reshape(-1, 1)"
            )

    def _hidden_sizes(self) -> tuple[int, ...]:
        hidden = np.asarray(self.hidden_layer_sizes).reshape(-1)
        if hidden.size and (hidden.dtype.kind not in "iu" or (hidden < 1).any()):
            raise ValueError(
                "hidden_layer_sizes must hold positive integers (or be empty for a logistic "
                f"CDF); got {self.hidden_layer_sizes!r}"
            )
        return tuple(int(h) for h in hidden)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> CDFDensity:
        """Fit :math:`H` to the CDF of the single column of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
            Training values; finite.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        saved = dict(self.__dict__)
        try:
            self._fit(X)
        except BaseException:
            # A failed or interrupted fit leaves a previously fitted estimator as it was.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _fit(self, X: Any) -> None:
        X = self._check_X(X, reset=True)
        hidden = self._hidden_sizes()
        x = X[:, 0]
        n = x.shape[0]
        mean = float(x.mean())
        std = float(x.std())
        scale = std if std > 0 else 1.0
        z = np.sort((x - mean) / scale)
        if self.batch_size == "auto":
            # At least 8 steps an epoch: a small sample still gets a few hundred steps.
            batch_size = min(256, math.ceil(n / 8))
        else:
            batch_size = int(self.batch_size)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        callbacks: list[Any] = []
        if self.method == "slc":
            callbacks.append(("targets", RedrawTargets(seed)))
        callbacks.append(
            ("lr_schedule", LRScheduler(policy=CosineAnnealingLR, T_max=self.max_iter))
        )
        callbacks.append(("interrupt", RaiseOnInterrupt()))
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            # Seeds initialisation and shuffling; the caller's RNG state is restored on exit.
            torch.manual_seed(seed)
            net = NeuralNet(
                module=MonotoneCDF,
                module__hidden_layer_sizes=hidden,
                criterion=CDFRegressionLoss,
                criterion__n_samples=n,
                optimizer=torch.optim.Adam,
                lr=self.learning_rate_init,
                max_epochs=self.max_iter,
                batch_size=batch_size,
                # Whole minibatches are indexed at once: skorch's default collates the rows
                # of a batch one by one, which costs more than the step on this tiny network.
                iterator_train__batch_size=None,
                iterator_train__sampler=ShuffledBatches(n, batch_size),
                train_split=None,
                callbacks=callbacks,
                device=device,
                verbose=int(self.verbose >= 1),
            )
            data = RankedPoints(torch.as_tensor(z), torch.arange(n))
            net.fit(data, None)
        net.module_.eval()
        self.mean_ = mean
        self.scale_ = scale
        self.net_ = net
        self.history_ = pd.DataFrame(
            {
                "epoch": [h["epoch"] for h in net.history],
                "train_loss": [h.get("train_loss", np.nan) for h in net.history],
                "duration": [h.get("dur", np.nan) for h in net.history],
            }
        )
        self.n_iter_ = len(net.history)

    # ------------------------------------------------------------------ evaluation
    def _standardise(self, X: Any) -> Tensor:
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        z = (X[:, 0] - self.mean_) / self.scale_
        return torch.as_tensor(z, dtype=torch.float64, device=self.net_.device)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log density of every value, natural log, per unit of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)

        Returns
        -------
        log_density : ndarray of shape (n_samples,), float64
            :math:`\\log dH/dx`, directly comparable with
            :meth:`sklearn.neighbors.KernelDensity.score_samples`.
        """
        z = self._standardise(X)
        with torch.no_grad():
            out = self.net_.module_.log_density(z).cpu().numpy()
        return out - math.log(self.scale_)

    def score(self, X: Any, y: Any = None) -> float:
        """Total log-likelihood of ``X`` (as ``KernelDensity.score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
        y : None
            Ignored.

        Returns
        -------
        logprob : float
            ``sum_n log p(x_n)``.
        """
        return float(np.sum(self.score_samples(X)))

    def cdf(self, X: Any) -> np.ndarray:
        """The fitted CDF :math:`H(x)` of every value.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)

        Returns
        -------
        ndarray of shape (n_samples,), float64
            Values in ``[0, 1]``, increasing in ``x``.
        """
        z = self._standardise(X)
        with torch.no_grad():
            return self.net_.module_(z).cpu().numpy()

    def sample(self, n_samples: int = 1, random_state: Any = None) -> Any:
        """Draw values by inverting :math:`H` (bisection) at uniform draws.

        Parameters
        ----------
        n_samples : int, default=1
            Number of values to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw. ``None`` uses the estimator's ``random_state``, so an estimator
            built with an integer ``random_state`` samples the same values every call.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, 1)
            Values in the units of the training data; a DataFrame with the fitted column name
            when the model was fitted on a DataFrame.
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, (bool, np.bool_))
            or not isinstance(n_samples, (Integral, np.integer))
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
        rs = self.random_state if random_state is None else random_state
        seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        u = torch.rand(n_samples, generator=generator, dtype=torch.float64)
        # logit(0) is -inf: the smallest uniform step keeps every draw finite.
        u = u.clamp(min=2.0**-53).to(self.net_.device)
        z = self.net_.module_.inverse(u).cpu().numpy()
        x = (self.mean_ + self.scale_ * z)[:, None]
        if hasattr(self, "feature_names_in_"):
            return pd.DataFrame(x, columns=self.feature_names_in_)
        return x

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags
