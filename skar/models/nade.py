"""NADE, RNADE and order-agnostic (deep) NADE with ensembles of orderings.

**NADE** (Larochelle & Murray, AISTATS 2011) ties the input weights of every conditional. For
the column at position ``i`` of the ordering ``o``,

.. math::

    a_1 = c,\\qquad a_{i+1} = a_i + W_{:, o_i}\\, x_{o_i},\\qquad
    h_i = \\sigma(a_i),\\qquad
    \\theta_{o_i} = V_{o_i} h_i + b_{o_i},

so ``h_i`` is a function of ``x_{o_<i}`` only, and every ``a_i`` comes from one cumulative sum
over positions: training and scoring cost O(nDH) in one parallel pass, and sampling costs
O(DH) per row with the incremental update above (:func:`sample_nade`). ``theta`` is a Bernoulli
logit for a binary column, softmax logits for a categorical column (a categorical column's
one-hot units each own a column of ``W``), or the mixture parameters of a continuous column.

**RNADE** (Uria, Murray & Larochelle, NIPS 2013) is NADE for real-valued columns: each
conditional is a mixture of ``n_components`` Gaussians (or Laplace distributions) whose mixing
logits, means and log-scales are ``V_{o_i} h_i + b_{o_i}``, and the activations are rescaled per
position, :math:`h_i = \\sigma(\\rho_i a_i)`, because ``a_i`` sums ``i - 1`` inputs and grows with
``i`` (the paper's :math:`\\rho_i`, learnt, initialised to 1).

**Order-agnostic NADE** (DeepNADE / EoNADE, Uria, Murray & Larochelle, ICML 2014; Uria et al.,
JMLR 2016) drops the weight tying and feeds an MLP with the observed values and the mask,
``h = MLP([x \\odot m, m])``, which outputs the conditionals of every unobserved column given
the observed ones. Training draws, for every row, a random ordering and a split point
``d`` (``d`` observed columns, uniform on ``0 .. D-1``) and maximises

.. math::

    \\hat{\\mathcal{L}}(x) = \\frac{D}{D - d} \\sum_{j \\notin o_{\\le d}}
        \\log p(x_j \\mid x_{o_{\\le d}}),

an unbiased estimate of :math:`\\mathbb{E}_o[\\log p(x \\mid o)]` over all ``D!`` orderings.
Scoring is the exact chain rule under each of ``K`` fixed orderings (``D`` masked passes per
ordering) and the ensemble :math:`p(x) = \\frac1K \\sum_k p(x \\mid o^{(k)})` (EoNADE).

**Conditioning** (``fit(X, y)``, :math:`p(x \\mid y)`): the context units ``u_y`` of ``y``
(:class:`skar.nn.ConditionalTabularMixin`) shift the hidden bias of every row, a conditioning
bias ``a_1 = c + V_y u_y``, which the running sum carries to every position; the deep
order-agnostic NADE adds ``V_y u_y`` to its first hidden pre-activation. ``V_y`` exists only
when ``y`` is given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn

from ..base import (
    MIXTURE_CONSTRAINTS,
    ORDERING_CONSTRAINTS,
    RECIPE_CONSTRAINTS,
    BaseAutoregressiveDensity,
    DensityModule,
    make_orderings,
    member_rows,
    shared_params,
)
from ..distributions import ColumnConditionals
from ..nn import ColumnHeads, ConditionalTabularMixin, OrderedNetwork, OrderingEnsemble
from ..schema import OneHotInputs, TabularSchema

__all__ = [
    "NADE",
    "NADEDensity",
    "OrderAgnosticNADE",
    "RNADEDensity",
    "sample_nade",
    "sample_order_agnostic",
]

_ACTIVATIONS = {"logistic": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
_ACTIVATIONS_INPLACE = {"logistic": torch.sigmoid_, "relu": torch.relu_, "tanh": torch.tanh_}


# Elements of one (block, B, H) slice of the NADE pass. On the CPU, small enough that a
# block's pre-activations, hidden units and their gradients stay in the cache (measured best
# near 2**18 on a 32 MiB L3 at the binarized-MNIST shape; see benchmarks/nade). On an
# accelerator, larger (a few L2-sized blocks, few kernel launches). Either way the triangle
# product inside a block costs at most that many multiply-adds per position, so a pass stays
# O(DH) per row.
_CPU_BLOCK_ELEMENTS = 2**18
_ACCELERATOR_BLOCK_ELEMENTS = 2**22


def _block_size(n_positions: int, n_rows: int, n_hidden: int, device: torch.device) -> int:
    """Positions per block of the NADE pass (:class:`_TiedPass`) for ``n_rows`` rows of
    ``n_hidden`` units on ``device``."""
    elements = _CPU_BLOCK_ELEMENTS if device.type == "cpu" else _ACCELERATOR_BLOCK_ELEMENTS
    return max(1, min(n_positions, elements // max(1, n_rows * n_hidden)))


def _row_chunk(n_positions: int, n_hidden: int, device: torch.device) -> int:
    """Rows per call of the NADE pass: few enough that blocks of ``min(D, 4)`` positions fit
    the element budget of :func:`_block_size`. A larger batch (scoring's 1,024 rows) would
    otherwise get blocks of one position whose ``(B, H)`` slices overflow the cache: at the
    binarized-MNIST shape chunks of 128 rows score 1.8 times faster than one of 1,024 (one
    CPU thread); at ``D = 11``, ``H = 100`` the chunks stay above 600 rows."""
    elements = _CPU_BLOCK_ELEMENTS if device.type == "cpu" else _ACCELERATOR_BLOCK_ELEMENTS
    return max(1, elements // (n_hidden * min(n_positions, 4)))


def _blocks(n_positions: int, block: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each block of ``block`` positions (the last may be shorter)."""
    return [(p0, min(n_positions, p0 + block)) for p0 in range(0, n_positions, block)]


def _act_derivative(h: Tensor, activation: str) -> Tensor:
    """``act'(z)`` written with ``h = act(z)``: ``h(1-h)``, ``1-h^2`` or ``[h > 0]``."""
    if activation == "logistic":
        return h * (1.0 - h)
    if activation == "tanh":
        return 1.0 - h * h
    return (h > 0).to(h.dtype)


def _tied_hidden(x: Tensor, W: Tensor, carry: Tensor, tri: Tensor, rho: Tensor | None,
                 activation: str) -> tuple[Tensor, Tensor]:
    r"""The tied recurrence over one block of ``k`` positions: ``(a, h)``, each ``(k, B, H)``.

    ``x`` ``(k, B, U)`` and ``W`` ``(k, U, H)`` are each position's *input*: the units of the
    column one position earlier (position 0 reads a zero unit), so that

    .. math::

        a_i = \text{carry} + \sum_{p_0 \le j \le i} x_j W_j
            = c + \sum_{j < i} W_{:, o_j} x_{o_j},\qquad h_i = \mathrm{act}(\rho_i a_i),

    with ``carry`` the ``a`` of the position before the block (``c`` before the first). Under
    autograd the inclusive prefix sum is one product with the lower-triangular matrix of ones
    ``tri``; without a graph it is the running sum itself, one in-place multiply-add per
    position. The next block's carry is ``a[-1]``. Training, scoring and sampling all run the
    recurrence through this function: the passes with cache-sized blocks (:class:`_TiedPass`),
    the incremental sampler with blocks of one position (:meth:`NADE.sample`).
    """
    k = x.shape[0]
    if _needs_graph(x, W, carry, rho):
        # Differentiated by autograd (a pass of one block in training): out-of-place.
        if x.shape[2] == 1:  # one unit per position: an outer product, no matmul needed
            v = x * W  # (k, B, 1) * (k, 1, H) -> (k, B, H)
        else:
            v = torch.bmm(x, W)  # (k, B, U) @ (k, U, H) -> (k, B, H)
        a = torch.mm(tri[:k, :k], v.view(k, -1)).view_as(v).add_(carry)
        z = a if rho is None else a * rho.view(k, 1, 1)
        return a, _ACTIVATIONS[activation](z)
    # Without a graph (scoring, sampling, _TiedPass's forward and recomputation): the running
    # sum itself, one fused multiply-add per position written in place, a_i = a_{i-1} + x_i W_i.
    # It is k (B, H) updates where the triangle product costs k(k+1)/2, and it forms no
    # (k, B, H) product tensor: 1.4 times faster at scoring's blocks of 4 positions of 655
    # rows, H = 100 (one thread); the sums agree with the triangle's to float32 rounding.
    a = x.new_empty(k, x.shape[1], W.shape[2])
    prev = carry
    for i in range(k):
        if x.shape[2] == 1:  # (B, 1) * (1, H) + (B, H)
            torch.addcmul(prev, x[i], W[i], out=a[i])
        else:  # (B, U) @ (U, H) + (B, H)
            torch.addmm(prev, x[i], W[i], out=a[i])
        prev = a[i]
    h = a.clone() if rho is None else torch.mul(a, rho.view(k, 1, 1))
    return a, _ACTIVATIONS_INPLACE[activation](h)


def _tied_block(x: Tensor, W: Tensor, carry: Tensor, tri: Tensor, rho: Tensor | None,
                V: Tensor, b: Tensor, activation: str,
                out: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One block's conditional parameters ``theta_i = V_i h_i + b_i`` ``(k, B, K)`` (written
    into ``out`` if given), with its ``a`` and ``h`` (:func:`_tied_hidden`)."""
    a, h = _tied_hidden(x, W, carry, tri, rho, activation)
    if out is None and not _needs_graph(x, W, carry, rho, V, b):
        out = _rows_major(h.shape[1], x.shape[0], V.shape[1], h)
    # (k, B, H) @ (k, H, K) + (k, 1, K) -> (k, B, K)
    theta = torch.baddbmm(b.unsqueeze(1), h, V.transpose(1, 2), out=out)
    return theta, a, h


def _needs_graph(*tensors: Tensor | None) -> bool:
    """Whether autograd records operations on ``tensors`` (then no ``out=`` or in-place)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _rows_major(n_rows: int, n_positions: int, width: int, like: Tensor) -> Tensor:
    """An empty ``(n_positions, n_rows, width)`` view of a ``(n_rows, n_positions, width)``
    buffer: the pass writes each block's positions into it, and the rows then read their
    parameters position after position without a transposing copy."""
    return like.new_empty(n_rows, n_positions, width).transpose(0, 1)


def _context_bias(context_sizes: list[int] | None, width: int) -> nn.Linear | None:
    """``V_y``: the context units into ``width`` hidden units; None for an unconditional
    network. Small, N(0, 0.1^2): a zero start sits, with the zeroed output weights of a
    marginal start, on a saddle where neither moves (one column: its hidden vector varies with
    nothing else), and the default (Kaiming, weights up to 1 for one y column) overfitted: red
    wine given quality, RNADE held-out -0.49 and -0.47 nats against -0.40 and -0.29 from this
    start (two seeds; unconditional: -0.46, -0.48; std 0.01: -0.37, -0.25, but too slow to
    leave the saddle on one column)."""
    if context_sizes is None:
        return None
    layer = nn.Linear(int(sum(context_sizes)), width, bias=False)
    nn.init.normal_(layer.weight, std=0.1)
    return layer


def _check_context(layer: nn.Module | None, context: Tensor | None) -> None:
    if (context is None) != (layer is None):
        raise ValueError(
            "this network was built " + ("with" if layer is not None else "without")
            + " a conditioning bias; pass context exactly when it has one"
        )


def _lower_ones(block: int, like: Tensor) -> Tensor:
    """The ``(block, block)`` lower-triangular matrix of ones (diagonal included)."""
    return torch.ones(block, block, dtype=like.dtype, device=like.device).tril_()


class _TiedPass(torch.autograd.Function):
    r"""NADE's tied-weight pass over every position, blocked along the positions
    (:func:`_tied_block`), with its gradient written out (the O(DH)-memory gradient of
    Larochelle & Murray 2011, Alg. 1).

    With positions in the order of the ordering, shifted inputs ``x`` ``(D, B, U)`` (position
    ``i`` holds the units of position ``i - 1``, zero-padded to ``U``; position 0 zeros) and
    their weights ``W`` ``(D, U, H)``,

    .. math::

        v_i = x_i W_i,\quad a_i = c + \sum_{j\le i} v_j,\quad h_i = \mathrm{act}(\rho_i a_i),
        \quad \theta_i = V_i h_i + b_i .

    The positions are cut into blocks of ``block``, joined by a running ``(B, H)`` carry. Only
    the carries at block starts are kept (``D / block`` of ``(B, H)``; a pass of one block, a
    small model, keeps its ``a`` and ``h`` instead); the backward pass recomputes each block's
    ``a`` and ``h`` and runs the blocks in reverse with the adjoint carry

    .. math::

        \frac{\partial L}{\partial v_j} = \sum_{i \ge j} \frac{\partial L}{\partial a_i},

    so no ``(D, B, H)`` tensor is ever stored and each block's work stays in the cache
    (``benchmarks/nade`` measures it against autograd through the same blocks). The loop is
    over blocks, not positions, and every block is evaluated in parallel over its positions.
    Without a gradient (scoring) the pass is the same forward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, W: Tensor, c: Tensor, rho: Tensor | None, V: Tensor,
                b: Tensor, activation: str, block: int) -> Tensor:
        D, B, _ = x.shape
        H = W.shape[2]
        theta = _rows_major(B, D, V.shape[1], x)  # (D, B, K), rows major
        tri = _lower_ones(block, x)
        blocks = _blocks(D, block)
        carries = x.new_empty(len(blocks), B, H)
        carry = c.expand(B, H)
        for n, (p0, p1) in enumerate(blocks):
            carries[n] = carry
            _, a, h = _tied_block(x[p0:p1], W[p0:p1], carry, tri,
                                  None if rho is None else rho[p0:p1], V[p0:p1], b[p0:p1],
                                  activation, out=theta[p0:p1])
            carry = a[-1]
        # One block (a small model): keep its a and h, there is nothing to gain by recomputing.
        kept = (a, h) if len(blocks) == 1 else ()
        ctx.save_for_backward(x, W, rho, V, carries, tri, *kept)
        ctx.activation, ctx.block, ctx.c_rows = activation, block, c.dim()
        return theta

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_theta: Tensor) -> tuple[Tensor | None, ...]:
        x, W, rho, V, carries, tri, *kept = ctx.saved_tensors
        activation, block, c_rows = ctx.activation, ctx.block, ctx.c_rows
        D = x.shape[0]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_W, grad_V = torch.empty_like(W), torch.empty_like(V)
        grad_rho = None if rho is None else torch.empty_like(rho)
        grad_theta = grad_theta.contiguous()
        # g = sum of dL/da_i over the positions after the current block (B, H)
        g = carries.new_zeros(carries.shape[1:])
        for n, (p0, p1) in reversed(list(enumerate(_blocks(D, block)))):
            k = p1 - p0
            if kept:
                a, h = kept
            else:
                a, h = _tied_hidden(x[p0:p1], W[p0:p1], carries[n], tri,
                                    None if rho is None else rho[p0:p1], activation)
            gt = grad_theta[p0:p1]  # (k, B, K)
            torch.bmm(gt.transpose(1, 2), h, out=grad_V[p0:p1])  # (k, K, B) @ (k, B, H)
            grad_z = torch.bmm(gt, V[p0:p1]).mul_(_act_derivative(h, activation))  # (k, B, H)
            if rho is None:
                grad_a = grad_z
            else:
                grad_rho[p0:p1] = (grad_z * a).sum((1, 2))
                grad_a = grad_z.mul_(rho[p0:p1].view(k, 1, 1))
            # dL/dv_j = sum_{i>=j} dL/da_i: this block's positions from j on (the transposed
            # triangle) and every block after it (g)
            grad_v = torch.mm(tri[:k, :k].T, grad_a.view(k, -1)).view_as(grad_a).add_(g)
            g = g + grad_a.sum(0)
            torch.bmm(x[p0:p1].transpose(1, 2), grad_v, out=grad_W[p0:p1])  # (k, U, H)
            if grad_x is not None:
                torch.bmm(grad_v, W[p0:p1].transpose(1, 2), out=grad_x[p0:p1])  # (k, B, U)
        grad_c = g.sum(0) if c_rows == 1 else g  # c (H,) or a bias per row (B, H)
        return grad_x, grad_W, grad_c, grad_rho, grad_V, grad_theta.sum(1), None, None


class NADE(OrderedNetwork):
    """The tied-weight NADE / RNADE network (a torch module), with an optional ensemble of
    orderings that share all weights.

    Training, scoring and sampling run one recurrence through one function
    (:func:`_tied_block`): the passes over cache-sized blocks of positions (:class:`_TiedPass`),
    the sampler (:meth:`sample`) one position at a time, carrying the same running sum.

    Parameters
    ----------
    input_sizes : list of int
        Input units per column (K for a categorical column, else 1).
    kinds : list of str
        Column kinds (see :mod:`skar.schema`).
    output_sizes : list of int
        Conditional parameters per column (``family.n_params``).
    n_hidden : int
        Hidden units H.
    n_orderings : int
        Fixed orderings in the ensemble; one is drawn per minibatch in training.
    order : "natural", "random" or array of int
        The first ordering (see :func:`skar.base.make_orderings`).
    rescale : bool
        RNADE's per-position activation rescaling :math:`h_i = \\sigma(\\rho_i a_i)`.
    activation : {"logistic", "relu", "tanh"}
    seed : int
        Seeds the orderings and the per-minibatch ordering draws.
    context_sizes : list of int or None, default=None
        Units of every column of the conditioning ``y``; None for an unconditional network,
        which then has no ``context`` layer.

    Attributes
    ----------
    W : Parameter of shape (H, n_units)
        Tied input weights; ``c`` (H,) the hidden bias; ``rho`` (D,) the per-position scales.
    context : torch.nn.Linear or None
        ``V_y``, the conditioning bias ``c + V_y u_y`` (conditional networks only).
    outputs : skar.nn.ColumnHeads
        The untied output layer ``theta_d = V_d h + b_d``.
    ensemble : skar.nn.OrderingEnsemble
        The orderings (shared weights) and the per-minibatch ordering draws.
    """

    def __init__(
        self,
        input_sizes: list[int],
        kinds: list[str],
        output_sizes: list[int],
        n_hidden: int = 100,
        n_orderings: int = 1,
        order: Any = "natural",
        rescale: bool = False,
        activation: str = "logistic",
        seed: int = 0,
        context_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        D = len(input_sizes)
        rng = np.random.default_rng(seed)
        self.n_features = D
        self.inputs = OneHotInputs(input_sizes, kinds)
        self.input_sizes = [int(k) for k in input_sizes]
        self.unit_offsets = np.concatenate([[0], np.cumsum(input_sizes)]).tolist()
        self.categorical = [k == "categorical" for k in kinds]
        n_units = self.inputs.n_units
        self.W = nn.Parameter(torch.randn(n_hidden, n_units) / math.sqrt(n_units))
        self.c = nn.Parameter(torch.zeros(n_hidden))
        self.rho = nn.Parameter(torch.ones(D)) if rescale else None
        # The heads are evaluated by _tied_block (a batched matmul over positions).
        self.outputs = ColumnHeads(output_sizes, n_hidden, exact=False)
        self.activation_name = activation
        orderings = make_orderings(D, n_orderings, order, rng, distinct=True)
        # Each position's *input* units, those of the column one position earlier (position 0
        # reads none), padded with the index n_units (a zero unit) to the widest column:
        # (n_orderings, D, U_max). Shifting the inputs makes the running sum inclusive, so
        # one block function serves a block of positions and a single sampling step alike.
        width = max(self.input_sizes)
        slots = np.full((len(orderings), D, width), n_units)
        for m, o in enumerate(orderings):
            for i, d in enumerate(o[:-1]):
                lo, hi = self.unit_offsets[d], self.unit_offsets[d + 1]
                slots[m, i + 1, : hi - lo] = np.arange(lo, hi)
        self.register_buffer("input_slots", torch.as_tensor(slots), persistent=False)
        self.ensemble = OrderingEnsemble(orderings, rng)
        # Created last, and only with y: an unconditional network draws what it drew before.
        self.context = _context_bias(context_sizes, n_hidden)

    def hidden_bias(self, context: Tensor | None, n_rows: int) -> Tensor:
        """``a_1``: ``c`` expanded to ``(B, H)``, plus ``V_y u_y`` with a context."""
        _check_context(self.context, context)
        if context is None:
            return self.c.expand(n_rows, self.c.shape[0])
        return self.c + self.context(context.to(self.c.dtype))  # (B, H)

    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Set the output biases to ``theta0`` and zero the output weights of the parameters
        flagged ``independent`` (see :meth:`skar.base.AutoregressiveNetwork.init_marginals`)."""
        self.outputs.init_marginals(theta0, independent)

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_params)`` conditional parameters."""
        return self.forward_units(self.inputs(x), member, context)

    def forward_units(self, u: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """All conditionals from input units ``(B, n_units)`` in one pass (no loop over D):
        :func:`_tied_block` over cache-sized blocks of the positions of ``ordering(member)``,
        in the working precision, for training and scoring alike; with several blocks through
        :class:`_TiedPass`, whose gradient recomputes each block instead of storing it."""
        D, H = self.n_features, self.W.shape[0]
        if not _needs_graph(u, context, *self.parameters()):
            return self._scoring_pass(u, member, context)
        chunk = _row_chunk(D, H, u.device)
        if u.shape[0] > chunk:  # rows are independent: a pass per chunk of rows
            parts = [None] * len(u.split(chunk)) if context is None else context.split(chunk)
            return torch.cat([self.forward_units(c, member, k)
                              for c, k in zip(u.split(chunk), parts)])
        bias = self.hidden_bias(context, u.shape[0])  # (B, H)
        order, out = self.orderings[member], self.outputs
        x, W = self._position_inputs(u, member)
        V, b = out.weight[order], out.bias[order]
        block = _block_size(D, u.shape[0], H, u.device)
        if block < D:
            theta = _TiedPass.apply(x, W, self.c if context is None else bias, self.rho, V, b,
                                    self.activation_name, block)
        else:
            # One block (a small model): the written-out gradient would keep the same a and h
            # that autograd keeps, and measured no faster (benchmarks/nade, red-wine shape).
            theta, _, _ = _tied_block(x, W, bias, _lower_ones(D, x),
                                      self.rho, V, b, self.activation_name)
        theta = theta.transpose(0, 1)  # (B, D, K_max) in position order
        if not np.array_equal(self.ensemble.host_orderings[member], np.arange(D)):
            theta = theta[:, self.positions[member]]  # in column order
        if out.flat_index.numel() == theta.shape[1] * theta.shape[2]:
            return theta.reshape(theta.shape[0], -1)  # every column has K_max outputs: a view
        return out.flat(theta)

    def _scoring_pass(self, u: Tensor, member: int, context: Tensor | None) -> Tensor:
        r"""The pass of :meth:`forward_units` without a gradient (scoring), written
        column-major: ``(B, n_params)``, the transpose of a contiguous ``(n_params, B)``
        tensor.

        The same recurrence (:func:`_tied_hidden`, running sums over cache-sized blocks of
        positions and chunks of rows); each block's heads are one batched matmul,
        :math:`\theta_i^T = V_i h_i^T + b_i` ``(k, K_max, B)``, which on one CPU thread ran
        1.7 to 2 times faster than :math:`h_i V_i^T` (its output has ``B`` columns, not
        ``K_max``) and leaves every conditional parameter a contiguous run over the rows:
        :meth:`skar.distributions.ColumnConditionals.log_prob` reads the mixtures'
        components from it without a transposing copy. In float32 throughout; the
        parameters equal the training pass's to float32 rounding (another summation order).
        """
        D, H = self.n_features, self.W.shape[0]
        B = u.shape[0]
        out = self.outputs
        x, W = self._position_inputs(u, member)  # (D, B, U), (D, U, H)
        order = self.orderings[member]
        V, b = out.weight[order], out.bias[order].unsqueeze(2)  # (D, K, H), (D, K, 1)
        bias = self.hidden_bias(context, B)  # (B, H)
        theta = x.new_empty(D, V.shape[1], B)  # position order, column-major
        rho = self.rho
        first = 0
        if context is None:
            # Position 0 reads no column: a_0 = c for every row, so its conditional is one
            # vector, computed once and broadcast (an eleventh of the pass at D = 11).
            z0 = self.c if rho is None else rho[0] * self.c
            h0 = _ACTIVATIONS[self.activation_name](z0)
            theta[0] = torch.addmv(b[0, :, 0], V[0], h0).unsqueeze(1)
            first = 1
        chunk = _row_chunk(D, H, u.device)
        for r0 in range(0, B, chunk):
            r1 = min(B, r0 + chunk)
            carry = bias[r0:r1]
            for p0, p1 in _blocks(D - first, _block_size(D, r1 - r0, H, u.device)):
                p0, p1 = p0 + first, p1 + first
                a, h = _tied_hidden(x[p0:p1, r0:r1], W[p0:p1], carry, None,
                                    None if rho is None else rho[p0:p1], self.activation_name)
                # (k, K, H) @ (k, H, B) + (k, K, 1) -> (k, K, B), written in place (the
                # strided output costs no copy)
                torch.baddbmm(b[p0:p1], V[p0:p1], h.transpose(1, 2),
                              out=theta[p0:p1, :, r0:r1])
                carry = a[-1]
        if not np.array_equal(self.ensemble.host_orderings[member], np.arange(D)):
            theta = theta[self.positions[member]]  # in column order
        theta = theta.view(-1, B)
        if out.flat_index.numel() != theta.shape[0]:
            theta = theta[out.flat_index]
        return theta.T

    def _padded_weights(self) -> Tensor:
        """``W`` with a zero column for the zero unit: ``(H, n_units + 1)``."""
        return torch.cat([self.W, self.W.new_zeros(self.W.shape[0], 1)], dim=1)

    def _position_inputs(self, u: Tensor, member: int) -> tuple[Tensor, Tensor]:
        """Every position's input units and their weights in the position order of
        ``ordering(member)``: ``x`` ``(D, B, U)`` and ``W`` ``(D, U, H)`` (see
        ``input_slots``). Permutes O(BD + DH) numbers, never the O(BDH) products."""
        slots = self.input_slots[member]  # (D, U)
        u = torch.cat([u.to(self.W.dtype), u.new_zeros(u.shape[0], 1, dtype=self.W.dtype)],
                      dim=1)
        x = u.T[slots].transpose(1, 2)  # (D, U, B) -> (D, B, U)
        return x.contiguous(), self._padded_weights().T[slots].contiguous()

    @torch.no_grad()
    def sample(self, conditionals: ColumnConditionals, n_samples: int,
               generator: torch.Generator, context: Tensor | None = None) -> Tensor:
        """Draw ``n_samples`` encoded rows incrementally: O(DH) per row (``context``: the
        ``(n_samples, U)`` context units of a conditional network).

        Carries the running sum ``a`` ``(B, H)`` from one position to the next through
        :func:`_tied_block` with blocks of one position (the function the passes run over
        larger blocks), instead of recomputing every conditional with a full pass as
        :func:`skar.base.sample_plain` does. It draws members and columns in the same order and
        from the same generator as ``sample_plain``; the conditionals agree with the full
        pass's to float32 rounding (the pass sums a block's positions in another order), so
        discrete draws are the same unless a uniform falls within that rounding of a
        threshold, and continuous draws agree to float32 precision.
        """
        D = self.n_features
        offsets = conditionals.offsets
        x = torch.zeros(n_samples, D, device=self.W.device)
        tri = _lower_ones(1, self.W)
        W_all = self._padded_weights().T  # (n_units + 1, H)
        rho = self.rho
        for m, rows in member_rows(self.n_members, n_samples, generator, x.device):
            B = rows.numel()
            slots, order = self.input_slots[m], self.orderings[m]  # (D, U), (D,)
            W, V, b = W_all[slots], self.outputs.weight[order], self.outputs.bias[order]
            units = W_all.new_zeros(B, self.inputs.n_units + 1)  # the drawn columns' units
            xm = x.new_zeros(B, D)
            # Column d's parameters are written into a (B, n_params) buffer and drawn from
            # there, so the family sees the same memory layout as in the generic loop.
            params = W_all.new_zeros(B, offsets[-1])
            carry = self.hidden_bias(None if context is None else context[rows], B)
            for i, d in enumerate(self.ensemble.host_orderings[m]):
                p = slice(i, i + 1)
                theta, a, _ = _tied_block(units[:, slots[i]].unsqueeze(0), W[p], carry, tri,
                                          None if rho is None else rho[p], V[p], b[p],
                                          self.activation_name)  # theta (1, B, K_max)
                carry = a[-1]
                lo, hi = offsets[d], offsets[d + 1]
                params[:, lo:hi] = theta[0, :, : hi - lo]
                xm[:, d] = conditionals.sample_column(params, d, generator)
                lo, hi = self.unit_offsets[d], self.unit_offsets[d + 1]
                if self.categorical[d]:
                    units[:, lo:hi] = torch.nn.functional.one_hot(xm[:, d].long(), hi - lo)
                else:
                    units[:, lo] = xm[:, d]
            x[rows] = xm
        return x


def sample_nade(module: DensityModule, n_samples: int, generator: torch.Generator,
                context: Tensor | None = None) -> Tensor:
    """Exact incremental NADE/RNADE sampler, O(DH) per row: :meth:`NADE.sample` of
    ``module.network`` with ``module.conditionals``."""
    return NADE.sample(module.network, module.conditionals, n_samples, generator, context)


class OrderAgnosticNADE(OrderedNetwork):
    """DeepNADE: an MLP on ``[x * mask, mask]`` trained over random orderings (a torch module).

    Parameters
    ----------
    input_sizes, kinds, output_sizes : list
        As for :class:`NADE`.
    hidden_layer_sizes : tuple of int
        Width of each hidden layer (one or more).
    n_orderings : int
        Fixed orderings used for scoring (the EoNADE ensemble).
    order : "natural", "random" or array of int
        The first fixed ordering.
    activation : {"logistic", "relu", "tanh"}
    seed : int
        Seeds the fixed orderings and the random orderings and split points of training.

    Notes
    -----
    In evaluation mode ``forward(x, member)`` evaluates the D masked passes of the chain rule
    under ``ordering(member)`` (in chunks of positions, so memory stays bounded); training goes
    through :meth:`training_log_prob` instead.
    """

    def __init__(
        self,
        input_sizes: list[int],
        kinds: list[str],
        output_sizes: list[int],
        hidden_layer_sizes: tuple[int, ...] = (500, 500),
        n_orderings: int = 1,
        order: Any = "natural",
        activation: str = "relu",
        seed: int = 0,
        context_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        D = len(input_sizes)
        rng = np.random.default_rng(seed)
        self.n_features = D
        self.inputs = OneHotInputs(input_sizes, kinds)
        n_in = self.inputs.n_units + D  # values and one mask bit per column
        n_out = int(sum(output_sizes))
        sizes = [n_in, *hidden_layer_sizes]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], n_out)
        self.activation_name = activation
        # Training draws its own orderings and split points (training_log_prob), never a
        # member: the ensemble only holds the fixed orderings that scoring averages.
        self.ensemble = OrderingEnsemble(make_orderings(D, n_orderings, order, rng, distinct=True),
                                         None)
        col_of_param = np.repeat(np.arange(D), output_sizes)
        self.register_buffer("col_of_param", torch.as_tensor(col_of_param), persistent=False)
        self._train_rng = np.random.default_rng(rng.integers(2**63 - 1))
        # Created last, and only with y: V_y u_y joins the first hidden pre-activation.
        self.context = _context_bias(context_sizes, hidden_layer_sizes[0])

    @torch.no_grad()
    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Set the output bias to ``theta0`` and zero the output weights of the parameters
        flagged ``independent``."""
        self.output.weight[independent.to(self.output.weight.device)] = 0.0
        self.output.bias.copy_(theta0.to(self.output.bias))

    def masked_params(self, u: Tensor, mask: Tensor, context: Tensor | None = None) -> Tensor:
        """The MLP on input units ``u`` (B, n_units) with observed-column mask (B, D) -> (B, P)
        (``context`` (B, U_y): the conditioning bias of the first layer)."""
        _check_context(self.context, context)
        unit_mask = mask[:, self.inputs.column_of_unit]
        h = torch.cat([u * unit_mask, mask], dim=1)
        act = _ACTIVATIONS[self.activation_name]
        for li, layer in enumerate(self.hidden):
            a = layer(h)
            if li == 0 and context is not None:
                a = a + self.context(context.to(a.dtype))
            h = act(a)
        return self.output(h)

    def training_log_prob(
        self, x: Tensor, conditionals: ColumnConditionals, context: Tensor | None = None
    ) -> Tensor:
        """The order-agnostic objective: ``D/(D-d) * sum_{unobserved} log p(x_j | x_obs)``.

        Every row gets its own random subset of ``d`` observed columns, ``d`` uniform on
        ``0 .. D-1`` (the first ``d`` columns of a uniformly random ordering).
        """
        B, D = x.shape
        keys = torch.as_tensor(self._train_rng.random((B, D)), dtype=x.dtype, device=x.device)
        n_obs = torch.as_tensor(self._train_rng.integers(0, D, B), device=x.device)
        rank = keys.argsort(1).argsort(1)  # a random ordering's positions, per row
        observed = (rank < n_obs.unsqueeze(1)).to(x.dtype)  # (B, D)
        params = self.masked_params(self.inputs(x), observed, context)
        logp = conditionals.log_prob(params, x)  # (B, D)
        weight = D / (D - n_obs).to(x.dtype)
        return weight * ((1.0 - observed) * logp).sum(1)

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_params)``: the exact chain rule of one ordering."""
        return self.forward_units(self.inputs(x), member, context)

    def forward_units(self, u: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """D masked passes (chunked): column ``o_i``'s parameters see ``x_{o_<i}`` only."""
        B, D = u.shape[0], self.n_features
        pos = self.positions[member]  # (D,)
        pos_of_param = pos[self.col_of_param]  # (P,)
        out = u.new_empty(B, self.col_of_param.numel())
        chunk = max(1, (1 << 22) // max(1, B * (u.shape[1] + D)))
        steps = torch.arange(D, device=u.device)
        for s in range(0, D, chunk):
            i = steps[s : s + chunk]  # positions evaluated in this chunk
            mask = (pos.unsqueeze(0) < i.unsqueeze(1)).to(u.dtype)  # (c, D)
            c = i.numel()
            params = self.masked_params(
                u.repeat(c, 1), mask.repeat_interleave(B, dim=0),
                None if context is None else context.repeat(c, 1),
            ).view(c, B, -1)
            sel = torch.nonzero((pos_of_param >= s) & (pos_of_param < s + c)).squeeze(1)
            out[:, sel] = params[pos_of_param[sel] - s, :, sel].T
        return out

    @torch.no_grad()
    def sample(self, conditionals: ColumnConditionals, n_samples: int,
               generator: torch.Generator, context: Tensor | None = None) -> Tensor:
        """Draw ``n_samples`` encoded rows with one masked pass per position (D passes).

        :func:`skar.base.sample_plain` would call the evaluation-mode forward, itself D passes,
        at every position (D^2 passes). This draws members and columns in the same order and
        from the same generator, through the same masked passes, so both return the same rows.
        """
        families, offsets = conditionals.families, conditionals.offsets
        device = self.output.weight.device
        D = self.n_features
        x = torch.zeros(n_samples, D, device=device)
        for m, rows in member_rows(self.n_members, n_samples, generator, device):
            xm = torch.zeros(rows.numel(), D, device=device)
            mask = torch.zeros(rows.numel(), D, device=device)
            cm = None if context is None else context[rows]
            for d in self.ensemble.host_orderings[m]:
                params = self.masked_params(self.inputs(xm), mask, cm)
                xm[:, d] = families[d].sample(params[:, offsets[d] : offsets[d + 1]], generator)
                mask[:, d] = 1.0
            x[rows] = xm
        return x


def sample_order_agnostic(
    module: DensityModule, n_samples: int, generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """Sampler for order-agnostic NADE, one masked pass per position:
    :meth:`OrderAgnosticNADE.sample` of ``module.network`` with ``module.conditionals``."""
    return OrderAgnosticNADE.sample(module.network, module.conditionals, n_samples, generator,
                                    context)


# What NADEDensity and RNADEDensity document alike: init_params, the shared training
# parameters (the marker line, filled by the base class) and the fitted attributes.
_SHARED_DOC = """    init_params : {"marginals", "random"}, default="marginals"
        Starting point of training (named as in :class:`sklearn.mixture.GaussianMixture`).
        "marginals" fits each column's family to that column alone (frequencies for binary
        and categorical columns, a one-dimensional mixture by EM for continuous ones) on the
        training rows and makes those the output biases; a continuous column's output weights
        start at zero, so its conditional starts as its marginal. A mixture then starts with
        narrow components on values that repeat in a continuous column (with
        ``point_masses=None``; by default such values are point masses, and rounded columns
        are quantized), which gradient steps from a random start seldom reach; keep
        ``learning_rate_init`` small enough (1e-4 to 3e-4) for Adam's steps not to shake such
        components off their values. Discrete columns keep random output weights. "random"
        keeps the random initialisation.
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
        The trained skorch net; ``net_.module_.network`` is the :class:`NADE` or
        :class:`OrderAgnosticNADE` module.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per row, units of X) and duration.
        With ``order_agnostic=True`` the train NLL is the order-agnostic estimate (averaged
        over all orderings), the validation NLL the exact score of the fixed ensemble.
    n_iter_ : int
        Number of epochs run.
"""


class _NADEBase(ConditionalTabularMixin, BaseAutoregressiveDensity):
    """Shared fit-time logic of :class:`NADEDensity` and :class:`RNADEDensity`; ``fit(X, y)``
    learns ``p(x | y)`` through a conditioning bias (:class:`skar.nn.ConditionalTabularMixin`)."""

    _rescale: bool = False

    _parameter_constraints: dict = {
        **BaseAutoregressiveDensity._parameter_constraints,
        **MIXTURE_CONSTRAINTS,
        **ORDERING_CONSTRAINTS,
        **RECIPE_CONSTRAINTS,
        "hidden_layer_sizes": ["array-like"],
        "order_agnostic": ["boolean"],
        "activation": [StrOptions({"auto", *_ACTIVATIONS})],
        "init_params": [StrOptions({"marginals", "random"})],
    }

    def _build_network(
        self, schema: TabularSchema, conditionals: ColumnConditionals, seed: int
    ) -> nn.Module:
        hidden = np.asarray(self.hidden_layer_sizes).reshape(-1)
        if hidden.size == 0 or hidden.dtype.kind not in "iu" or (hidden < 1).any():
            raise ValueError(
                "hidden_layer_sizes must hold one or more positive integers; "
                f"got {self.hidden_layer_sizes!r}"
            )
        if not self.order_agnostic and hidden.size != 1:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} has {hidden.size} layers, but "
                "the tied-weight NADE has exactly one hidden layer; pass one width, e.g. "
                "(100,), or set order_agnostic=True for a deep order-agnostic NADE"
            )
        common = dict(
            input_sizes=schema.input_sizes,
            kinds=schema.kinds,
            output_sizes=[f.n_params for f in conditionals.families],
            n_orderings=self.n_orderings,
            order=self.order,
            seed=seed,
            context_sizes=self._context_sizes(),
        )
        if self.order_agnostic:
            act = "relu" if self.activation == "auto" else self.activation
            return OrderAgnosticNADE(
                hidden_layer_sizes=tuple(int(h) for h in hidden), activation=act, **common
            )
        act = "logistic" if self.activation == "auto" else self.activation
        return NADE(n_hidden=int(hidden[0]), rescale=self._rescale, activation=act, **common)

    def _initialize_network(
        self,
        network: nn.Module,
        conditionals: ColumnConditionals,
        Z: np.ndarray,
        sample_weight: np.ndarray,
        seed: int,
    ) -> None:
        """With ``init_params="marginals"``, start every conditional at its column's marginal.

        The output biases become every column's fitted marginal,
        :meth:`skar.distributions.ColumnConditionals.marginal_params`, and the output weights
        of continuous columns start at zero, so their conditionals start as their marginals: a
        mixture component on a repeated value is only worth having within its width
        (``min_scale``) of the value, and the random weights would move it by O(1). Discrete
        columns keep their random output weights: a logit bears that perturbation, and the
        hidden layer then gets gradients from the first step (binarized MNIST, NADE, 3 epochs
        on 2,000 rows: 155.2 nats so, 203.6 with those weights zeroed as well, 173.4 from the
        random start). ``"random"`` keeps the random initialisation.
        """
        if self.init_params != "marginals":
            return
        theta0 = conditionals.marginal_params(Z, sample_weight, seed)
        independent = torch.as_tensor([f.kind == "continuous"
                                       for f in conditionals.families
                                       for _ in range(f.n_params)], dtype=torch.bool)
        network.init_marginals(theta0, independent)

    def _sample_encoded(
        self, n_samples: int, generator: torch.Generator, context: Tensor | None = None
    ) -> Tensor:
        """The fitted network's own fast sampler (:meth:`NADE.sample` or
        :meth:`OrderAgnosticNADE.sample`), with the context of a conditional fit."""
        module = self.net_.module_
        return module.network.sample(module.conditionals, n_samples, generator, context)


