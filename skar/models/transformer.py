"""ARTransformer: a decoder-only causal Transformer over the columns of a row (GPT, Radford et
al. 2018; attention of Vaswani et al. 2017), with a key/value cache for sampling.

The D columns of a row, taken in an ordering ``o``, are a sequence of D tokens. The input of
position ``i`` is the embedding of the value *before* it,

.. math::

    h^0_0 = s + P_0 + Q_{o_0}, \\qquad
    h^0_i = E_{o_{i-1}}(x_{o_{i-1}}) + P_i + Q_{o_i} \\quad (1 \\le i < D),

with ``s`` a learned start token, ``E_d`` the value embedding of column ``d`` (a lookup table
for binary and categorical codes, ``x w_d + b_d`` for a standardised continuous value), ``P_i``
a learned position embedding and ``Q_d`` a learned embedding of the column to predict (it tells
a position which column it predicts when several orderings share the weights, as in the double
positional encoding of sigma-GPT, Pannatier et al. 2024; for one ordering it is redundant with
``P_i``). ``L`` pre-norm blocks follow,

.. math::

    a &= h^{l} + \\mathrm{MHA}(\\mathrm{LN}(h^{l})), \\qquad
    h^{l+1} = a + \\mathrm{MLP}(\\mathrm{LN}(a)), \\\\
    \\mathrm{MHA}(u)_i &= \\mathrm{concat}_{\\text{heads}}
        \\sum_{j \\le i} \\mathrm{softmax}_j\\left(q_i^\\top k_j / \\sqrt{d_h}\\right) v_j,

and the parameters of column ``o_i`` are a per-column linear head on ``LN(h^L_i)``. Position
``i`` sees ``x_{o_0}, ..., x_{o_{i-1}}`` and nothing else (the causal mask ``j <= i`` plus the
one-step shift of the inputs), so one pass gives every conditional ``p(x_{o_i} | x_{o_<i})``.

**Scoring pass.** In evaluation mode without autograd the network runs a fused path
(:meth:`ARTransformer._forward_eval`) with the same arithmetic: position 0 reads only the
start token, so its states, keys and values are the same for every row and are computed once
per call (positions ``1..D-1`` run per row); rows go through all the blocks in chunks that
stay in cache; every linear map is one GEMM with the bias and the residual accumulated in
place; attention is the explicit masked softmax over a short sequence. It equals the module
path to float rounding.

**Key/value cache.** At generation step ``i`` only position ``i`` is new; the keys and values
of positions ``< i`` in every layer do not change (they depend only on earlier positions). The
cached sampler stores them and computes one query per layer per step: D steps of
``O(i d_model)`` attention, ``O(D^2 d_model)`` per row, instead of D full passes of
``O(D^2 d_model)`` each (``O(D^3 d_model)``).

With ``n_orderings > 1`` the weights are shared by several orderings (order-agnostic training,
Uria et al. 2014): each minibatch trains one ordering, and scoring averages the orderings'
probabilities.

**Conditioning** (``fit(X, y)``, :math:`p(x \\mid y)`): the encoder-decoder of Vaswani et al.
(2017). The encoder turns ``y`` into one token per ``y`` column,
``m_t = LN(sum_{u in t} c_u W_u + b_t)`` (:class:`skar.nn.ContextTokens`; no self-attention
among them, ``y`` having few columns), and every block of the decoder gets a cross-attention
sub-layer between its self-attention and its MLP,

.. math::

    a' = a + \\mathrm{MHA}(\\mathrm{LN}(a), m, m),

whose queries are the positions and whose keys and values are the ``y`` tokens. ``y`` is not a
position of the sequence, so causality in ``x`` is unchanged, and the key/value cache of the
sampler holds the self-attention only (the tokens are fixed for a row).
"""

from __future__ import annotations

import math
import warnings
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
    member_rows,
    shared_params,
    start_at_marginals,
)
from ..distributions import ColumnConditionals
from ..nn import (
    ColumnHeads,
    ConditionalTabularMixin,
    ContextTokens,
    OrderedNetwork,
    OrderingEnsemble,
    shift_right,
)
from ..schema import TabularSchema

