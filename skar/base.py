"""The scikit-learn face shared by every skar estimator.

Every estimator is the chain rule

.. math::  \\log p(x) = \\sum_{i=1}^{D} \\log p(x_{o_i} \\mid x_{o_1}, \\dots, x_{o_{i-1}})

for an ordering ``o`` of the columns. :class:`BaseAutoregressiveDensity` implements ``fit``,
``score_samples``, ``score`` and ``sample`` once (in the manner of
:class:`sklearn.mixture._base.BaseMixture`); a model supplies its network through one hook,
:meth:`BaseAutoregressiveDensity._build_network`, and may override
:meth:`BaseAutoregressiveDensity._sample_encoded` with an exact fast sampler.

The network contract (see :class:`AutoregressiveNetwork`) is what keeps the models
interchangeable: ``forward(x, member)`` returns the parameters of every conditional in one
parallel pass, and the parameters of position ``i`` depend only on positions before ``i`` in
``ordering(member)``. A *member* is one of an ensemble of orderings or masks (MADE's mask
ensembles, order-agnostic NADE); a model without an ensemble has one member.

Conditional models (``fit(X, y)`` learning :math:`p(x \\mid y)`, e.g. the class-conditional
PixelCNN) use one more hook, :meth:`BaseAutoregressiveDensity._encode_context`: it turns ``y``
into a *context* array, one row per sample, that travels next to ``x`` (the ``"context"`` key of
the dict skorch trains on) and reaches the network as ``forward(x, member, context=...)``. The
default hook ignores ``y``, and then nothing is passed: unconditional networks keep the
two-argument ``forward(x, member)``.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from torch import Tensor, nn

from .distributions import ColumnConditionals, ConditionalFamily
from .schema import TabularSchema
from .training import build_net, history_frame

__all__ = [
    "FAMILY_PARAMETERS",
    "MIXTURE_CONSTRAINTS",
    "ORDERING_CONSTRAINTS",
    "RECIPE_CONSTRAINTS",
    "SCHEMA_PARAMETERS",
    "SHARED_PARAMETERS",
    "TABULAR_CONSTRAINTS",
    "TRAINING_CONSTRAINTS",
    "AutoregressiveNetwork",
    "BaseAutoregressiveDensity",
    "DensityModule",
    "make_orderings",
    "member_rows",
    "start_at_marginals",
    "check_labels",
    "resolve_device",
    "sample_plain",
    "shared_params",
    "user_stacklevel",
    "auto_batch_size",
    "check_passthrough_X",
    "passthrough_tags",
]


class AutoregressiveNetwork(nn.Module):
    """The contract every model's network keeps (a documentation base class).

    Attributes
    ----------
    n_members : int
        Size of the ensemble of orderings/masks (1 without an ensemble).
    """

    n_members: int = 1

    def forward(self, x: Tensor, member: int = 0) -> Tensor:
        """Parameters of every conditional, in one pass.

        Parameters
        ----------
        x : Tensor of shape (B, D)
            Encoded rows (:meth:`skar.schema.TabularSchema.encode`).
        member : int
            Which ordering/mask of the ensemble to use.
        context : Tensor of shape (B, ...), keyword-only, optional
            Only for conditional models (see
            :meth:`BaseAutoregressiveDensity._encode_context`); it is never passed to an
            unconditional network, whose ``forward`` need not accept it.

        Returns
        -------
        Tensor of shape (B, n_params)
            Column ``d``'s parameters in the slice given by
            :class:`skar.distributions.ColumnConditionals`; they depend only on the columns
            before ``d`` in ``ordering(member)``.
        """
        raise NotImplementedError

    def ordering(self, member: int = 0) -> Tensor:
        """The generation order of ``member``: a LongTensor permutation of ``range(D)``."""
        raise NotImplementedError

    def draw_member(self) -> int:
        """The member to train on for the next minibatch (one per minibatch)."""
        return 0

    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Start every conditional at its column's marginal (optional hook).

        Sets the output biases to ``theta0`` (the columns' fitted marginals, in the flat layout
        of :class:`~skar.distributions.ColumnConditionals`, see
        :meth:`~skar.distributions.ColumnConditionals.marginal_params`) and zeroes the output
        weights of the parameters flagged in the boolean ``independent``. Estimators with
        ``init_params="marginals"`` call it from
        :meth:`BaseAutoregressiveDensity._initialize_network`; a network that has no such
        start raises :class:`NotImplementedError` (the default).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define init_marginals, so it has no marginal "
            "start; use the random initialisation"
        )

    def training_log_prob(
        self, x: Tensor, conditionals: ColumnConditionals, context: Tensor | None = None
    ) -> Tensor:
        """The per-row objective that training maximises, shape (B,).

        The default is the chain rule of one member drawn by :meth:`draw_member` (one per
        minibatch): ``sum_d log p_m(x_d | x_<d)``. A network overrides it with another unbiased
        estimate of, or bound on, ``log p(x)`` (order-agnostic NADE: a random ordering and
        split point per row). Scoring, in evaluation mode, never calls it.
        """
        member = self.draw_member()
        params = self(x, member) if context is None else self(x, member, context=context)
        return conditionals.log_prob(params, x).sum(-1)


class DensityModule(nn.Module):
    """What skorch trains: a network plus the column families, returning ``log p(x)`` per row.

    In training mode one member (mask/ordering) is drawn per minibatch, which trains every
    member of an ensemble in turn (order- and connectivity-agnostic training, Germain et al.
    2015; Uria et al. 2014). In evaluation mode the members' *probabilities* are averaged,

    .. math::  \\log p(x) = \\log \\frac{1}{K} \\sum_{k=1}^{K} p_k(x),

    by log-mean-exp, not by averaging logits or log-probabilities.

    Parameters
    ----------
    network : AutoregressiveNetwork
    conditionals : ColumnConditionals
    """

    def __init__(self, network: nn.Module, conditionals: ColumnConditionals) -> None:
        super().__init__()
        self.network = network
        self.conditionals = conditionals

    def params(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """The network's conditional parameters, ``(B, n_params)``; ``context`` is handed on
        only when given, so unconditional networks keep ``forward(x, member)``."""
        if context is None:
            return self.network(x, member)
        return self.network(x, member, context=context)

    def log_prob_per_feature(
        self, x: Tensor, member: int = 0, context: Tensor | None = None
    ) -> Tensor:
        """``log p_member(x_d | x_<d)`` for every column; shape (B, D), standardised units."""
        return self.conditionals.log_prob(self.params(x, member, context), x)

    def forward(
        self,
        x: Tensor,
        sample_weight: Tensor | None = None,
        context: Tensor | None = None,
        log_jacobian: Tensor | None = None,
    ) -> Tensor:
        """Log density of every row of ``x`` (standardised units); shape (B,).

        ``context`` (conditional models only) is one context row per row of ``x``.
        ``log_jacobian`` (B,), when given, is the part of every row's log|Jacobian| that
        varies between rows (:meth:`BaseAutoregressiveDensity._log_jacobian_rows`), added so
        that training reports its losses in the units of the data.
        """
        if self.training:
            out = self.network.training_log_prob(x, self.conditionals, context)
        else:
            k = self.network.n_members
            logps = torch.stack(
                [self.log_prob_per_feature(x, m, context).sum(-1) for m in range(k)]
            )
            out = torch.logsumexp(logps, dim=0) - math.log(k)
        return out if log_jacobian is None else out + log_jacobian.to(out)


def member_rows(
    n_members: int, n_samples: int, generator: torch.Generator, device: torch.device | str
):
    """Draw every row's ensemble member uniformly and yield ``(member, rows)`` groups.

    The ensemble density is the uniform mixture of its members, so a sample first draws its
    member (one ``torch.randint`` from ``generator``, skipped for a single member), then its
    columns in that member's order. Every sampler, plain or fast, groups rows through this one
    function, so they consume the generator identically.

    Yields
    ------
    member : int
    rows : LongTensor on ``device``
        Indices of the rows drawn for ``member`` (members with no rows are skipped).
    """
    if n_members > 1:
        members = torch.randint(n_members, (n_samples,), generator=generator)
    else:
        members = torch.zeros(n_samples, dtype=torch.long)
    for m in range(n_members):
        rows = torch.nonzero(members == m).squeeze(1).to(device)
        if rows.numel():
            yield m, rows


def start_at_marginals(
    network: nn.Module,
    conditionals: ColumnConditionals,
    Z: np.ndarray,
    sample_weight: np.ndarray,
    seed: int,
) -> None:
    """Start ``network`` at the product of its columns' fitted marginals.

    The output biases become :meth:`~skar.distributions.ColumnConditionals.marginal_params`
    (every column's family fitted to that column alone, EM seeded by ``seed``) and the output
    weights of continuous columns' parameters start at zero, so that before the first step
    :math:`p(x) = \\prod_d f_d(x_d; \\theta_{0,d})` whatever the random hidden weights. Discrete
    columns keep their random output weights (a logit bears the perturbation, and the hidden
    layers get gradients from the first step). Calls the network's
    :meth:`AutoregressiveNetwork.init_marginals`; used by the estimators'
    ``init_params="marginals"``.
    """
    theta0 = conditionals.marginal_params(Z, sample_weight, seed)
    independent = torch.as_tensor(
        [f.kind == "continuous" for f in conditionals.families for _ in range(f.n_params)],
        dtype=torch.bool,
    )
    with torch.no_grad():
        network.init_marginals(theta0, independent)


@torch.no_grad()
def sample_plain(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """The generic sampler: one position at a time, one full network pass per position.

    With an ensemble, each row first draws its member uniformly (the ensemble density is the
    uniform mixture of the members' densities), then draws its columns in that member's order:
    ``x_{o_i} ~ p(. | x_{o_<i})``. Costs D network passes; models with an exact incremental
    sampler override :meth:`BaseAutoregressiveDensity._sample_encoded` and are tested against
    this loop.

    Parameters
    ----------
    module : DensityModule
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    context : Tensor of shape (n_samples, ...), optional
        Conditional models only: the encoded context of every row to draw.

    Returns
    -------
    Tensor of shape (n_samples, D)
        Encoded rows.
    """
    net, cond = module.network, module.conditionals
    device = next(iter(module.buffers()), next(module.parameters())).device
    k = net.n_members
    D = cond.n_features
    x = torch.zeros(n_samples, D, device=device)
    for m, rows in member_rows(k, n_samples, generator, device):
        xm = torch.zeros(rows.numel(), D, device=device)
        cm = None if context is None else context[rows]
        for d in net.ordering(m).tolist():
            params = module.params(xm, m, cm)
            xm[:, d] = cond.sample_column(params, d, generator)
        x[rows] = xm
    return x


def make_orderings(
    n_features: int,
    n_members: int,
    order: Any,
    rng: np.random.Generator,
    *,
    distinct: bool = False,
) -> np.ndarray:
    """Orderings of the columns, shape (n_members, D).

    ``"natural"``: ``0 .. D-1``; ``"random"``: an independent random permutation per member; an
    array: that permutation. With ``distinct=False`` a natural or given order is repeated for
    every member (MADE's connectivity-agnostic ensembles vary the masks, not the order). With
    ``distinct=True`` only the first member follows ``order`` and the others are independent
    random permutations: an ensemble of *orderings* (EoNADE, the Transformer) whose members
    all shared one order would be one model repeated.
    """
    if isinstance(order, str) and order == "natural":
        first = np.arange(n_features)
    elif isinstance(order, str) and order == "random":
        first = rng.permutation(n_features)
    else:
        first = np.asarray(order)
        if first.ndim != 1 or sorted(first.tolist()) != list(range(n_features)):
            raise ValueError(
                f"order must be 'natural', 'random' or a permutation of range({n_features}); "
                f"got {order!r}"
            )
    if (isinstance(order, str) and order == "random") or distinct:
        rest = [rng.permutation(n_features) for _ in range(n_members - 1)]
    else:
        rest = [first] * (n_members - 1)
    return np.stack([first, *rest]).astype(np.int64)


def resolve_device(device: str | torch.device) -> str:
    """Check ``device`` up front and return it as a string.

    ``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``. Accepted: ``"cpu"``,
    ``"cuda"`` and ``"cuda:k"`` (with ``k`` a visible GPU), and ``"mps"`` where
    ``torch.backends.mps.is_available()``. Any other torch device (``"meta"``, ``"xpu"``, ...)
    is refused here, with a ValueError naming it, rather than failing later inside torch.
    """
    device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if dev.type == "cpu":
        return device
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested, but torch.cuda.is_available() is False; "
                "use device='auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} names GPU {dev.index}, but only "
                f"{torch.cuda.device_count()} GPU(s) are visible (cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}); use device='auto' or 'cpu'"
            )
        return device
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device={device!r} was requested, but torch.backends.mps.is_available() is "
                "False; use device='auto' or 'cpu'"
            )
        return device
    raise ValueError(
        f"device={device!r} is a torch device skar cannot train on; use 'auto', 'cpu', "
        "'cuda', 'cuda:<k>' or 'mps'"
    )


#: The training parameters every estimator shares, in signature order, each with its numpydoc
#: paragraph. ``{default}`` is filled from the estimator's own signature, so one paragraph serves
#: estimators with different defaults. An estimator's docstring holds the line
#: ``{shared_parameters}`` where these paragraphs go (see
#: :meth:`BaseAutoregressiveDensity.__init_subclass__`). To add a shared parameter: one entry
#: here, one in :data:`TRAINING_CONSTRAINTS` (or :data:`TABULAR_CONSTRAINTS`), its use in
#: ``_fit`` (or in :data:`FAMILY_PARAMETERS`), and one line in each estimator's signature.
SHARED_PARAMETERS: dict[str, str] = {
    "categorical_features": """\
categorical_features : array-like of int, str or bool, or "from_dtype", default={default}
    Columns to model as categorical besides those whose pandas dtype is category, bool,
    object or string (positions, names or a boolean mask).""",
    "feature_types": """\
feature_types : None, str, array-like of str or dict, default={default}
    Forces columns' types, each ``"binary"``, ``"categorical"``, ``"continuous"`` or
    ``"quantized"``: one string for every column, one entry per column (``None`` entries
    are inferred), or a dict from column names or positions to types. ``None`` infers every
    column (:meth:`skar.schema.TabularSchema.from_data`): bool and numeric 0/1 columns are
    binary, category, object and string columns categorical, numeric columns on a grid the
    data make visible quantized, the others continuous. Declare a 0/1 column
    ``"continuous"`` to model it as a number.""",
    "quantization": """\
quantization : "auto", None, dict or array-like of float, default={default}
    Grid steps of quantized columns, in the column's units. A quantized column (values
    recorded at resolution ``r``) is scored by the probability of its cell of width ``r``
    divided by ``r``, the density of the dequantized variable, so its log density is at
    most ``-log r`` whatever the mixture does. ``"auto"`` detects the step of every numeric
    column whose values lie on a visible grid (:func:`skar.schema.detect_step`); ``None``
    quantizes only columns declared ``"quantized"``; a dict (names or positions to steps)
    or an array with one step per column (0 or NaN for none) sets steps.""",
    "point_masses": """\
point_masses : "auto" or None, default={default}
    ``"auto"`` gives continuous (not quantized) columns point masses at the values that
    repeat far more often than a continuous variable allows (clipping bounds, zeros;
    :func:`skar.schema.detect_atoms`): such a value is scored by its probability, the rest
    of the column by a density. ``None`` never.""",
    "min_scale": """\
min_scale : float, default={default}
    Floor of the mixture components' scales, in standardised units, on continuous columns
    (a quantized column's floor is a sixteenth of its step, which its cells make
    harmless).""",
    "handle_unknown": """\
handle_unknown : {{"zero_probability", "error"}}, default={default}
    What scoring does with a category not seen in fit (or a value other than 0/1 in a
    binary column): ``"zero_probability"`` scores its row ``-inf`` (and the cell ``-inf`` in
    :meth:`score_samples_per_feature`); ``"error"`` raises a ValueError naming the column,
    row and value.""",
    "quantized_samples": """\
quantized_samples : {{"grid", "uniform"}}, default={default}
    What :meth:`sample` draws in quantized columns: ``"grid"`` the recorded values (cell
    centres, integers for integer columns), ``"uniform"`` the dequantized values (uniform
    within the drawn cell).""",
    "batch_size": """\
batch_size : int or "auto", default={default}
    Minibatch size; "auto" is {auto}.""",
    "learning_rate_init": """\
learning_rate_init : float, default={default}
    Adam's learning rate.""",
    "max_iter": """\
max_iter : int, default={default}
    Maximum number of epochs.""",
    "alpha": """\
alpha : float, default={default}
    L2 penalty (Adam's weight decay).""",
    "early_stopping": """\
early_stopping : bool, default={default}
    Hold out ``validation_fraction`` of the rows and stop when their NLL stops improving,
    restoring the best weights. The validation NLL is the model's exact score (for an
    ensemble, the ensemble's), whatever the training objective.""",
    "validation_fraction": """\
validation_fraction : float, default={default}
    Share of rows held out for early stopping.""",
    "n_iter_no_change": """\
n_iter_no_change : int, default={default}
    Epochs without an improvement of at least ``tol`` before stopping.""",
    "tol": """\
tol : float, default={default}
    Minimum improvement of the validation NLL, in nats per row (per image, per sequence).""",
    "lr_schedule": """\
lr_schedule : {{"cosine", "plateau"}} or None, default={default}
    Learning-rate schedule over the epochs: ``"cosine"`` warms up linearly over 5% of
    ``max_iter`` and then anneals to 0 at ``max_iter`` by a half cosine; ``"plateau"`` halves
    the rate when the validation NLL has not improved by ``tol`` for ``n_iter_no_change // 2``
    epochs; None keeps ``learning_rate_init``.""",
    "average_weights": """\
average_weights : float, default={default}
    Decay of an exponential moving average of the weights, updated after every step (0: no
    averaging). The average is what is validated, restored by early stopping and scored.""",
    "patience_fraction": """\
patience_fraction : float, default={default}
    With early stopping, the patience grows to this share of the epochs run,
    ``max(n_iter_no_change, ceil(patience_fraction * epoch))``: a run that has improved for
    a long time is not stopped by a few noisy epochs.""",
    "refit": """\
refit : bool, default={default}
    With early stopping, the best epoch count found on the held-out rows is then used to
    train again, from the same initial weights, on all rows (``history_`` is the refit's;
    ``selection_history_`` keeps the first run's, with its validation NLL).""",
    "random_state": """\
random_state : int, RandomState instance or None, default={default}
    Seeds initialisation, masks and orderings, shuffling, dropout, the validation split and
    (by default) ``sample``; the global torch and numpy RNGs are left as they were.""",
    "verbose": """\
verbose : int, default={default}
    0 trains silently; 1 shows a progress bar over epochs with the latest train and
    validation NLL; 2 prints skorch's epoch table and a per-batch progress bar.""",
    "device": """\
device : str, default={default}
    ``"auto"`` trains on CUDA when available, else the CPU; or any torch device string.""",
}

#: Constraints of the shared training parameters (scikit-learn's ``_parameter_constraints``
#: format), for every estimator.
TRAINING_CONSTRAINTS: dict[str, list] = {
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "device": [str, torch.device],
}

#: Constraints of the training recipe's parameters (:func:`skar.training.build_net`). Kept
#: apart from :data:`TRAINING_CONSTRAINTS` until every estimator declares them; an estimator
#: whose signature has them adds these to its ``_parameter_constraints``.
RECIPE_CONSTRAINTS: dict[str, list] = {
    "lr_schedule": [StrOptions({"cosine", "plateau"}), None],
    "average_weights": [Interval(Real, 0, 1, closed="left")],
    "patience_fraction": [Interval(Real, 0, 1, closed="left")],
    "refit": ["boolean"],
}

#: The recipe's settings for an estimator that does not declare them: all off (the training
#: of before the recipe).
RECIPE_OFF: dict[str, Any] = {
    "lr_schedule": None, "average_weights": 0.0, "patience_fraction": 0.0, "refit": False
}

#: Constraints of the parameters of estimators on tabular columns (images and sequences,
#: whose columns share one kind, have none).
TABULAR_CONSTRAINTS: dict[str, list] = {
    "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
    "feature_types": [None, str, dict, "array-like"],
    "quantization": [StrOptions({"auto"}), None, dict, "array-like"],
    "point_masses": [StrOptions({"auto"}), None],
    "handle_unknown": [StrOptions({"zero_probability", "error"})],
    "quantized_samples": [StrOptions({"grid", "uniform"})],
}

#: Constraints of the mixture conditionals of continuous columns.
MIXTURE_CONSTRAINTS: dict[str, list] = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "component": [StrOptions({"gaussian", "laplace", "logistic"})],
    "min_scale": [Interval(Real, 0, None, closed="neither")],
}