class NADEDensity(_NADEBase):
    # init_params, the shared parameters and the attributes are documented in _SHARED_DOC.
    __doc__ = """Density estimation with NADE, the neural autoregressive distribution estimator.

    Each conditional ``p(x_{o_i} | x_{o_<i})`` is a Bernoulli (binary columns) or a softmax
    (categorical columns; the categorical NADE) whose parameters come from the hidden vector
    ``h_i = sigmoid(c + W[:, o_<i] x_{o_<i})``, with one weight matrix ``W`` tied across all
    conditionals (Larochelle & Murray 2011). Training and scoring cost one parallel O(nDH) pass
    (a cumulative sum over positions); sampling costs O(DH) per row with the incremental update
    ``a_{i+1} = a_i + W[:, o_i] x_{o_i}``.

    Continuous columns are accepted too, with the RNADE conditional (a mixture of
    ``n_components`` ``component`` distributions); for real-valued data prefer
    :class:`RNADEDensity`, which adds RNADE's per-position activation rescaling.

    With ``order_agnostic=True`` the model is the deep order-agnostic NADE (DeepNADE): an MLP
    on ``[x * mask, mask]`` with ``hidden_layer_sizes`` layers, trained over random orderings;
    ``n_orderings=K`` then scores with the ensemble of K fixed orderings (EoNADE). Its scoring
    and sampling cost D network passes per ordering.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(500,)
        Hidden units. The tied-weight NADE has exactly one hidden layer, so this holds one
        width (named as in :class:`MADEDensity`, so one grid serves both); with
        ``order_agnostic=True`` it may hold several.
    n_components : int, default=5
        Mixture components of each continuous column's conditional.
    component : {"gaussian", "laplace", "logistic"}, default="gaussian"
        Mixture component family of continuous columns.
    order : {"natural", "random"} or array-like of int, default="natural"
        The (first) ordering of the columns; further orderings of an ensemble are random.
    n_orderings : int, default=1
        Size of the ensemble of orderings. Scores are ``log((1/K) sum_k p(x | o_k))``. Without
        ``order_agnostic`` the K orderings share all weights and each minibatch trains one of
        them, drawn at random.
    order_agnostic : bool, default=False
        Train a deep NADE over all orderings (Uria et al. 2014) instead of the tied NADE.
    activation : {"auto", "logistic", "relu", "tanh"}, default="auto"
        Hidden activation; "auto" is the logistic sigmoid for the tied NADE (as in the paper)
        and ReLU for the order-agnostic MLP (as in DeepNADE).
    """ + _SHARED_DOC + """
    See Also
    --------
    RNADEDensity : NADE for real-valued columns.
    MADEDensity : Masked autoencoder; one MLP pass per conditional set.
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    H. Larochelle and I. Murray. The Neural Autoregressive Distribution Estimator.
    AISTATS 2011.

    B. Uria, I. Murray and H. Larochelle. A Deep and Tractable Density Estimator. ICML 2014.

    B. Uria, M.-A. Côté, K. Gregor, I. Murray and H. Larochelle. Neural Autoregressive
    Distribution Estimation. JMLR 17, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import NADEDensity
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(300, 6) < 0.3).astype(int)
    >>> est = NADEDensity(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 6)
    """

    _rescale = False

    def __init__(
        self,
        hidden_layer_sizes: Any = (500,),
        *,
        n_components: int = 5,
        component: str = "gaussian",
        order: Any = "natural",
        n_orderings: int = 1,
        order_agnostic: bool = False,
        activation: str = "auto",
        init_params: str = "marginals",
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
        # The recipe off: on the binarized digits it scored lower on held-out rows of the
        # training split and fitted 3 to 9 times slower (benchmarks/defaults/README.md).
        lr_schedule: str | None = None,
        average_weights: float = 0.0,
        patience_fraction: float = 0.0,
        refit: bool = False,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.component = component
        self.order = order
        self.n_orderings = n_orderings
        self.order_agnostic = order_agnostic
        self.activation = activation
        self.init_params = init_params
        super().__init__(**shared_params(locals()))


class RNADEDensity(_NADEBase):
    # init_params, the shared parameters and the attributes are documented in _SHARED_DOC.
    __doc__ = """Density estimation with RNADE, the real-valued neural autoregressive estimator.

    Each continuous column's conditional is a mixture of ``n_components`` logistic (by
    default), Gaussian or Laplace components whose mixing logits, locations and scales come
    from ``h_i = sigmoid(rho_i (c + W[:, o_<i] x_{o_<i}))`` with tied weights ``W`` and a
    learnt per-position rescaling ``rho_i`` (Uria, Murray & Larochelle 2013):

    .. math::

        p(x_{o_i} \\mid x_{o_{<i}}) = \\sum_{k} \\frac{\\pi_{ik}}{s_{ik}}\\,
            f_0\\Big(\\frac{x_{o_i} - \\mu_{ik}}{s_{ik}}\\Big),\\qquad
        [\\text{logits}_i, \\mu_i, \\text{raw}_i] = V_{o_i} h_i + b_{o_i},

    with :math:`f_0` the standard logistic, normal (RNADE-MoG) or Laplace (RNADE-MoL) density.

    Columns are standardised with the training mean and deviation inside; the scores are in
    the units of X. Binary and categorical columns, if any, get NADE's Bernoulli and softmax
    conditionals. ``order_agnostic=True`` with ``n_orderings=K`` gives the deep order-agnostic
    RNADE with an ensemble of K orderings (Uria et al. 2014).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Hidden units: one width for the tied RNADE, one or more with ``order_agnostic``.
    n_components : int, default=10
        Mixture components per conditional.
    component : {"gaussian", "laplace", "logistic"}, default="logistic"
        "gaussian" is RNADE-MoG, "laplace" RNADE-MoL; "logistic" (the default, chosen by
        ``benchmarks/defaults/select_component.py``) has the Gaussian's smooth mode and the
        Laplace's linear tails, so one unusual value costs nats in proportion to its
        distance, not its square.
    order : {"natural", "random"} or array-like of int, default="natural"
        The (first) ordering of the columns; further orderings of an ensemble are random.
    n_orderings : int, default=1
        Size of the ensemble of orderings (log-mean-exp of their probabilities).
    order_agnostic : bool, default=False
        Train a deep RNADE over all orderings instead of the tied RNADE.
    activation : {"auto", "logistic", "relu", "tanh"}, default="auto"
        Hidden activation; "auto" is the sigmoid for the tied RNADE, ReLU for the deep one.
    """ + _SHARED_DOC + """
    See Also
    --------
    NADEDensity : NADE for binary and categorical columns.
    MADEDensity : Masked autoencoder with mixture conditionals.
    sklearn.mixture.GaussianMixture : Gaussian mixture models.

    References
    ----------
    B. Uria, I. Murray and H. Larochelle. RNADE: The real-valued neural autoregressive
    density-estimator. NIPS 2013.

    B. Uria, I. Murray and H. Larochelle. A Deep and Tractable Density Estimator. ICML 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import RNADEDensity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 3))
    >>> est = RNADEDensity(hidden_layer_sizes=(16,), n_components=2, max_iter=5,
    ...                    random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 3)
    """

    _rescale = True
    # benchmarks/defaults/select_batch.py: about ten steps per epoch on small data.
    _auto_steps_per_epoch = 10

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        *,
        n_components: int = 10,
        component: str = "logistic",
        order: Any = "natural",
        n_orderings: int = 1,
        order_agnostic: bool = False,
        activation: str = "auto",
        init_params: str = "marginals",
        categorical_features: Any = None,
        feature_types: Any = None,
        quantization: Any = "auto",
        point_masses: str | None = "auto",
        min_scale: float = 1e-3,
        handle_unknown: str = "zero_probability",
        quantized_samples: str = "grid",
        batch_size: Any = "auto",
        learning_rate_init: float = 3e-3,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.component = component
        self.order = order
        self.n_orderings = n_orderings
        self.order_agnostic = order_agnostic
        self.activation = activation
        self.init_params = init_params
        super().__init__(**shared_params(locals()))