__all__ = ["ARTransformer", "ARTransformerDensity", "CrossAttention", "sample_kv_cached"]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (nanoGPT's, with a cached single-query step).

    Parameters
    ----------
    d_model : int
    n_heads : int
        Must divide ``d_model``; each head has ``d_model // n_heads`` channels.
    dropout : float

    Attributes
    ----------
    use_sdpa : bool
        ``True`` (default): :func:`torch.nn.functional.scaled_dot_product_attention` with
        ``is_causal=True``. ``False``: the plain masked softmax, kept as the reference the
        tests compare against.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)
        self.use_sdpa = True

    def _heads(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, T, C = u.shape
        q, k, v = self.c_attn(u).split(C, dim=2)  # 3 x (B, T, C)
        hs = C // self.n_heads
        q = q.view(B, T, self.n_heads, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(B, T, self.n_heads, hs).transpose(1, 2)  # (B, H, T, hs)
        v = v.view(B, T, self.n_heads, hs).transpose(1, 2)  # (B, H, T, hs)
        return q, k, v

    def forward(self, u: Tensor) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``; position ``t`` attends to positions ``<= t``."""
        B, T, C = u.shape
        q, k, v = self._heads(u)
        p = self.dropout if self.training else 0.0
        if self.use_sdpa:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])  # (B, H, T, T)
            causal = torch.ones(T, T, dtype=torch.bool, device=u.device).tril()
            att = att.masked_fill(~causal, float("-inf"))
            att = F.dropout(torch.softmax(att, dim=-1), p, self.training)
            y = att @ v  # (B, H, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def step(self, u: Tensor, k_cache: Tensor, v_cache: Tensor, i: int) -> Tensor:
        """One new position ``i`` against the cached keys and values of positions ``< i``.

        Parameters
        ----------
        u : Tensor of shape (B, 1, C)
        k_cache, v_cache : Tensor of shape (B, H, D, hs)
            Written in place at position ``i``.
        i : int

        Returns
        -------
        Tensor of shape (B, 1, C)
        """
        B, _, C = u.shape
        q, k, v = self._heads(u)  # (B, H, 1, hs) each
        k_cache[:, :, i : i + 1] = k
        v_cache[:, :, i : i + 1] = v
        # The one query is the last position, so it may see every cached key: no mask. (SDPA's
        # is_causal would align the mask top-left and hide all but key 0.)
        y = F.scaled_dot_product_attention(
            q, k_cache[:, :, : i + 1], v_cache[:, :, : i + 1]
        )  # (B, H, 1, hs)
        y = y.transpose(1, 2).contiguous().view(B, 1, C)  # (B, 1, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise ``Linear(C, 4C) -> GELU -> Linear(4C, C) -> Dropout``."""

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: Tensor) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``."""
        return self.dropout(self.c_proj(self.gelu(self.c_fc(u))))


class Block(nn.Module):
    """Pre-norm Transformer block: ``h + MHA(LN(h))``, then ``a + MLP(LN(a))``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout)

    def forward(
        self, h: Tensor, cross: CrossAttention | None = None, memory: Tensor | None = None
    ) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``; ``cross`` attends to ``memory`` between the
        self-attention and the MLP (conditional networks)."""
        h = h + self.attn(self.ln_1(h))
        if cross is not None:
            h = h + cross(h, memory)
        return h + self.mlp(self.ln_2(h))

    def step(
        self,
        h: Tensor,
        k_cache: Tensor,
        v_cache: Tensor,
        i: int,
        cross: CrossAttention | None = None,
        memory: Tensor | None = None,
    ) -> Tensor:
        """``(B, 1, C)`` at position ``i`` -> ``(B, 1, C)``, reading and extending the cache."""
        h = h + self.attn.step(self.ln_1(h), k_cache, v_cache, i)
        if cross is not None:
            h = h + cross(h, memory)
        return h + self.mlp(self.ln_2(h))


class CrossAttention(nn.Module):
    """Pre-norm cross-attention of the positions to the context tokens:
    ``MHA(LN(h), m, m)`` (:class:`torch.nn.MultiheadAttention`), then dropout.

    Parameters
    ----------
    d_model, n_heads : int
    dropout : float
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, memory: Tensor) -> Tensor:
        """``(B, T, C)`` queries, ``(B, T_y, C)`` tokens -> ``(B, T, C)``."""
        out, _ = self.attn(self.ln(h), memory, memory, need_weights=False)
        return self.drop(out)