#: Constraints of an ordering ensemble (``order`` and the ensemble size ``n_orderings``).
ORDERING_CONSTRAINTS: dict[str, list] = {
    "order": [StrOptions({"natural", "random"}), "array-like"],
    "n_orderings": [Interval(Integral, 1, None, closed="left")],
}

#: Estimator parameters that are keywords of :meth:`skar.schema.TabularSchema.families`: the
#: default :meth:`BaseAutoregressiveDensity._families` passes those an estimator declares.
FAMILY_PARAMETERS: tuple[str, ...] = ("n_components", "component", "min_scale")

#: Estimator parameters that are keywords of :meth:`skar.schema.TabularSchema.from_data`: the
#: default :meth:`BaseAutoregressiveDensity._make_schema` passes those an estimator declares.
SCHEMA_PARAMETERS: tuple[str, ...] = (
    "categorical_features",
    "feature_types",
    "quantization",
    "point_masses",
    "quantized_samples",
)

_SHARED_MARKER = "{shared_parameters}"


def shared_params(namespace: dict[str, Any]) -> dict[str, Any]:
    """The shared parameters found in ``namespace`` (an estimator ``__init__``'s ``locals()``).

    Lets every estimator hand its shared parameters to
    :meth:`BaseAutoregressiveDensity.__init__` in one line,
    ``super().__init__(**shared_params(locals()))``, while its own signature stays explicit
    for :meth:`~sklearn.base.BaseEstimator.get_params`.
    """
    return {name: namespace[name] for name in SHARED_PARAMETERS if name in namespace}


