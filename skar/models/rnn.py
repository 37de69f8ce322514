"""RNN: a recurrent network (LSTM or GRU) over the columns of a row (char-RNN, Graves 2013;
Karpathy 2015; the LSTM of Hochreiter & Schmidhuber 1997, the GRU of Cho et al. 2014), with a
stateful sampler that carries the hidden state.

The D columns of a row, taken in an ordering ``o``, are a sequence of D steps. The input of
step ``i`` is the embedding of the value *before* it plus the embedding of the column it
predicts,

.. math::

    u_0 = s + Q_{o_0}, \\qquad
    u_i = E_{o_{i-1}}(x_{o_{i-1}}) + Q_{o_i} \\quad (1 \\le i < D),

with ``s`` a learned start token, ``E_d`` the value embedding of column ``d`` (a lookup table
for binary and categorical codes, ``x w_d + b_d`` for a standardised continuous value) and
``Q_d`` a learned embedding of the column to predict (it tells a step which column comes next
when several orderings share the weights; it starts at zero). A stack of ``L`` recurrent layers
carries the state,

.. math::

    (h^l_i, c^l_i) = \\mathrm{LSTM}_l\\left(h^{l-1}_i, (h^l_{i-1}, c^l_{i-1})\\right),
    \\qquad h^0_i = u_i, \\quad (h^l_{-1}, c^l_{-1}) = (0, 0),

(or a GRU, whose state is ``h`` alone), and the parameters of column ``o_i`` are a linear head
on ``h^L_i``. Step ``i`` sees ``x_{o_0}, ..., x_{o_{i-1}}`` and nothing else (the recurrence
runs forward in the ordering and the inputs are shifted by one), so one teacher-forced pass
gives every conditional ``p(x_{o_i} | x_{o_<i})``.

**Tied columns** (``tie_columns=True``): columns of the same kind and the same categories
share one value embedding and one output head. A sequence whose every position is a symbol of
one alphabet (a window of text) is then modelled by one conditional applied at every step, as
in char-RNN, rather than by one head per position.

**Stateful sampling.** At generation step ``i`` the state ``(h_{i-1}, c_{i-1})`` already
summarises every earlier value, so the sampler runs one cell step per position from the
carried state: ``O(D)`` cell steps per row, instead of the ``D`` full passes of ``O(D)`` steps
each (``O(D^2)``) of the plain loop.

With ``n_orderings > 1`` the weights are shared by several orderings (order-agnostic training,
Uria et al. 2014): each minibatch trains one ordering, and scoring averages the orderings'
probabilities.

References
----------
S. Hochreiter and J. Schmidhuber. Long Short-Term Memory. Neural Computation 9(8), 1997.

K. Cho et al. Learning Phrase Representations using RNN Encoder-Decoder for Statistical
Machine Translation. EMNLP 2014.

A. Graves. Generating Sequences With Recurrent Neural Networks. arXiv:1308.0850, 2013.

A. Karpathy. The Unreasonable Effectiveness of Recurrent Neural Networks (char-rnn), 2015.

B. Uria, I. Murray and H. Larochelle. A Deep and Tractable Density Estimator. ICML 2014.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor, nn

from ..base import (
    MIXTURE_CONSTRAINTS,
    ORDERING_CONSTRAINTS,
    RECIPE_CONSTRAINTS,
    BaseAutoregressiveDensity,
    DensityModule,
    make_orderings,
    shared_params,
)
from ..distributions import ColumnConditionals
from ..nn import (
    ColumnHeads,
    ConditionalTabularMixin,
    OrderedNetwork,
    OrderingEnsemble,
    ValueEmbedding,
    sample_stepwise,
    shift_right,
    tie_keys_of,
)
from ..schema import TabularSchema

__all__ = ["RNN", "RNNDensity", "sample_stateful"]


class RNN(OrderedNetwork):
    """The recurrent network over the columns of a row (a torch module).

    Parameters
    ----------
    input_sizes, kinds : list
        Every column's number of categories and kind, for its value embedding
        (:class:`skar.nn.ValueEmbedding`).
    output_sizes : list of int
        Every column's number of conditional parameters, for its head
        (:class:`skar.nn.ColumnHeads`).
    tie_keys : list of hashable or None
        Columns with equal keys share their value embedding and (with equal output sizes)
        their head; None: none share (:func:`skar.nn.tie_keys_of` ties a sequence's positions).
    cell : {"lstm", "gru"}
    hidden_size : int
        Width ``H`` of the recurrent state, and of the input embeddings.
    n_layers : int
        Stacked recurrent layers.
    dropout : float
        Dropout on the inputs, between recurrent layers and before the heads (training only).
    n_orderings : int
        Number of orderings sharing the weights.
    order : "natural", "random" or array of int
    seed : int
        Seeds the orderings and the per-minibatch ordering draws.
    context_sizes : list of int or None, default=None
        Units of every column of the conditioning ``y``; None for an unconditional network,
        which then has no ``context`` layer and starts from the zero state.

    Attributes
    ----------
    embedding : skar.nn.ValueEmbedding
        The value embeddings ``E_d``.
    context : torch.nn.Linear or None
        The initial state from ``y``: every layer's ``h_0 = tanh(A_l u_y + a_l)`` (an LSTM's
        cell state starts at zero); conditional networks only.
    heads : skar.nn.ColumnHeads
        The output heads.
    ensemble : skar.nn.OrderingEnsemble
        The orderings sharing the weights (``orderings[k]``, ``positions[k, d]``) and the
        per-minibatch ordering draws.
    """

    def __init__(
        self,
        input_sizes: Sequence[int],
        kinds: Sequence[str],
        output_sizes: Sequence[int],
        *,
        tie_keys: Sequence[Hashable] | None = None,
        cell: str = "lstm",
        hidden_size: int = 64,
        n_layers: int = 1,
        dropout: float = 0.0,
        n_orderings: int = 1,
        order: Any = "natural",
        seed: int = 0,
        context_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        D = len(kinds)
        H = int(hidden_size)
        self.n_features = D
        self.hidden_size = H
        self.cell = cell
        self.embedding = ValueEmbedding(kinds, input_sizes, H, tie_keys)
        self.start = nn.Parameter(torch.randn(H))
        self.wqe = nn.Embedding(D, H)  # the column predicted at step i
        nn.init.zeros_(self.wqe.weight)
        self.drop = nn.Dropout(dropout)
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        # torch warns about inter-layer dropout on a single layer; it has no effect there.
        self.rnn = rnn_cls(H, H, num_layers=n_layers, batch_first=True,
                           dropout=dropout if n_layers > 1 else 0.0)
        if cell == "lstm":
            # Forget gates start open (bias 1, Jozefowicz et al. 2015), so the state carries
            # information across many steps from the first minibatch.
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[H : 2 * H].fill_(1.0)
                elif name.startswith("bias_hh"):
                    with torch.no_grad():
                        p[H : 2 * H].zero_()
        self.heads = ColumnHeads(list(output_sizes), H, init=False, exact=False,
                                 tie_keys=tie_keys)
        self.heads.uniform_(1.0 / math.sqrt(H))
        rng = np.random.default_rng(seed)
        self.ensemble = OrderingEnsemble(make_orderings(D, n_orderings, order, rng, distinct=True),
                                         rng)
        # Created last, and only with y: an unconditional network draws what it drew before.
        self.context = (None if context_sizes is None
                        else nn.Linear(int(sum(context_sizes)), n_layers * H))

    def initial_state(self, context: Tensor | None) -> list | None:
        """The state before step 0: None (zeros) without a context, else every layer's
        ``h_0 = tanh(A_l u_y + a_l)`` (with a zero cell state for an LSTM), in the per-layer
        form of :meth:`cell_step`."""
        if (context is None) != (self.context is None):
            raise ValueError(
                "this RNN was built " + ("with" if self.context is not None else "without")
                + " an initial state from y; pass context exactly when it has one"
            )
        if context is None:
            return None
        h0 = torch.tanh(self.context(context.to(self.start.dtype)))  # (B, L H)
        hs = list(h0.split(self.hidden_size, dim=1))  # L x (B, H)
        if self.cell == "lstm":
            return [(h, torch.zeros_like(h)) for h in hs]
        return hs

    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Start the heads at the marginals (:meth:`skar.nn.ColumnHeads.init_marginals`; a
        ValueError when columns share a head)."""
        self.heads.init_marginals(theta0, independent)

    # ------------------------------------------------------------------ one parallel pass
    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_params)`` conditional parameters."""
        return self.forward_embeddings(self.embedding(x), member, context)

    def forward_embeddings(
        self, e: Tensor, member: int = 0, context: Tensor | None = None
    ) -> Tensor:
        """The recurrence on value embeddings ``(B, D, H)`` (column order) -> ``(B, n_params)``.

        Split from :meth:`forward` so tests can differentiate with respect to the embeddings
        of discrete columns, whose codes have no gradient.
        """
        o = self.orderings[member]  # (D,)
        # Shift by one: step i reads the value at step i-1, step 0 the start token.
        u = self.drop(shift_right(e[:, o], self.start) + self.wqe(o))  # (B, D, H), step order
        state = self.initial_state(context)
        if state is None:
            h, _ = self.rnn(u)  # (B, D, H), step order
        elif self.cell == "lstm":
            h, _ = self.rnn(u, (torch.stack([s[0] for s in state]),
                                torch.stack([s[1] for s in state])))  # (L, B, H) each
        else:
            h, _ = self.rnn(u, torch.stack(state))  # (L, B, H)
        return self.heads.all_columns(self.drop(h)[:, self.positions[member]])  # column order

    # ------------------------------------------------------------------ one recurrent step
    def cell_step(self, u: Tensor, state: list | None) -> tuple[Tensor, list]:
        """One step of the stacked recurrence: ``(B, H)`` input -> ``(B, H)`` top output.

        The cell equations of :class:`torch.nn.LSTM` and :class:`torch.nn.GRU`, written out on
        their own weights (gate order ``i, f, g, o`` and ``r, z, n``):

        .. math::

            \\text{LSTM: } & c' = \\sigma(f) \\odot c + \\sigma(i) \\odot \\tanh(g), \\quad
            h' = \\sigma(o) \\odot \\tanh(c'), \\\\
            \\text{GRU: } & n = \\tanh(W_{in} u + b_{in} + r \\odot (W_{hn} h + b_{hn})), \\quad
            h' = (1 - z) \\odot n + z \\odot h.

        Calling the module itself on a length-1 input computes the same, but pays a fixed
        cost per call on the CPU (measured on a shared 2-core machine, one row, ``H = 256``:
        about 3 ms per call, against 0.4 ms for these matrix products), which the sampler
        would pay ``D`` times per row.

        Parameters
        ----------
        u : Tensor of shape (B, H)
        state : list or None
            Per layer ``(h, c)`` (LSTM) or ``h`` (GRU), each ``(B, H)``; None is zeros.

        Returns
        -------
        h : Tensor of shape (B, H)
            The top layer's output.
        state : list
            The new state.
        """
        rnn = self.rnn
        if state is None:
            zero = u.new_zeros(u.shape[0], self.hidden_size)
            state = [(zero, zero) if self.cell == "lstm" else zero] * rnn.num_layers
        new = []
        for layer in range(rnn.num_layers):
            if layer > 0:
                u = F.dropout(u, rnn.dropout, self.training)
            gi = F.linear(u, getattr(rnn, f"weight_ih_l{layer}"),
                          getattr(rnn, f"bias_ih_l{layer}"))  # (B, G H)
            if self.cell == "lstm":
                h, c = state[layer]
                gates = gi + F.linear(h, getattr(rnn, f"weight_hh_l{layer}"),
                                      getattr(rnn, f"bias_hh_l{layer}"))  # (B, 4H)
                i, f, g, o = gates.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                u = torch.sigmoid(o) * torch.tanh(c)
                new.append((u, c))
            else:
                h = state[layer]
                gh = F.linear(h, getattr(rnn, f"weight_hh_l{layer}"),
                              getattr(rnn, f"bias_hh_l{layer}"))  # (B, 3H)
                i_r, i_z, i_n = gi.chunk(3, dim=1)
                h_r, h_z, h_n = gh.chunk(3, dim=1)
                r = torch.sigmoid(i_r + h_r)
                z = torch.sigmoid(i_z + h_z)
                n = torch.tanh(i_n + r * h_n)
                u = (1 - z) * n + z * h
                new.append(u)
        return u, new

    def step(self, x: Tensor, i: int, member: int, state: list | None = None
             ) -> tuple[Tensor, list]:
        """Parameters of column ``o_i`` from the value at step ``i - 1`` and the carried state.

        Parameters
        ----------
        x : Tensor of shape (B, D)
            Encoded rows; only the column at step ``i - 1`` is read (earlier ones are in the
            state).
        i : int
            The step to predict; steps must come in order ``0, 1, ..., D-1``.
        member : int
        state : list or None
            The recurrent state after step ``i - 1`` (:meth:`cell_step`); None at ``i = 0``.

        Returns
        -------
        params : Tensor of shape (B, n_params_d)
            The parameters of column ``d = o_i``.
        state : list
            The state after step ``i``.
        """
        o = self.ensemble.host_orderings[member]
        d = o[i]
        if i == 0:
            tok = self.start.expand(x.shape[0], self.hidden_size)  # (B, H)
        else:
            tok = self.embedding.embed_column(x[:, o[i - 1]], o[i - 1])  # (B, H)
        h, state = self.cell_step(self.drop(tok + self.wqe.weight[d]), state)  # (B, H)
        return self.heads.column(self.drop(h), d), state  # (B, n_params_d)


def sample_stateful(module: DensityModule, n_samples: int, generator: torch.Generator,
                    context: Tensor | None = None) -> Tensor:
    """Exact ancestral sampling carrying the recurrent state: one cell step per position.

    Draws exactly what :func:`skar.base.sample_plain` draws with the same generator (the loop
    is :func:`skar.nn.sample_stepwise`); only the arithmetic differs (one :meth:`RNN.step` from
    the carried state instead of a full pass of the :class:`torch.nn.LSTM` or
    :class:`torch.nn.GRU` over the row), by float rounding.

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is an :class:`RNN`.
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    context : Tensor of shape (n_samples, U), optional
        The context units of a conditional network: each row's state starts from its ``y``.

    Returns
    -------
    Tensor of shape (n_samples, D)
        Encoded rows.
    """
    net = module.network
    return sample_stepwise(module, n_samples, generator,
                           lambda n, device, dtype, c=None: net.initial_state(c),
                           net.step, context)


class RNNDensity(ConditionalTabularMixin, BaseAutoregressiveDensity):
    """Density estimation with a recurrent network (LSTM or GRU), for rows of any kind and for
    sequences.

    ``fit(X, y)`` learns the conditional density ``p(x | y)``: the recurrence starts from a
    state computed from ``y`` (:class:`skar.nn.ConditionalTabularMixin` says how ``y`` is
    encoded, scored and sampled); ``fit(X)`` starts from zeros, as before.

    The columns of a row, in a fixed (or random) ordering, are a sequence; an LSTM or GRU reads
    the values before step ``i`` and outputs the parameters of ``p(x_{o_i} | x_{o_<i})``: a
    Bernoulli (binary columns), a Categorical (categorical columns) or a mixture of
    ``n_components`` components (continuous columns). Training and scoring cost one
    teacher-forced pass per row (per ordering); sampling carries the recurrent state, one cell
    step per position.

    For sequences (one sequence per row, e.g. windows of text from
    :func:`skar.datasets.text_windows`), set ``tie_columns=True``: every position then shares
    one value embedding and one output head, as in char-RNN.

    Parameters
    ----------
    cell : {"lstm", "gru"}, default="lstm"
        The recurrent cell.
    hidden_size : int, default=64
        Width of the recurrent state and of the input embeddings.
    n_layers : int, default=1
        Stacked recurrent layers.
    dropout : float, default=0.0
        Dropout rate in training (inputs, between layers, before the heads).
    tie_columns : bool, default=False
        Share the value embedding and the output head among columns of the same type and the
        same categories (binary columns with binary columns, categorical columns with equal
        category lists, quantized columns with equal grid steps, continuous columns with
        continuous ones; :func:`skar.nn.tie_keys_of`). Use it for sequences, whose
        positions hold the same kind of symbol; leave it off for tables, whose columns mean
        different things.
    n_components : int, default=5
        Mixture components of each continuous column's conditional.
    component : {"gaussian", "laplace", "logistic"}, default="gaussian"
        Mixture component family of continuous columns.
    n_orderings : int, default=1
        Number of orderings sharing the weights. With more than one, each minibatch trains one
        ordering drawn at random, and ``score_samples`` averages the orderings' probabilities.
    order : {"natural", "random"} or array-like of int, default="natural"
        The first ordering: the columns' own order, a random permutation, or a given
        permutation. With ``n_orderings > 1`` the other orderings are independent random
        permutations.
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
        The trained skorch net; ``net_.module_.network`` is the :class:`RNN`.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per row, units of X) and duration.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    skar.ARTransformerDensity : Causal self-attention over the columns (key/value cache).
    skar.WaveNetDensity : Causal dilated convolutions over sequences.
    skar.datasets.text_windows : Cut a text into windows of characters, one per row.

    References
    ----------
    S. Hochreiter and J. Schmidhuber. Long Short-Term Memory. Neural Computation 9(8), 1997.
    K. Cho et al. Learning Phrase Representations using RNN Encoder-Decoder for Statistical
    Machine Translation. EMNLP 2014.
    A. Graves. Generating Sequences With Recurrent Neural Networks. arXiv:1308.0850, 2013.

    Examples
    --------
    A table, and binary sequences of 12 steps read by one tied embedding and head:

    >>> import numpy as np
    >>> from skar.models.rnn import RNNDensity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 3))
    >>> RNNDensity(hidden_size=16, max_iter=3, random_state=0).fit(X).sample(2).shape
    (2, 3)
    >>> seqs = (rng.rand(300, 12) < 0.3).astype(int)
    >>> est = RNNDensity(hidden_size=16, tie_columns=True, max_iter=3, random_state=0).fit(seqs)
    >>> est.score_samples(seqs[:4]).shape
    (4,)
    """

    _parameter_constraints: dict = {
        **BaseAutoregressiveDensity._parameter_constraints,
        "cell": [StrOptions({"lstm", "gru"})],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "tie_columns": ["boolean"],
        **MIXTURE_CONSTRAINTS,
        **ORDERING_CONSTRAINTS,
        **RECIPE_CONSTRAINTS,
    }

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 64,
        n_layers: int = 1,
        *,
        dropout: float = 0.0,
        tie_columns: bool = False,
        n_components: int = 5,
        component: str = "gaussian",
        n_orderings: int = 1,
        order: Any = "natural",
        categorical_features: Any = None,
        feature_types: Any = None,
        quantization: Any = "auto",
        point_masses: str | None = "auto",
        min_scale: float = 1e-3,
        handle_unknown: str = "zero_probability",
        quantized_samples: str = "grid",
        batch_size: Any = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        alpha: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        lr_schedule: str | None = None,
        average_weights: float = 0.0,
        patience_fraction: float = 0.0,
        refit: bool = False,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.dropout = dropout
        self.tie_columns = tie_columns
        self.n_components = n_components
        self.component = component
        self.n_orderings = n_orderings
        self.order = order
        super().__init__(**shared_params(locals()))

    def _build_network(
        self, schema: TabularSchema, conditionals: ColumnConditionals, seed: int
    ) -> RNN:
        return RNN(
            input_sizes=schema.input_sizes,
            kinds=schema.kinds,
            output_sizes=[f.n_params for f in conditionals.families],
            tie_keys=tie_keys_of(schema) if self.tie_columns else None,
            cell=self.cell,
            hidden_size=self.hidden_size,
            n_layers=self.n_layers,
            dropout=self.dropout,
            n_orderings=self.n_orderings,
            order=self.order,
            seed=seed,
            context_sizes=self._context_sizes(),
        )

    def _sample_encoded(
        self, n_samples: int, generator: torch.Generator, context: Tensor | None = None
    ) -> Tensor:
        """Draw encoded rows carrying the recurrent state (equal to the plain loop's draw),
        started from ``y`` in a conditional fit."""
        return sample_stateful(self.net_.module_, n_samples, generator, context)
