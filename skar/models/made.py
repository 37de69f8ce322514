"""MADE: Masked Autoencoder for Distribution Estimation (Germain, Gregor, Murray & Larochelle,
ICML 2015), with FVSBN as its zero-hidden-layer case.

An MLP becomes autoregressive by masking its weights. Every unit gets a *degree*: input units of
the column at position ``i`` of the ordering get degree ``i`` (1-based; a categorical column's
one-hot units share one degree), hidden units get degrees ``m^l(k)`` drawn from
``{min_k' m^{l-1}(k'), ..., D-1}``, and the output units of the column at position ``i`` get
degree ``i``. The masks are

.. math::

    M^{l}_{k,k'} = [m^{l}(k) \\ge m^{l-1}(k')], \\qquad
    M^{\\text{out}}_{d,k} = [i(d) > m^{L}(k)], \\qquad
    M^{\\text{direct}}_{d,j} = [i(d) > i(j)],

so the output for the column at position ``i`` is a function of the columns at positions
``< i`` only, and one forward pass gives every conditional ``p(x_{o_i} | x_{o_<i})``.

With ``hidden_layer_sizes=()`` only the direct connections remain: every conditional is a
logistic (or softmax, or mixture) regression on the preceding columns. For binary columns that
is exactly the fully visible sigmoid belief net (FVSBN, Frey 1998):
``p(x_i = 1 | x_<i) = sigmoid(b_i + sum_{j<i} W_ij x_j)``.

Order- and connectivity-agnostic training (``n_orderings > 1``) draws one of ``n_orderings`` fixed
(ordering, degrees) sets per minibatch; scoring averages the masks' probabilities.

**Conditioning** (``fit(X, y)``, :math:`p(x \\mid y)`): the context units ``c`` of ``y``
(:class:`skar.nn.ConditionalTabularMixin`) reach every hidden unit and every output through
unmasked weights,

.. math::

    h^{l} = g\\left((W^{l} \\odot M^{l}) h^{l-1} + b^{l} + U^{l} c\\right), \\qquad
    \\theta = (W^{\\text{out}} \\odot M^{\\text{out}}) h^{L} + b + U^{\\text{out}} c + \\dots,

the conditional MADE of Papamakarios, Pavlakou & Murray (Masked Autoregressive Flow, NeurIPS
2017): ``c`` is not an input of the chain, so the masks, and the autoregressive property in
``x``, are unchanged.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from torch import Tensor, nn

from ..base import (
    MIXTURE_CONSTRAINTS,
    ORDERING_CONSTRAINTS,
    RECIPE_CONSTRAINTS,
    BaseAutoregressiveDensity,
    make_orderings,
    shared_params,
    start_at_marginals,
    user_stacklevel,
)
from ..distributions import ColumnConditionals
from ..nn import ConditionalTabularMixin, MaskedLinear, OrderedNetwork, OrderingEnsemble
from ..schema import OneHotInputs, TabularSchema

__all__ = ["MADE", "MADEDensity"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


class MADE(OrderedNetwork):
    """The masked MLP (a torch module).

    Parameters
    ----------
    input_sizes : list of int
        Input units per column (K for a categorical column, else 1).
    kinds : list of str
        Column kinds (see :mod:`skar.schema`).
    output_sizes : list of int
        Conditional parameters per column (``family.n_params``).
    hidden_layer_sizes : tuple of int
        Width of each hidden layer; ``()`` gives FVSBN-style direct regressions.
    n_masks : int
        Number of (ordering, degrees) sets in the ensemble.
    order : "natural", "random" or array of int
    direct_connections : bool
        Add masked input-to-output weights (always on without hidden layers).
    activation : str
    seed : int
        Seeds the orderings, the hidden degrees and the per-minibatch mask draws.
    context_sizes : list of int or None, default=None
        Units of every column of the conditioning ``y``
        (:meth:`skar.nn.ConditionalTabularMixin._context_sizes`); None for an unconditional
        network, which then has no context weights at all.

    Attributes
    ----------
    ensemble : skar.nn.OrderingEnsemble
        The ``n_masks`` orderings (``orderings[k]`` is mask ``k``'s generation order) and the
        per-minibatch mask draws.
    hidden, output, direct : skar.nn.MaskedLinear
        The masked layers; ``layer.mask[k]`` is mask ``k``'s connectivity.
    context_hidden : torch.nn.ModuleList of torch.nn.Linear, or None
        ``U^l``: the context into every hidden layer, zero at the start (conditional networks
        only).
    context_output : torch.nn.Linear or None
        ``U^out``: the context into every output, zero at the start (conditional networks
        only).
    """

    def __init__(
        self,
        input_sizes: list[int],
        kinds: list[str],
        output_sizes: list[int],
        hidden_layer_sizes: tuple[int, ...] = (128,),
        n_masks: int = 1,
        order: Any = "natural",
        direct_connections: bool = True,
        activation: str = "relu",
        seed: int = 0,
        context_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        D = len(input_sizes)
        rng = np.random.default_rng(seed)
        self.inputs = OneHotInputs(input_sizes, kinds)
        n_in, n_out = self.inputs.n_units, int(sum(output_sizes))

        # The draws keep their order: orderings, the hidden degrees of every mask, then the
        # seed of the per-minibatch member draws.
        orderings = make_orderings(D, n_masks, order, rng)
        col_in = self.inputs.column_of_unit.numpy()
        col_out = np.repeat(np.arange(D), output_sizes)
        masks: list[list[np.ndarray]] = [[] for _ in range(len(hidden_layer_sizes) + 2)]
        for k in range(n_masks):
            position = np.empty(D, dtype=np.int64)
            position[orderings[k]] = np.arange(1, D + 1)  # 1-based place of each column
            deg_in, deg_out = position[col_in], position[col_out]
            prev = deg_in
            for li, width in enumerate(hidden_layer_sizes):
                low = min(int(prev.min()), D - 1)
                deg = rng.integers(low, D, size=width)  # uniform on {low, ..., D-1}
                masks[li].append(deg[:, None] >= prev[None, :])
                prev = deg
            masks[-2].append(deg_out[:, None] > prev[None, :])  # last hidden -> output
            masks[-1].append(deg_out[:, None] > deg_in[None, :])  # direct
        self.ensemble = OrderingEnsemble(orderings, rng)

        sizes = [n_in, *hidden_layer_sizes, n_out]
        self.hidden = nn.ModuleList(
            MaskedLinear(sizes[i], sizes[i + 1], np.stack(masks[i]))
            for i in range(len(hidden_layer_sizes))
        )
        self.output = (MaskedLinear(sizes[-2], n_out, np.stack(masks[-2]))
                       if hidden_layer_sizes else None)
        use_direct = direct_connections or not hidden_layer_sizes
        self.direct = (MaskedLinear(n_in, n_out, np.stack(masks[-1]), bias=not hidden_layer_sizes)
                       if use_direct else None)
        self.activation = _ACTIVATIONS[activation]()

        # Created last, and only with y: an unconditional network draws exactly what it drew
        # before conditioning existed.
        self.context_hidden = self.context_output = None
        if context_sizes is not None:
            n_ctx = int(sum(context_sizes))
            self.context_hidden = nn.ModuleList(
                nn.Linear(n_ctx, width, bias=False) for width in hidden_layer_sizes
            )
            self.context_output = nn.Linear(n_ctx, n_out, bias=False)
            # Zero: training starts from the unconditional network (and a marginal start
            # stays one) and lets y in only as far as it helps. A default (Kaiming) start
            # gave one standardised y column weights up to 1 into every hidden unit and
            # overfitted: red wine given quality, held-out -0.82 and -0.72 nats against
            # -0.07 and -0.24 from zero (two seeds; the unconditional fit: -0.25).
            for layer in (*self.context_hidden, self.context_output):
                nn.init.zeros_(layer.weight)

    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """The last layer's biases to ``theta0`` and the weights into the parameters flagged
        ``independent`` to zero, in the output and the direct layer alike (see
        :meth:`skar.base.AutoregressiveNetwork.init_marginals`). Without hidden layers the
        direct layer holds the bias."""
        last = self.output if self.output is not None else self.direct
        last.bias.copy_(theta0.to(last.bias))
        for layer in (self.output, self.direct):
            if layer is not None:
                layer.weight[independent.to(layer.weight.device)] = 0.0

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_params)`` conditional parameters; ``context``
        ``(B, U)`` is required by a conditional network and refused by another."""
        return self.forward_units(self.inputs(x), member, context)

    def forward_units(
        self, h0: Tensor, member: int = 0, context: Tensor | None = None
    ) -> Tensor:
        """The masked MLP on input units ``(B, n_in)`` (one-hot already expanded)."""
        if (context is None) != (self.context_output is None):
            raise ValueError(
                "this MADE was built "
                + ("with" if self.context_output is not None else "without")
                + " context layers; pass context exactly when it has them"
            )
        h = h0
        for li, layer in enumerate(self.hidden):
            a = layer(h, member)
            if context is not None:
                a = a + self.context_hidden[li](context.to(a.dtype))
            h = self.activation(a)
        out = 0.0
        if self.output is not None:
            out = self.output(h, member)
        if self.direct is not None:
            out = out + self.direct(h0, member)
        if context is not None:
            out = out + self.context_output(context.to(h0.dtype))
        return out  # (B, n_params)


class MADEDensity(ConditionalTabularMixin, BaseAutoregressiveDensity):
    """Density estimation with a masked autoencoder (MADE), for any mix of column kinds.

    ``fit(X)`` learns ``p(x)``; ``fit(X, y)`` learns the conditional density ``p(x | y)``, with
    ``y`` (one or several columns, numeric or categorical) fed to every hidden unit
    (:class:`skar.nn.ConditionalTabularMixin` says how ``y`` is encoded, scored and sampled).
    Each conditional ``p(x_{o_i} | x_{o_<i})`` is a Bernoulli (binary columns), a Categorical
    (categorical columns) or a mixture of ``n_components`` Gaussians (continuous columns),
    whose parameters come from one masked MLP in one forward pass (Germain et al. 2015).
    ``hidden_layer_sizes=()`` is the fully visible sigmoid belief net (FVSBN) and its
    softmax/mixture generalisation. Training costs one MLP pass per row; scoring costs one
    pass per mask; sampling costs D passes.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(128,)
        Width of each hidden layer. ``()`` gives FVSBN.
    n_components : int, default=5
        Mixture components of each continuous column's conditional.
    component : {"gaussian", "laplace", "logistic"}, default="logistic"
        Mixture component family of continuous columns. The logistic (the default, chosen by
        ``benchmarks/defaults/select_component.py``) has the Gaussian's smooth mode and the
        Laplace's linear tails, so one unusual value costs nats in proportion to its
        distance, not its square.
    n_orderings : int, default=1
        Size of the ensemble of masks (the name every estimator gives its ensemble size, so
        one grid serves all): each member has its own connectivity, and with
        ``order="random"`` its own ordering. With more than one, each minibatch trains one
        mask drawn at random, and ``score_samples`` averages the masks' probabilities (the
        mask ensemble of Germain et al. 2015).
    order : {"natural", "random"} or array-like of int, default="natural"
        Column ordering: the columns' own order, an independent random permutation per mask,
        or a given permutation.
    n_masks : int, default="deprecated"
        Deprecated name of ``n_orderings``; passing it raises a FutureWarning.
    direct_connections : bool, default=True
        Masked weights from the inputs straight to the outputs, as in the MADE paper.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden-unit activation.
    init_params : {"marginals", "random"}, default="marginals"
        ``"marginals"`` starts every conditional at its column's fitted marginal (the output
        biases at the marginals' parameters, the output weights of continuous columns at
        zero), so training starts from the product of the marginals, as NADE and RNADE do;
        ``"random"`` keeps the random initialisation.
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.
    schema_ : skar.schema.TabularSchema
        Kinds, categories and scaling of the columns.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per row, units of X) and duration.
    n_iter_ : int
        Number of epochs run.
    context_schema_ : skar.schema.TabularSchema
        Kinds, categories and scaling of the columns of ``y`` (only when fitted with ``y``).
    context_values_ : DataFrame
        The distinct training rows of ``y``, in order of first appearance (only when fitted
        with at most ``max_marginal_contexts`` of them).
    context_prior_ : ndarray
        Their frequencies in the training ``y``.

    See Also
    --------
    sklearn.neighbors.KernelDensity : Kernel density estimation.
    sklearn.mixture.GaussianMixture : Gaussian mixture models.

    References
    ----------
    M. Germain, K. Gregor, I. Murray and H. Larochelle. MADE: Masked Autoencoder for
    Distribution Estimation. ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import MADEDensity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 2))
    >>> est = MADEDensity(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 2)

    Conditioned on a label:

    >>> y = np.where(X[:, 0] > 0, "right", "left")
    >>> cond = MADEDensity(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    >>> cond.score_samples(X[:3], y[:3]).shape
    (3,)
    >>> cond.sample(2, y="right", random_state=0).shape
    (2, 2)
    """

    # benchmarks/defaults/select_batch.py: about ten steps per epoch on small data.
    _auto_steps_per_epoch = 10

    _parameter_constraints: dict = {
        **BaseAutoregressiveDensity._parameter_constraints,
        **RECIPE_CONSTRAINTS,
        "init_params": [StrOptions({"marginals", "random"})],
        **MIXTURE_CONSTRAINTS,
        "hidden_layer_sizes": ["array-like"],
        **ORDERING_CONSTRAINTS,
        "n_masks": [Interval(Integral, 1, None, closed="left"), Hidden(StrOptions({"deprecated"}))],
        "direct_connections": ["boolean"],
        "activation": [StrOptions(set(_ACTIVATIONS))],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (128,),
        *,
        n_components: int = 5,
        component: str = "logistic",
        n_orderings: int = 1,
        order: Any = "natural",
        n_masks: Any = "deprecated",
        direct_connections: bool = True,
        activation: str = "relu",
        init_params: str = "marginals",
        categorical_features: Any = None,
        feature_types: Any = None,
        quantization: Any = "auto",
        point_masses: str | None = "auto",
        min_scale: float = 1e-3,
        handle_unknown: str = "zero_probability",
        quantized_samples: str = "grid",
        batch_size: Any = "auto",
        learning_rate_init: float = 1e-2,
        max_iter: int = 200,
        alpha: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        lr_schedule: str | None = "cosine",
        average_weights: float = 0.99,
        patience_fraction: float = 0.5,
        refit: bool = True,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.component = component
        self.n_orderings = n_orderings
        self.order = order
        self.n_masks = n_masks
        self.direct_connections = direct_connections
        self.activation = activation
        self.init_params = init_params
        super().__init__(**shared_params(locals()))

    def _ensemble_size(self) -> int:
        """``n_orderings``, or the deprecated ``n_masks`` when it is passed (with a warning)."""
        if isinstance(self.n_masks, str) and self.n_masks == "deprecated":
            return self.n_orderings
        if self.n_orderings != 1:
            raise ValueError(
                f"n_masks={self.n_masks} and n_orderings={self.n_orderings} name the same "
                "thing; pass only n_orderings"
            )
        warnings.warn(
            "n_masks was renamed n_orderings (the ensemble size of every skar estimator); "
            "n_masks will be removed in a future release",
            FutureWarning,
            stacklevel=user_stacklevel(),
        )
        return self.n_masks

    def _initialize_network(
        self,
        network: nn.Module,
        conditionals: ColumnConditionals,
        Z: np.ndarray,
        sample_weight: np.ndarray,
        seed: int,
    ) -> None:
        """With ``init_params="marginals"``, start at the product of the fitted marginals
        (:func:`skar.base.start_at_marginals`)."""
        if self.init_params == "marginals":
            start_at_marginals(network, conditionals, Z, sample_weight, seed)

    def _build_network(
        self, schema: TabularSchema, conditionals: ColumnConditionals, seed: int
    ) -> MADE:
        hidden = np.asarray(self.hidden_layer_sizes).reshape(-1)
        if hidden.size and (hidden.dtype.kind not in "iu" or (hidden < 1).any()):
            raise ValueError(
                "hidden_layer_sizes must hold positive integers (or be empty for FVSBN); "
                f"got {self.hidden_layer_sizes!r}"
            )
        return MADE(
            input_sizes=schema.input_sizes,
            kinds=schema.kinds,
            output_sizes=[f.n_params for f in conditionals.families],
            hidden_layer_sizes=tuple(int(h) for h in hidden),
            n_masks=self._ensemble_size(),
            order=self.order,
            direct_connections=self.direct_connections,
            activation=self.activation,
            seed=seed,
            context_sizes=self._context_sizes(),
        )