class ARTransformer(OrderedNetwork):
    """The decoder-only causal Transformer over the columns of a row (a torch module).

    Parameters
    ----------
    input_sizes : list of int
        Categories per categorical column (:attr:`skar.schema.TabularSchema.input_sizes`);
        ignored for other kinds.
    kinds : list of str
        Column kinds: binary columns get a 2-row embedding table, categorical columns a K-row
        table, continuous columns a linear map ``x w_d + b_d``.
    output_sizes : list of int
        Conditional parameters per column (``family.n_params``).
    d_model : int
        Width ``C`` of the residual stream.
    n_heads : int
        Attention heads; must divide ``d_model``.
    n_layers : int
        Number of blocks.
    dropout : float
        Dropout on the embeddings, the attention weights and the residual branches (training
        only).
    n_orderings : int
        Number of orderings sharing the weights.
    order : "natural", "random" or array of int
    seed : int
        Seeds the orderings and the per-minibatch ordering draws.
    context_sizes : list of int or None, default=None
        Units of every column of the conditioning ``y``
        (:meth:`skar.nn.ConditionalTabularMixin._context_sizes`); None for an unconditional
        network, which then has no encoder and no cross-attention.

    Attributes
    ----------
    ensemble : skar.nn.OrderingEnsemble
        The orderings sharing the weights (``orderings[k]``, ``positions[k, d]``) and the
        per-minibatch ordering draws.
    heads : skar.nn.ColumnHeads
        The per-column output heads.
    context_tokens : skar.nn.ContextTokens or None
        The encoder of ``y`` (conditional networks only), followed by ``ln_context``.
    cross : torch.nn.ModuleList of CrossAttention or None
        One cross-attention per block (conditional networks only).
    fast_eval : bool
        ``True`` (default): in evaluation mode without autograd (scoring, the plain sampler),
        an unconditional network runs :meth:`_forward_eval`, the same arithmetic arranged for
        speed (equal to the module path to float rounding); ``False``: always the module
        path (the reference the tests compare against).
    eval_chunk_rows : int
        Rows that :meth:`_forward_eval` takes through the whole network at once on a CPU (an
        accelerator takes the whole batch): by default
        ``max(32, 16384 // d_model)`` (256 at ``d_model=64``), so that a chunk's activations
        stay in the core's caches from one layer to the next (measured on one Zen 3 core:
        at ``d_model=64``, 128 to 512 rows score alike and 1024 rows a third slower; at
        ``d_model=32``, 512 rows a little faster than 128).
    """

    def __init__(
        self,
        input_sizes: list[int],
        kinds: list[str],
        output_sizes: list[int],
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.0,
        n_orderings: int = 1,
        order: Any = "natural",
        seed: int = 0,
        context_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"n_heads={n_heads} must divide d_model={d_model} (each head gets "
                "d_model // n_heads channels)"
            )
        D = len(kinds)
        C = d_model
        rng = np.random.default_rng(seed)
        self.n_features = D
        self.d_model = C
        self.n_heads = n_heads

        # Value embeddings, column order: discrete columns index one shared table at their own
        # offset; continuous columns have their own (w_d, b_d).
        sizes = [2 if k == "binary" else int(s) for k, s in zip(kinds, input_sizes)]
        disc = [d for d, k in enumerate(kinds) if k != "continuous"]
        cont = [d for d, k in enumerate(kinds) if k == "continuous"]
        offsets = np.concatenate([[0], np.cumsum([sizes[d] for d in disc])]).astype(np.int64)
        self.value_table = nn.Embedding(max(int(offsets[-1]), 1), C)
        self.value_w = nn.Parameter(torch.empty(len(cont), C))
        self.value_b = nn.Parameter(torch.zeros(len(cont), C))
        self.register_buffer("_disc_cols", torch.as_tensor(disc, dtype=torch.long),
                             persistent=False)
        self.register_buffer("_disc_offsets", torch.as_tensor(offsets[:-1], dtype=torch.long),
                             persistent=False)
        self.register_buffer("_cont_cols", torch.as_tensor(cont, dtype=torch.long),
                             persistent=False)
        # Where column d's embedding lives: its table offset, or its row of value_w.
        slot = np.zeros(D, dtype=np.int64)
        slot[disc] = offsets[:-1]
        slot[cont] = np.arange(len(cont))
        self._slot = slot.tolist()
        self._continuous = [k == "continuous" for k in kinds]

        self.start = nn.Parameter(torch.empty(C))
        self.wpe = nn.Embedding(D, C)  # position i
        self.wqe = nn.Embedding(D, C)  # the column predicted at position i
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(C, n_heads, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(C)
        # Scoring (eval mode, no autograd, no context) takes _forward_eval, in chunks of rows.
        self.fast_eval = True
        self.eval_chunk_rows = max(32, 16384 // C)

        # Per-column output heads on LN(h^L); initialised in _init_weights.
        self.heads = ColumnHeads(output_sizes, C, init=False, exact=False)
        self.ensemble = OrderingEnsemble(make_orderings(D, n_orderings, order, rng, distinct=True),
                                         rng)
        self._init_weights(n_layers)

        # Created last, and only with y: an unconditional network draws what it drew before.
        self.context_tokens = self.ln_context = self.cross = None
        if context_sizes is not None:
            self.context_tokens = ContextTokens(context_sizes, C)
            self.ln_context = nn.LayerNorm(C)
            self.cross = nn.ModuleList(
                CrossAttention(C, n_heads, dropout) for _ in range(n_layers)
            )
            for block in self.cross:  # GPT-2's scaling of a residual branch's projection
                nn.init.normal_(block.attn.out_proj.weight, std=0.02 / math.sqrt(2 * n_layers))

    def _init_weights(self, n_layers: int) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L)."""
        for name, p in self.named_parameters():
            if name.startswith("heads."):
                if name == "heads.weight":
                    self.heads.normal_(std=0.02)  # zero biases and padding
            elif name.endswith("bias") or name == "value_b":
                nn.init.zeros_(p)
            elif name.startswith(("blocks", "ln_f")) and p.dim() == 1:  # LayerNorm gains
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * max(n_layers, 1)))
            else:
                nn.init.normal_(p, std=0.02)

    def set_sdpa(self, enabled: bool) -> None:
        """Use the fused SDPA kernel (``True``) or the plain masked-softmax path everywhere."""
        for block in self.blocks:
            block.attn.use_sdpa = enabled

    # ------------------------------------------------------------------ one parallel pass
    def embed_values(self, x: Tensor) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, D, C)`` value embeddings ``E_d(x_d)``, column order."""
        B = x.shape[0]
        w = self.value_table.weight
        e = w.new_zeros(B, self.n_features, self.d_model)  # (B, D, C)
        if self._disc_cols.numel():
            idx = self._disc_offsets + x[:, self._disc_cols].long()  # (B, n_disc)
            e[:, self._disc_cols] = self.value_table(idx)  # (B, n_disc, C)
        if self._cont_cols.numel():
            v = x[:, self._cont_cols].unsqueeze(-1).to(w.dtype)  # (B, n_cont, 1)
            e[:, self._cont_cols] = v * self.value_w + self.value_b  # (B, n_cont, C)
        return e

    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """The column heads' biases to ``theta0``, their weights into the parameters flagged
        ``independent`` to zero (:meth:`skar.nn.ColumnHeads.init_marginals`)."""
        self.heads.init_marginals(theta0, independent)

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_params)`` conditional parameters; ``context``
        ``(B, U)`` is required by a conditional network and refused by another."""
        if self._use_eval_path(context):
            return self._forward_eval(x, member)
        return self.forward_embeddings(self.embed_values(x), member, context)

    def encode_context(self, context: Tensor | None) -> Tensor | None:
        """``(B, U)`` context units -> ``(B, T_y, C)`` tokens (the encoder), checked against
        the network's kind: None exactly for an unconditional network."""
        if (context is None) != (self.cross is None):
            raise ValueError(
                "this ARTransformer was built "
                + ("with" if self.cross is not None else "without")
                + " cross-attention; pass context exactly when it has it"
            )
        if context is None:
            return None
        return self.ln_context(self.context_tokens(context))  # (B, T_y, C)

    def _cross(self, li: int) -> CrossAttention | None:
        return None if self.cross is None else self.cross[li]

    def forward_embeddings(
        self, e: Tensor, member: int = 0, context: Tensor | None = None
    ) -> Tensor:
        """The Transformer on value embeddings ``(B, D, C)`` (column order) -> ``(B, n_params)``.

        Split from :meth:`forward` so tests can differentiate with respect to the embeddings
        of discrete columns, whose codes have no gradient.
        """
        if self._use_eval_path(context):
            return self._forward_eval(None, member, e)
        B, D, C = e.shape
        memory = self.encode_context(context)  # (B, T_y, C) or None
        o = self.orderings[member]  # (D,)
        # Shift by one: position i reads the value at position i-1, position 0 the start token.
        tok = shift_right(e[:, o], self.start)  # (B, D, C)
        h = self.drop(tok + self.wpe.weight + self.wqe(o))  # (B, D, C)
        for li, block in enumerate(self.blocks):
            h = block(h, self._cross(li), memory)  # (B, D, C)
        h = self.ln_f(h)
        h_col = h[:, self.positions[member]].transpose(0, 1)  # (D, B, C), column order
        theta = self.heads(h_col, torch.arange(D, device=h.device))  # (D, B, K_max)
        return self.heads.flat(theta.transpose(0, 1))  # (B, sum of n_params)

    # ------------------------------------------------------------------ the scoring pass
    def _use_eval_path(self, context: Tensor | None) -> bool:
        """Scoring: eval mode, no autograd, an unconditional network, and ``fast_eval``."""
        # getattr: a network pickled before these attributes existed takes the path too.
        return (getattr(self, "fast_eval", True) and not self.training and context is None
                and self.cross is None and not torch.is_grad_enabled())

    def _forward_eval(self, x: Tensor | None, member: int,
                      embeddings: Tensor | None = None) -> Tensor:
        """:meth:`forward_embeddings` without autograd, dropout or context, for scoring.

        Parameters
        ----------
        x : Tensor of shape (B, D) or None
            Encoded rows (None when ``embeddings`` is given).
        member : int
        embeddings : Tensor of shape (B, D, C), optional
            Value embeddings instead of rows (:meth:`forward_embeddings`).

        Returns
        -------
        Tensor of shape (B, n_params)

        Notes
        -----
        The same arithmetic as the module path, arranged for one CPU thread:

        - position 0's input is ``s + P_0 + Q_{o_0}`` whatever the row, and it attends to
          itself only, so its states in every block (and its keys and values) are one
          computation per call, on one row; per row only positions ``1..D-1`` run, a factor
          ``(D - 1) / D`` of the products;
        - rows go through the whole network in chunks of :attr:`eval_chunk_rows`, so that a
          chunk's activations (``4 C`` floats per position in the MLP) stay in the core's L2
          cache from one layer to the next instead of streaming through memory (the chunking
          is most of the gain);
        - activations are 2-D ``(rows * (D - 1), C)`` and every linear map is one GEMM:
          ``h <- h + (u W^T + b)`` is ``h += b`` then ``h += u W^T`` in place (``addmm``
          into ``out=h``); GELU (the exact, erf one) runs in place;
        - with every column continuous, the tokens ``x w_d + (b_d + P_i + Q_{o_i})`` are one
          fused multiply-add from the rows (no ``(B, D, C)`` embedding tensor);
        - attention is the explicit masked softmax, with the scores stored transposed
          (key, query) so the softmax over keys runs along dim -2, whose kernel vectorises
          across the queries; for ``D`` of a few dozen positions this beats the fused SDPA
          kernel, whose blocking is made for long sequences.

        Only the order of some additions differs (``(h + b) + u W^T`` instead of
        ``h + (u W^T + b)``, ``x w + (b + P + Q)`` instead of ``(x w + b) + P + Q``), so the
        result equals the module path to float rounding (``tests/test_transformer.py``
        checks it against the plain masked-softmax path, to 1e-5 in float32 and 1e-12 in
        float64).
        """
        ref = self.value_table.weight
        dtype, device = ref.dtype, ref.device
        B = (x if embeddings is None else embeddings).shape[0]
        D, C, H = self.n_features, self.d_model, self.n_heads
        hs = C // H
        o = self.orderings[member]  # (D,)
        # Position i's token plus P_i + Q_{o_i}; position 0 holds s + P_0 + Q_{o_0}.
        pos_bias = self.wpe.weight + self.wqe(o)  # (D, C)
        # Position 0 reads the start token only, so its states, keys and values are the same
        # for every row: computed once here (the module path on one row), and only positions
        # 1..D-1 run per row (T = D - 1 of them: (D - 1) / D of the products).
        h0 = (self.start + pos_bias[0]).view(1, 1, C)
        kv0 = []
        for block in self.blocks:
            _, k0, v0 = block.attn._heads(block.ln_1(h0))  # (1, H, 1, hs) each
            kv0.append((k0, v0))
            h0 = block(h0)
        theta0 = self.heads(self.ln_f(h0), o[:1])[0]  # (1, K_max)
        T = D - 1
        # Query position q + 1 sees keys j <= q + 1: in the transposed (key j, query q)
        # scores, -inf where j >= q + 2.
        mask_t = torch.full((D, T), float("-inf"), dtype=dtype, device=device).tril(-2)
        scale = 1.0 / math.sqrt(hs)
        pos_of = self.positions[member]
        out = torch.empty(B, self.heads.flat_index.numel(), dtype=dtype, device=device)
        # Chunks are for a CPU core's caches; an accelerator takes the whole batch at once.
        step = max(B, 1) if device.type != "cpu" else max(
            int(getattr(self, "eval_chunk_rows", max(32, 16384 // C))), 1)
        k_buf = torch.empty(min(step, B), H, D, hs, dtype=dtype, device=device)
        v_buf = torch.empty_like(k_buf)
        src = o[:-1]  # position i >= 1 reads column o_{i-1}
        all_continuous = embeddings is None and not self._disc_cols.numel()
        if all_continuous:
            # x w_d + (b_d + P_i + Q_{o_i}): the token of every position in one fused
            # multiply-add from the rows (value_w's rows are the columns, in order).
            tok_w = self.value_w[src]  # (T, C)
            tok_b = self.value_b[src] + pos_bias[1:]  # (T, C)
        for s0 in range(0, B, step):
            rows = x[s0 : s0 + step] if embeddings is None else embeddings[s0 : s0 + step]
            n = rows.shape[0]
            theta = torch.empty(D, n, theta0.shape[-1], dtype=dtype, device=device)
            theta[0] = theta0
            if T:
                if all_continuous:
                    v = rows[:, src].unsqueeze(-1).to(dtype)  # (n, T, 1)
                    h = torch.addcmul(tok_b, v, tok_w).view(n * T, C)  # (nT, C)
                else:
                    # Embedding per chunk too: its (n, D, C) values are read while in cache.
                    e = self.embed_values(rows) if embeddings is None else rows
                    h = torch.add(e[:, src], pos_bias[1:]).view(n * T, C)  # (nT, C)
                for block, (k0, v0) in zip(self.blocks, kv0):
                    h = self._eval_block(block, h, k0, v0, k_buf[:n], v_buf[:n], mask_t,
                                         scale)
                h = F.layer_norm(h, (C,), self.ln_f.weight, self.ln_f.bias, self.ln_f.eps)
                # Heads in position order (position i is column o_i's head); the positions go
                # to column order on the K_max parameters rather than on the C channels.
                theta[1:] = self.heads(h.view(n, T, C).transpose(0, 1), o[1:])
            out[s0 : s0 + n] = self.heads.flat(theta[pos_of].transpose(0, 1))
        return out

    @staticmethod
    def _eval_block(block: Block, h: Tensor, k0: Tensor, v0: Tensor, k_buf: Tensor,
                    v_buf: Tensor, mask_t: Tensor, scale: float) -> Tensor:
        """One block of :meth:`_forward_eval` on positions 1..D-1, ``h`` of shape
        ``(n * (D - 1), C)``, updated in place; ``k0``, ``v0`` are position 0's keys and
        values, ``k_buf``, ``v_buf`` ``(n, H, D, hs)`` scratch space for all keys and values."""
        attn, mlp = block.attn, block.mlp
        n, H, D, hs = k_buf.shape
        T, C = D - 1, H * hs
        u = F.layer_norm(h, (C,), block.ln_1.weight, block.ln_1.bias, block.ln_1.eps)
        qkv = torch.addmm(attn.c_attn.bias, u, attn.c_attn.weight.t())  # (nT, 3C)
        q, k, v = qkv.view(n, T, 3, H, hs).permute(2, 0, 3, 1, 4).unbind(0)  # (n, H, T, hs)
        k_buf[:, :, :1] = k0
        k_buf[:, :, 1:] = k
        v_buf[:, :, :1] = v0
        v_buf[:, :, 1:] = v
        # Scores transposed, (key j, query q): the softmax over keys then runs along dim -2,
        # whose kernel vectorises across the queries (along a last dim of a few dozen entries
        # it cannot fill its vectors).
        # One batched product with the mask and the scale folded in:
        # mask + (k q^T) / sqrt(d_h), batch (n * H).
        att = torch.baddbmm(mask_t.expand(n * H, D, T), k_buf.view(n * H, D, hs),
                            q.reshape(n * H, T, hs).transpose(1, 2), alpha=scale)
        att = torch.softmax(att, dim=-2)  # (n H, D, T)
        y = torch.bmm(att.transpose(1, 2), v_buf.view(n * H, D, hs))  # (n H, T, hs)
        y = y.view(n, H, T, hs).transpose(1, 2).reshape(n * T, C)
        # In place through out= (not addmm_, which FlopCounterMode does not count).
        torch.addmm(h.add_(attn.c_proj.bias), y, attn.c_proj.weight.t(), out=h)
        u = F.layer_norm(h, (C,), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)
        f = torch.addmm(mlp.c_fc.bias, u, mlp.c_fc.weight.t())  # (nT, 4C)
        torch.ops.aten.gelu_(f)
        return torch.addmm(h.add_(mlp.c_proj.bias), f, mlp.c_proj.weight.t(), out=h)

    # ------------------------------------------------------------------ one cached step
    def new_cache(self, batch_size: int, device: Any, dtype: torch.dtype) -> list[Tensor]:
        """Empty key/value caches: ``2 * n_layers`` tensors of shape (B, H, D, hs)."""
        shape = (batch_size, self.n_heads, self.n_features, self.d_model // self.n_heads)
        return [torch.zeros(shape, device=device, dtype=dtype) for _ in range(2 * len(self.blocks))]

    def embed_column(self, values: Tensor, d: int) -> Tensor:
        """``(B,)`` encoded values of column ``d`` -> ``(B, C)`` value embeddings ``E_d``."""
        s = self._slot[d]
        if self._continuous[d]:
            v = values.unsqueeze(-1).to(self.value_w.dtype)  # (B, 1)
            return v * self.value_w[s] + self.value_b[s]  # (B, C)
        return self.value_table(s + values.long())  # (B, C)

    def step(
        self,
        x: Tensor,
        i: int,
        member: int,
        cache: list[Tensor],
        memory: Tensor | None = None,
    ) -> Tensor:
        """Parameters of column ``o_i`` from the values at positions ``< i`` and the cache.

        Parameters
        ----------
        x : Tensor of shape (B, D)
            Encoded rows; only the column at position ``i - 1`` is read (earlier ones are
            already in the cache).
        i : int
            The position to predict; steps must come in order ``0, 1, ..., D-1``.
        member : int
        cache : list of Tensor
            From :meth:`new_cache`; extended in place with position ``i``.
        memory : Tensor of shape (B, T_y, C), optional
            The ``y`` tokens of a conditional network (:meth:`encode_context`).

        Returns
        -------
        Tensor of shape (B, n_params_d)
            The parameters of column ``d = o_i``.
        """
        o = self.ensemble.host_orderings[member]
        d = o[i]
        B, C = x.shape[0], self.d_model
        if i == 0:
            tok = self.start.expand(B, C)  # (B, C)
        else:
            tok = self.embed_column(x[:, o[i - 1]], o[i - 1])  # (B, C)
        h = (tok + self.wpe.weight[i] + self.wqe.weight[d]).unsqueeze(1)  # (B, 1, C)
        for li, block in enumerate(self.blocks):
            h = block.step(h, cache[2 * li], cache[2 * li + 1], i, self._cross(li),
                           memory)  # (B, 1, C)
        h = self.ln_f(h[:, 0])  # (B, C)
        return self.heads.column(h, d)  # (B, n_params_d)


@torch.no_grad()
def sample_kv_cached(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """Exact ancestral sampling with a key/value cache: one Transformer step per position.

    Draws exactly what :func:`skar.base.sample_plain` draws with the same generator: members
    are drawn the same way, members are visited in the same order, and every column is drawn
    by :meth:`ColumnConditionals.sample_column` in generation order, so both loops consume the
    same random numbers in the same order. Only the arithmetic differs (one query against
    cached keys instead of a full causal pass), by float rounding.

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is an :class:`ARTransformer`.
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    context : Tensor of shape (n_samples, U), optional
        The context units of a conditional network, one row per sample.

    Returns
    -------
    Tensor of shape (n_samples, D)
        Encoded rows.
    """
    net, cond = module.network, module.conditionals
    ref = next(module.parameters())
    device, dtype = ref.device, ref.dtype
    k = net.n_members
    D = cond.n_features
    # Encoded rows are float32 whatever the module's dtype, as in sample_plain, so both loops
    # round every drawn value the same way before it is read back.
    x = torch.zeros(n_samples, D, device=device)
    for m, rows in member_rows(k, n_samples, generator, device):
        n = rows.numel()
        xm = torch.zeros(n, D, device=device)
        params = torch.zeros(n, cond.n_params, device=device, dtype=dtype)
        cache = net.new_cache(n, device, dtype)
        memory = net.encode_context(None if context is None else context[rows])
        for i, d in enumerate(net.ordering(m).tolist()):
            start, stop = cond.offsets[d], cond.offsets[d + 1]
            params[:, start:stop] = net.step(xm, i, m, cache, memory)
            xm[:, d] = cond.sample_column(params, d, generator)
        x[rows] = xm
    return x


def sample_cached(*args: Any, **kwargs: Any) -> Tensor:
    """Deprecated alias of :func:`sample_kv_cached`, renamed so the cached samplers of two models
    have distinct names; it will be removed in a future release."""
    warnings.warn(
        "skar.models.transformer.sample_cached was renamed sample_kv_cached; the old name will be "
        "removed",
        FutureWarning,
        stacklevel=2,
    )
    return sample_kv_cached(*args, **kwargs)


class ARTransformerDensity(ConditionalTabularMixin, BaseAutoregressiveDensity):
    """Density estimation with a decoder-only causal Transformer, for any mix of column kinds.

    ``fit(X)`` learns ``p(x)``; ``fit(X, y)`` learns the conditional density ``p(x | y)``: an
    encoder turns ``y`` (one or several columns, numeric or categorical) into one token per
    column, and every block cross-attends to them (:class:`skar.nn.ConditionalTabularMixin`
    says how ``y`` is encoded, scored and sampled).

    The columns of a row, in a fixed (or random) ordering, are a sequence; a GPT-style decoder
    reads the values before position ``i`` and outputs the parameters of
    ``p(x_{o_i} | x_{o_<i})``: a Bernoulli (binary columns), a Categorical (categorical
    columns) or a mixture of ``n_components`` components (continuous columns). Training and
    scoring cost one causal pass per row (per ordering); sampling uses a key/value cache, one
    single-query step per position.

    Parameters
    ----------
    n_layers : int, default=2
        Number of Transformer blocks.
    n_heads : int, default=4
        Attention heads per block; must divide ``d_model``.
    d_model : int, default=64
        Width of the embeddings and the residual stream.
    dropout : float, default=0.0
        Dropout rate in training (embeddings, attention weights, residual branches).
    n_components : int, default=5
        Mixture components of each continuous column's conditional.
    component : {"gaussian", "laplace", "logistic"}, default="logistic"
        Mixture component family of continuous columns. The logistic (the default, chosen by
        ``benchmarks/defaults/select_component.py``) has the Gaussian's smooth mode and the
        Laplace's linear tails, so one unusual value costs nats in proportion to its
        distance, not its square.
    n_orderings : int, default=1
        Number of orderings sharing the weights. With more than one, each minibatch trains one
        ordering drawn at random, and ``score_samples`` averages the orderings' probabilities.
    order : {"natural", "random"} or array-like of int, default="natural"
        The first ordering: the columns' own order, a random permutation, or a given
        permutation. With ``n_orderings > 1`` the other orderings are independent random
        permutations (an ensemble of one repeated ordering would be one model).
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
        The trained skorch net; ``net_.module_.network`` is the :class:`ARTransformer`.
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
    skar.MADEDensity : Masked-MLP autoregressive density (faster to train, no cache).
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    A. Vaswani et al. Attention Is All You Need. NeurIPS 2017.
    A. Radford, K. Narasimhan, T. Salimans and I. Sutskever. Improving Language Understanding
    by Generative Pre-Training. 2018.
    B. Uria, I. Murray and H. Larochelle. A Deep and Tractable Density Estimator. ICML 2014.
    A. Pannatier, E. Courdier and F. Fleuret. sigma-GPTs: A New Approach to Autoregressive
    Models. ECML PKDD 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import ARTransformerDensity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 3))
    >>> est = ARTransformerDensity(d_model=16, n_layers=1, max_iter=3, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseAutoregressiveDensity._parameter_constraints,
        **RECIPE_CONSTRAINTS,
        "init_params": [StrOptions({"marginals", "random"})],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "d_model": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        **MIXTURE_CONSTRAINTS,
        **ORDERING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_layers: int = 2,
        n_heads: int = 4,
        d_model: int = 64,
        *,
        dropout: float = 0.0,
        n_components: int = 5,
        component: str = "logistic",
        n_orderings: int = 1,
        order: Any = "natural",
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
        lr_schedule: str | None = "cosine",
        average_weights: float = 0.99,
        patience_fraction: float = 0.5,
        refit: bool = True,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.d_model = d_model
        self.dropout = dropout
        self.n_components = n_components
        self.component = component
        self.n_orderings = n_orderings
        self.order = order
        self.init_params = init_params
        super().__init__(**shared_params(locals()))

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
    ) -> ARTransformer:
        return ARTransformer(
            input_sizes=schema.input_sizes,
            kinds=schema.kinds,
            output_sizes=[f.n_params for f in conditionals.families],
            d_model=self.d_model,
            n_heads=self.n_heads,
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
        """Draw encoded rows with the key/value cache (equal to the plain loop's draw)."""
        return sample_kv_cached(self.net_.module_, n_samples, generator, context)