def _format_default(value: Any) -> str:
    if isinstance(value, float) and 0 < abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-")  # 1e-3, not 0.001
    return repr(value).replace("'", '"')


def check_passthrough_X(estimator: Any, X: Any, *, reset: bool) -> Any:
    """Check that ``X`` is non-empty and dense, and its width and feature names for
    ``estimator``; DataFrames stay DataFrames (their mixed kinds are read by the schema, or by
    the estimator a meta-estimator wraps), anything else becomes a 2-D array of its own dtype.
    Numeric conversion and NaN/inf messages are left to the schema, which knows which columns
    may hold text. Shared by every estimator and by :class:`skar.DensityOutlierDetector` and
    :class:`skar.DensityEnsemble`."""
    if isinstance(X, pd.DataFrame):
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                f"(shape={X.shape}) while a minimum of 1 sample and 1 feature is required."
            )
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        return X
    return validate_data(
        estimator, X, reset=reset, dtype=None, ensure_all_finite=False, accept_sparse=False
    )


def passthrough_tags(tags: Any, inner: Any) -> Any:
    """``tags`` of a meta-estimator with the input kinds and determinism of the estimator
    ``inner`` it wraps."""
    inner_tags = get_tags(inner)
    tags.input_tags.allow_nan = inner_tags.input_tags.allow_nan
    tags.input_tags.categorical = inner_tags.input_tags.categorical
    tags.input_tags.string = inner_tags.input_tags.string
    tags.input_tags.sparse = False
    tags.non_deterministic = inner_tags.non_deterministic
    return tags


def auto_batch_size(n_rows: int, steps_per_epoch: int = 1) -> int:
    """The minibatch size ``batch_size="auto"`` gives a fit on ``n_rows`` rows.

    ``min(200, max(min(32, n), round(n / s)))`` with ``s = steps_per_epoch``: ``s = 1`` is
    ``min(200, n)``, one to a few optimizer steps per epoch on a few hundred rows; ``s = 10``
    gives small data about ten (smaller, noisier) steps per epoch, never batches under 32 rows,
    and changes nothing above 2,000 rows. Each estimator's ``_auto_steps_per_epoch`` was chosen
    by ``benchmarks/defaults/select_batch.py``.
    """
    n = int(n_rows)
    return int(min(200, max(min(32, n), round(n / max(1, int(steps_per_epoch))))))


def _auto_batch_doc(estimator_class: type) -> str:
    s = int(getattr(estimator_class, "_auto_steps_per_epoch", 1))
    if s == 1:
        return "``min(200, n_samples)``"
    return (f"``min(200, max(32, round(n_samples / {s})))`` (about {s} steps per epoch below "
            f"{200 * s:,} rows, chosen by ``benchmarks/defaults/select_batch.py``)")


def shared_parameters_doc(estimator_class: type, indent: str = "    ") -> str:
    """The numpydoc paragraphs of the shared parameters ``estimator_class`` declares, with the
    defaults of its signature, indented by ``indent``."""
    signature = inspect.signature(estimator_class.__init__).parameters
    own = getattr(estimator_class, "_own_parameters", ())
    paragraphs = [
        doc.format(default=_format_default(signature[name].default),
                   auto=_auto_batch_doc(estimator_class))
        for name, doc in SHARED_PARAMETERS.items()
        if name in signature and name not in own
    ]
    return "\n".join(indent + line for p in paragraphs for line in p.splitlines())


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the calling function point at the
    first line outside skar and scikit-learn: the user's call, however deep in ``fit``
    (scikit-learn's parameter-validation wrapper, skar's hooks) the warning is raised.
    """
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the function that warns: level 1
    level = 1
    internal = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(internal):
        frame = frame.f_back
        level += 1
    return level


def _normalized_weights(sample_weight: Any, Z: np.ndarray) -> np.ndarray:
    """Row weights checked and scaled, in float64, to a mean of 1 over the positive weights.

    The loss, the weighted mean NLL ``-(sum w log p) / sum w``, does not depend on the scale
    of ``w``; float32 does: 1e39 overflows it and 1e-50 underflows it to 0. Dividing first by
    the largest weight (so nothing overflows while averaging), then by the mean of the
    positive weights, happens before the float32 cast, so ``w`` and ``c w`` train the same
    model for any ``c > 0``.
    """
    w = _check_sample_weight(sample_weight, Z, dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(w).all():
        row = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"sample_weight holds {w[row]} at row {row}; weights must be finite")
    positive = w > 0
    if not positive.any():
        raise ValueError("sample_weight sums to 0; at least one row needs a positive weight")
    w = w / w.max()
    return w / w[positive].mean()


def _check_split_weights(
    w: np.ndarray, train: np.ndarray, valid: np.ndarray, validation_fraction: float
) -> None:
    """Refuse an early-stopping split that leaves no positive weight in the training rows
    (nothing would be trained); warn when the validation rows have none (early stopping then
    watches a loss of weight zero, constant, and stops after ``n_iter_no_change`` epochs)."""
    advice = ("set early_stopping=False, change validation_fraction or random_state, or give "
              "a positive sample_weight to more rows")
    if not (w[train] > 0).any():
        raise ValueError(
            f"early_stopping=True holds out validation_fraction={validation_fraction} of the "
            "rows, and every row with a positive sample_weight is among them: the split "
            f"leaves no positive weight in the training rows, so nothing would be trained; "
            f"{advice}"
        )
    if not (w[valid] > 0).any():
        warnings.warn(
            "early_stopping=True, but every row held out for validation has sample_weight 0: "
            "the validation loss has weight zero and cannot guide early stopping; " + advice,
            UserWarning,
            stacklevel=4,
        )


def check_labels(y: Any) -> np.ndarray:
    """Class labels as a 1-D array, refusing missing and unorderable labels by name.

    A conditional model sorts its labels (``np.unique``); a ``None`` or NaN among them, or a
    mix of types that do not compare (``1`` and ``"a"``), would fail inside numpy with a
    message about ``'<'``. The error names the label and its row instead.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, one class label per row; got shape {y.shape}")
    missing = np.asarray(pd.isna(y), dtype=bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"y holds {y[row]!r} at row {row}; class labels must not be missing (None or NaN)"
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"y holds {y[row]!r} at row {row}; class labels must be finite")
    if y.dtype == object:
        kinds = {type(v) for v in y.tolist()}
        try:
            np.unique(y)
        except TypeError:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(
                f"y mixes labels of types {names} that cannot be ordered; use labels of one "
                "type (e.g. all strings)"
            ) from None
    return y


class BaseAutoregressiveDensity(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of skar's density estimators; not used directly.

    Subclasses define ``__init__`` with their parameters (stored, never validated there) and
    :meth:`_build_network`. Everything else, from input checks to sampling, lives here.

    The training parameters shared by every estimator (:data:`SHARED_PARAMETERS`) are stored by
    :meth:`__init__`, validated by :data:`TRAINING_CONSTRAINTS` (and :data:`TABULAR_CONSTRAINTS`)
    and documented by one shared fragment: a line ``{shared_parameters}`` in an estimator's
    docstring becomes their paragraphs, with that estimator's defaults.
    """

    _parameter_constraints: dict = {**TRAINING_CONSTRAINTS, **TABULAR_CONSTRAINTS}

    def __init__(self, **shared: Any) -> None:
        """Store the shared training parameters (as :class:`sklearn.mixture._base.BaseMixture`).

        Subclasses keep an explicit signature (scikit-learn reads parameter names from it),
        store their own parameters, and call ``super().__init__(**shared_params(locals()))``.
        Nothing is validated here.
        """
        unknown = sorted(set(shared) - set(SHARED_PARAMETERS))
        if unknown:
            raise TypeError(f"{unknown} are not shared parameters; store them in the subclass")
        for name, value in shared.items():
            setattr(self, name, value)

    #: Parameters named like a shared one that mean something else for this estimator
    #: (WaveNet's ``quantization``, its bins): documented and constrained by the estimator.
    _own_parameters: tuple[str, ...] = ()

    #: Optimizer steps per epoch that ``batch_size="auto"`` aims at on small data
    #: (:func:`auto_batch_size`); 1 is ``min(200, n_samples)``.
    _auto_steps_per_epoch: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        doc = cls.__dict__.get("__doc__")
        if doc and _SHARED_MARKER in doc:
            lines = doc.splitlines()
            for i, line in enumerate(lines):
                if line.strip() == _SHARED_MARKER:
                    indent = line[: len(line) - len(line.lstrip())]
                    lines[i] = shared_parameters_doc(cls, indent)
            cls.__doc__ = "\n".join(lines) + ("\n" if doc.endswith("\n") else "")

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _build_network(
        self, schema: TabularSchema, conditionals: ColumnConditionals, seed: int
    ) -> nn.Module:
        """Build the model's :class:`AutoregressiveNetwork` for ``schema``.

        Called inside a seeded :func:`torch.random.fork_rng`, so weight initialisation is
        reproducible; ``seed`` seeds anything else (mask degrees, orderings).
        """

    def _initialize_network(
        self,
        network: nn.Module,
        conditionals: ColumnConditionals,
        Z: np.ndarray,
        sample_weight: np.ndarray,
        seed: int,
    ) -> None:
        """Set a data-dependent starting point before training (hook; the default keeps the
        random initialisation).

        ``Z`` and ``sample_weight`` are the encoded rows that training will use, without the
        rows held out for early stopping. Called inside the seeded block, after
        :meth:`_build_network`. An estimator with a marginal start (NADE's
        ``init_params="marginals"``) overrides it and calls
        :meth:`AutoregressiveNetwork.init_marginals`.
        """

    def _log_jacobian_rows(self, schema: TabularSchema, Z: np.ndarray) -> np.ndarray | None:
        """The part of ``log |dZ/dX|`` that varies between rows, shape ``(n, D)``, or ``None``
        (the default) when the schema's constant ``log_jacobian_per_feature`` is all of it.

        A quantised model whose bins have different widths (WaveNet's "linear" and "mu_law"
        codes) returns ``-log w`` of every code's bin. ``fit`` trains with it (so ``history_``
        is in the units of ``X``), and the scores add it.
        """
        return None

    def _fitted_attributes(self, schema: TabularSchema, network: nn.Module) -> dict[str, Any]:
        """Model-specific fitted attributes (name ending in ``_`` -> value), which ``fit``
        assigns with ``schema_`` and ``net_`` once training has succeeded (hook; none by
        default). Hooks return what they learn rather than setting it on ``self``."""
        return {}

    def _make_schema(self, X: Any) -> TabularSchema:
        """Learn the column schema of the training data (override for images or sequences,
        whose columns share one kind).

        The estimator's parameters named in :data:`SCHEMA_PARAMETERS` that it declares are
        handed to :meth:`skar.schema.TabularSchema.from_data`; the others keep its defaults.
        """
        params = self.get_params(deep=False)
        return TabularSchema.from_data(
            X, **{k: params[k] for k in SCHEMA_PARAMETERS if k in params}
        )

    def _families(self, schema: TabularSchema) -> list[ConditionalFamily]:
        """The conditional family of every column (override for other families).

        The estimator's parameters named in :data:`FAMILY_PARAMETERS` that it declares are
        handed to :meth:`skar.schema.TabularSchema.families`; the others keep its defaults.
        """
        params = self.get_params(deep=False)
        return schema.families(**{k: params[k] for k in FAMILY_PARAMETERS if k in params})

    def _sample_encoded(
        self, n_samples: int, generator: torch.Generator, context: Tensor | None = None
    ) -> Tensor:
        """Draw encoded rows; the generic loop unless a model has an exact faster one.

        ``context`` is passed (as a keyword) only by conditional models.
        """
        return sample_plain(self.net_.module_, n_samples, generator, context)

    def _make_net(self, module: nn.Module, **options: Any) -> Any:
        """The skorch net that trains ``module``: :func:`skar.training.build_net` with
        ``options`` (the fit settings), unless a subclass trains another way
        (:mod:`skar.accelerate` swaps in skorch's ``AccelerateMixin``)."""
        return build_net(module, **options)

    def _encode_context(self, y: Any, *, reset: bool) -> np.ndarray | None:
        """Turn ``y`` into the context array of a conditional model, or ``None``.

        The default ignores ``y``: the model is unconditional and nothing changes. A
        conditional model learns what it needs from ``y`` when ``reset`` is True (in ``fit``,
        storing fitted attributes such as ``classes_``), checks ``y`` against them otherwise,
        and returns one context row per sample (e.g. class codes), which reaches the network
        as ``forward(x, member, context=...)``. Called in ``fit``, ``score_samples`` and
        ``sample``, after ``X`` is checked; in ``fit`` before :meth:`_build_network`, which may
        therefore read what it stored (PixelCNN's class embedding needs ``classes_``).
        """
        return None

    def _is_conditional_model(self) -> bool:
        """Whether this class conditions on ``y`` (overrides :meth:`_encode_context`)."""
        return type(self)._encode_context is not BaseAutoregressiveDensity._encode_context

    def _context_rows(self, y: Any, n_samples: int, *, reset: bool) -> np.ndarray | None:
        """:meth:`_encode_context`, checked to give one row per sample."""
        context = self._encode_context(y, reset=reset)
        if context is not None and len(context) != n_samples:
            raise ValueError(
                f"y has {len(context)} entries, but X has {n_samples} rows; pass one label "
                "per row"
            )
        return context

    # ------------------------------------------------------------------ input checks
    def _check_X(self, X: Any, *, reset: bool) -> Any:
        """Check X is 2-D, non-empty, dense and of the fitted width; keep DataFrames as such."""
        return check_passthrough_X(self, X, reset=reset)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BaseAutoregressiveDensity:
        """Fit the density by maximum likelihood (minibatch Adam, driven by skorch).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows. Numeric arrays, or DataFrames mixing numeric, bool, category and
            string columns.
        y : array-like of shape (n_samples,), default=None
            The conditioning columns: a model that conditions (the tabular ones and the
            image ones; it overrides :meth:`_encode_context`) learns ``p(x | y)``, see
            :ref:`conditional`; the others ignore it.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights; the loss is the weighted mean NLL.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        saved = dict(self.__dict__)
        try:
            self._fit(X, sample_weight, y)
        except BaseException:
            # A failed fit leaves a previously fitted estimator exactly as it was.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _fit(self, X: Any, sample_weight: Any, y: Any = None) -> None:
        X = self._check_X(X, reset=True)
        schema = self._make_schema(X)
        Z = schema.encode(X)
        n = Z.shape[0]
        context = self._context_rows(y, n, reset=True)
        w = _normalized_weights(sample_weight, Z)
        if self.early_stopping:
            n_valid = math.ceil(n * self.validation_fraction)
            if n - n_valid < 1:
                raise ValueError(
                    f"early_stopping=True holds out validation_fraction="
                    f"{self.validation_fraction} of the rows, which leaves no training row "
                    f"with n_samples={n}; pass more rows or set early_stopping=False"
                )
        batch_size = (auto_batch_size(n, self._auto_steps_per_epoch)
                      if self.batch_size == "auto" else int(self.batch_size))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            # Seeds initialisation, shuffling and dropout; the caller's global RNG state is
            # restored when the block exits.
            torch.manual_seed(seed)
            conditionals = ColumnConditionals(self._families(schema))
            network = self._build_network(schema, conditionals, seed)
            module = DensityModule(network, conditionals)
            net = self._make_net(
                module,
                log_jacobian=schema.log_jacobian,
                learning_rate_init=self.learning_rate_init,
                alpha=self.alpha,
                max_iter=self.max_iter,
                batch_size=batch_size,
                early_stopping=self.early_stopping,
                validation_fraction=self.validation_fraction,
                n_iter_no_change=self.n_iter_no_change,
                tol=self.tol,
                **{k: getattr(self, k, v) for k, v in RECIPE_OFF.items()},
                seed=seed,
                verbose=self.verbose,
                device=device,
            )
            data = {"x": Z, "sample_weight": w.astype(np.float32)}
            if context is not None:
                data["context"] = context
            row_jacobian = self._log_jacobian_rows(schema, Z)
            if row_jacobian is not None:
                data["log_jacobian"] = row_jacobian.sum(1).astype(np.float32)
            # The rows skorch will train on (its seeded split is deterministic), so that an
            # initialisation fitted to the data never sees the validation rows.
            rows = np.arange(n)
            if self.early_stopping:
                train_ds, valid_ds = net.get_split_datasets(data)
                rows = np.asarray(train_ds.indices)
                _check_split_weights(w, rows, np.asarray(valid_ds.indices),
                                     self.validation_fraction)
            self._initialize_network(network, conditionals, Z[rows], w[rows], seed)
            net.fit(data, None)
        net.module_.eval()
        for name, value in self._fitted_attributes(schema, network).items():
            setattr(self, name, value)
        self.schema_ = schema
        self.net_ = net
        self.history_ = history_frame(net)
        # The run whose validation NLL chose the epochs: the first one when ``refit`` trained
        # again (its history has no validation column), else the only one.
        selection = getattr(net, "selection_history_", None)
        self.selection_history_ = (
            self.history_ if selection is None else history_frame(net, selection)
        )
        self.n_iter_ = len(net.history)
        self._inference_batch_size = max(batch_size, 1024)

    # ------------------------------------------------------------------ scoring
    def _encode(self, X: Any) -> np.ndarray:
        """Encoded rows (:meth:`_encode_masked` without the mask)."""
        return self._encode_masked(X)[0]

    def _encode_masked(self, X: Any, *, return_missing: bool = False) -> tuple:
        """Encoded rows and the mask of cells the model gives probability zero (None when
        there is none, so that scoring holds no (n, D) mask it does not need).

        With ``return_missing=True`` a third item, the mask of missing cells (NaN, None,
        ``pd.NA``; None when there is none), which are then no error: they hold a valid code
        (:meth:`skar.schema.TabularSchema.encode`). A model's own schema (images, sequences)
        has no missing cells: its NaN error stands.

        Cells beyond what the model represents (a continuous value whose standardised value is
        not finite in float32) are always in the mask: their rows score ``-inf``. A category
        not seen in fit, or a non-0/1 value in a binary column, raises the schema's error
        (naming column, row and value) unless ``handle_unknown='zero_probability'``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        accepted = inspect.signature(self.schema_.encode).parameters
        if "return_unknown" not in accepted:
            # A model's own schema (images, sequences) flags nothing: the NaN rule only.
            Z = self.schema_.encode(X)
            return (Z, None, None) if return_missing else (Z, None)
        missing = None
        if return_missing and "return_missing" in accepted:
            Z, unknown, missing = self.schema_.encode(X, return_unknown=True,
                                                      return_missing=True)
            missing = missing if missing.any() else None
        else:
            Z, unknown = self.schema_.encode(X, return_unknown=True)
        if not unknown.any():
            unknown = None
        elif getattr(self, "handle_unknown", "error") == "error":
            discrete = np.array([c.kind != "continuous" for c in self.schema_.columns])
            if unknown[:, discrete].any():
                # raises the message naming column, row and value
                self.schema_.encode(X, **({"return_missing": True} if missing is not None
                                          else {}))
        return (Z, unknown, missing) if return_missing else (Z, unknown)

    def _iter_batches(self, Z: np.ndarray, context: np.ndarray | None = None):
        """Yield ``(module, z, c)`` batches on the net's device; ``c`` is None without context."""
        module = self.net_.module_
        module.eval()
        device = self.net_.device
        bs = self._inference_batch_size
        with torch.no_grad():
            for start in range(0, Z.shape[0], bs):
                c = None
                if context is not None:
                    c = torch.as_tensor(context[start : start + bs], device=device)
                yield module, torch.as_tensor(Z[start : start + bs], device=device), c

    def _fill_batches(
        self, out: np.ndarray, fn: Any, Z: np.ndarray, context: np.ndarray | None
    ) -> None:
        """Write ``fn(module, z, c)`` of every batch into its rows of the preallocated ``out``.

        One result array filled in place, rather than a list of per-batch arrays joined at the
        end: the list keeps thousands of small buffers alive between the freed activations of
        later batches, which fragments the heap (scoring 10^6 rows of 8 columns raised the peak
        resident memory by 465 MiB that way, by 46 MiB this way; ``benchmarks/memory/run.py``).
        """
        start = 0
        for module, z, c in self._iter_batches(Z, context):
            stop = start + z.shape[0]
            out[start:stop] = fn(module, z, c).double().cpu().numpy()
            start = stop

    def score_samples(self, X: Any, y: Any = None) -> np.ndarray:
        """Log density of every row, natural log, in the units of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            With a model fitted with ``y``, ``log p(x | y)`` (without it, the mixture over
            the training labels where the model offers one); a model fitted without ``y``
            that conditions refuses one (it models ``p(x)``); the others ignore it.

        Returns
        -------
        log_density : ndarray of shape (n_samples,), float64
            ``log p(x)``: a log-probability for discrete columns plus a log density for
            continuous ones (per unit of each continuous column as the user measures it), so
            it is directly comparable with :meth:`sklearn.neighbors.KernelDensity.score_samples`
            on the same columns. Rows are scored in batches, so memory stays bounded.

            A row with missing cells (NaN, None, ``pd.NA``) gets the log *marginal* density
            of its observed cells, :math:`\\log p(x_o)` (the log|Jacobian| of its observed
            continuous cells only): exact when the model's ordering puts the missing columns
            after the observed ones or when the missing cells are few discrete ones, else an
            importance-sampling estimate with fixed draws (:mod:`skar.missing`;
            :func:`skar.missing.marginal_score_samples` says which rows are exact and gives
            the estimates' standard errors).
        """
        Z, unknown, missing = self._encode_masked(X, return_missing=True)
        context = self._context_rows(y, Z.shape[0], reset=False)
        out = np.empty(Z.shape[0], dtype=np.float64)
        self._fill_batches(out, lambda module, z, c: module(z, context=c), Z, context)
        out += self.schema_.log_jacobian
        row_jacobian = self._log_jacobian_rows(self.schema_, Z)
        if row_jacobian is not None:
            out += row_jacobian.sum(1)
        # Defined values, never NaN for finite input: a row with a cell of probability zero
        # or beyond float32 is -inf, and so is a finite row whose log density the float32
        # network could not compute (an activation overflowed: NaN).
        bad = np.isnan(out)
        if unknown is not None:
            bad |= unknown.any(axis=1)
        out[bad] = -np.inf
        if missing is not None:
            out[missing.any(axis=1)] = self._marginal_rows(Z, unknown, missing, context)["score"]
        return out

    def _marginal_rows(self, Z: np.ndarray, unknown: np.ndarray | None, missing: np.ndarray,
                       context: np.ndarray | None, per_feature: bool = False) -> dict:
        """:mod:`skar.missing`'s marginal scores of the rows with missing cells."""
        from . import missing as skar_missing

        rows = missing.any(axis=1)
        return skar_missing._marginal(
            self, Z[rows], np.zeros_like(missing[rows]) if unknown is None else unknown[rows],
            missing[rows], None if context is None else context[rows],
            n_draws=skar_missing.N_DRAWS, max_completions=skar_missing.MAX_COMPLETIONS,
            generator=skar_missing._generator(self, skar_missing.SCORE_SEED),
            per_feature=per_feature,
        )

    def score_samples_per_feature(self, X: Any, y: Any = None) -> np.ndarray:
        """Each column's conditional log density ``log p(x_d | x_<d)``, in the units of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            As in :meth:`score_samples`.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
            Column ``d`` holds ``log p(x_d | x_{o_<i})`` where ``d = o_i`` in the model's
            ordering; each row sums to :meth:`score_samples`. A column that is improbable
            given the columns before it stands out with a very negative entry. In a row with
            missing cells, those are NaN and an observed column holds its conditional given
            the *observed* columns before it, ``log p(x_o<=d) - log p(x_o<d)``, so the row
            still sums (over its observed cells) to :meth:`score_samples`; exact or estimated
            as the row's score is.

        Raises
        ------
        ValueError
            For an ensemble of several orderings or masks: the ensemble's density is a
            mixture, whose log does not split into per-column terms.
        """
        Z, unknown, missing = self._encode_masked(X, return_missing=True)
        context = self._context_rows(y, Z.shape[0], reset=False)
        if self.net_.module_.network.n_members != 1:
            raise ValueError(
                "score_samples_per_feature needs a single ordering; this model averages "
                f"{self.net_.module_.network.n_members} orderings or masks, whose mixture "
                "density has no per-column decomposition"
            )
        out = np.empty((Z.shape[0], self.net_.module_.conditionals.n_features), np.float64)
        self._fill_batches(
            out, lambda module, z, c: module.log_prob_per_feature(z, 0, c), Z, context
        )
        out += self.schema_.log_jacobian_per_feature
        row_jacobian = self._log_jacobian_rows(self.schema_, Z)
        if row_jacobian is not None:
            out += row_jacobian
        # The unknown cell is the -inf term; the other columns are scored with the valid code
        # the schema put in its place. NaN (network overflow) counts as -inf too.
        bad = np.isnan(out)
        if unknown is not None:
            bad |= unknown
        out[bad] = -np.inf
        if missing is not None:
            rows = missing.any(axis=1)
            out[rows] = self._marginal_rows(Z, unknown, missing, context, True)["per_feature"]
        return out

    def score(self, X: Any, y: Any = None) -> float:
        """Total log-likelihood of ``X`` under the model (as ``KernelDensity.score``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            As in :meth:`score_samples`: a model fitted with ``y`` scores ``log p(x | y)``.

        Returns
        -------
        logprob : float
            ``sum_n log p(x_n)``: higher is better, so ``GridSearchCV`` needs no scorer.
        """
        return float(np.sum(self.score_samples(X, y)))

    # ------------------------------------------------------------------ sampling
    def sample(self, n_samples: int = 1, random_state: Any = None, y: Any = None) -> Any:
        """Draw rows from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw. ``None`` uses the estimator's ``random_state``, so an estimator
            built with an integer ``random_state`` samples the same rows every call (as
            :meth:`sklearn.mixture.GaussianMixture.sample`).
        y : scalar or array-like of shape (n_samples,), default=None
            A model fitted with ``y`` draws from ``p(x | y)`` (a scalar gives every row the
            same label; without ``y``, labels are drawn as in training where the model
            offers it); the others ignore it.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            In the user's kinds: 0/1, category labels, floats in user units; a DataFrame with
            the fitted columns and dtypes when the model was fitted on a DataFrame.
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, (bool, np.bool_))
            or not isinstance(n_samples, (Integral, np.integer))
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
        if y is not None and np.ndim(y) == 0:
            y = [y] * n_samples
        context = self._context_rows(y, n_samples, reset=False)
        rs = self.random_state if random_state is None else random_state
        seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        self.net_.module_.eval()
        chunks = []
        for start in range(0, n_samples, self._inference_batch_size):
            m = min(self._inference_batch_size, n_samples - start)
            with torch.no_grad():
                if context is None:
                    draw = self._sample_encoded(m, generator)
                else:
                    c = torch.as_tensor(context[start : start + m], device=self.net_.device)
                    draw = self._sample_encoded(m, generator, context=c)
                chunks.append(draw.cpu().numpy())
        return self.schema_.decode(np.concatenate(chunks))

    # ------------------------------------------------------------------ missing cells
    def sample_conditional(self, X: Any, n_draws: int = 1, random_state: Any = None,
                           y: Any = None, **kwargs: Any) -> Any:
        """Draws of every row's missing cells given its observed cells.

        See :func:`skar.missing.sample_conditional` (``kwargs``: ``n_proposals``,
        ``max_completions``, ``return_info``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows with missing cells (NaN, None, ``pd.NA``).
        n_draws : int, default=1
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.
        y : array-like, default=None
            The context of a conditional model.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_features), or DataFrame
            ``X`` filled once per draw (a DataFrame indexed by ``(draw, index)`` for a
            DataFrame).
        """
        from .missing import sample_conditional

        return sample_conditional(self, X, n_draws, random_state, y=y, **kwargs)

    def impute(self, X: Any, n_draws: int = 100, random_state: Any = None, y: Any = None,
               **kwargs: Any) -> Any:
        """Fill the missing cells of ``X`` from the conditional ``p(x_missing | x_observed)``.

        See :func:`skar.missing.impute` (``kwargs``: ``strategy``, ``n_proposals``,
        ``max_completions``): continuous cells get the mean of ``n_draws`` conditional draws,
        discrete cells the most frequent draw.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        n_draws : int, default=100
        random_state : int, RandomState instance or None, default=None
        y : array-like, default=None
            The context of a conditional model.

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
        """
        from .missing import impute

        return impute(self, X, n_draws, random_state, y=y, **kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # fit needs complete rows (scoring, impute and sample_conditional accept NaN)
        tags.input_tags.allow_nan = False
        tags.input_tags.categorical = True
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags
