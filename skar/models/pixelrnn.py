"""PixelRNN (van den Oord, Kalchbrenner & Kavukcuoglu, 2016): two-dimensional LSTMs over an image,
Row LSTM and Diagonal BiLSTM, with residual connections, masks A and B over pixels and channels,
class conditioning and the outputs of PixelCNN (Bernoulli, K-level Categorical, the discretized
logistic mixture of PixelCNN++).

An image ``x`` of shape ``(C, H, W)`` is generated in raster order, and channel by channel within
a pixel,

.. math::

    p(x \\mid y) = \\prod_{i=1}^{H} \\prod_{j=1}^{W} \\prod_{c=1}^{C}
        p\\big(x_{c,i,j} \\mid x_{:, <(i,j)},\\; x_{<c, i, j},\\; y\\big).

The network is a ``k x k`` convolution with **mask A** (a feature map of channel group ``g``
sees the pixels above, those left in the row, and the channels ``< g`` of the current pixel),
then ``n_layers`` recurrent layers with residual connections, ``r' = r + W_{1\\times1} h``,
whose input-to-state convolutions have **mask B** (groups ``<= g`` at the current pixel), then
the masked ``1 x 1`` head of :class:`skar.images.ImageHead`. Every layer is an LSTM,

.. math::

    [o, f, i, g] = \\sigma\\big(K^{ss} \\circledast h_{\\text{prev}} +
        K^{is} \\circledast r + V^\\top e_y\\big),\\qquad
    c = f \\odot c_{\\text{prev}} + i \\odot g,\\qquad h = o \\odot \\tanh(c),

(``sigma`` is the logistic function for ``o, f, i`` and ``tanh`` for ``g``; ``e_y`` the one-hot
class of a class-conditional model), run over the image in one of two ways:

* **Row LSTM** (``layer="row_lstm"``): row by row from the top. ``K^{is}`` is a masked
  ``1 x 3`` convolution of the current row (computed for every row at once) and ``K^{ss}`` a
  ``1 x 3`` convolution of the states of the row above, so the state at ``(i, j)`` sees a
  triangle above it: a Row LSTM has a blind spot (a pixel far left in its row, or far right in
  the rows just above, reaches it only through enough layers).
* **Diagonal BiLSTM** (``layer="diagonal_bilstm"``): the image is *skewed*, row ``i`` shifted
  right by ``i``, so that the diagonals become columns; an LSTM runs column by column, the
  state at ``(i, j)`` reading the states at ``(i, j - 1)`` and ``(i - 1, j)`` through a
  ``2 x 1`` convolution ``K^{ss}``, with a ``1 x 1`` masked ``K^{is}``. A second LSTM runs the
  same way on the image mirrored left-right, and its output is **shifted down one row** before
  the two are added: unshifted, its state at ``(i, j)`` would have seen ``(i, j + 1)``, a future
  pixel. Together they see every pixel above and to the left, after one layer.

Training evaluates every conditional in one pass (the recurrences run over rows or diagonals,
``H`` or ``H + W - 1`` sequential steps per layer, not ``C H W``).

**Sampling.** The generic loop of :func:`skar.base.sample_plain` runs one full pass per pixel
channel (``C H W`` passes of ``n_layers`` recurrences). Both layers have exact incremental
samplers instead, which carry the LSTM states: :func:`sample_row_lstm` computes the
state-to-state term of the row above once per row, :func:`sample_diagonal` the right-to-left
states of the row above once per row (a scan of ``W`` cells), and each pixel channel then
costs ``n_layers`` LSTM cells at one position. Both draw exactly what the plain loop draws with
the same generator.

References
----------
A. van den Oord, N. Kalchbrenner and K. Kavukcuoglu. Pixel Recurrent Neural Networks. ICML 2016.
T. Salimans, A. Karpathy, X. Chen and D. P. Kingma. PixelCNN++. ICLR 2017.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor, nn

from ..base import DensityModule, shared_params
from ..distributions import ColumnConditionals
from ..images import (
    IMAGE_CONSTRAINTS,
    BaseImageDensity,
    ImageHead,
    ImageNetwork,
    ImageSchema,
    channel_groups,
    channel_mask,
    raster_mask,
)
from ..nn import MaskedConv2d

__all__ = [
    "DiagonalBiLSTMLayer",
    "PixelRNN",
    "PixelRNNDensity",
    "RowLSTMLayer",
    "sample_diagonal",
    "sample_row_lstm",
    "skew",
    "unskew",
]


def skew(x: Tensor) -> Tensor:
    """``(B, F, H, W)`` -> ``(B, F, H, H + W - 1)``, row ``i`` shifted right by ``i``.

    ``out[..., i, i + j] = x[..., i, j]``, zeros elsewhere: the diagonals ``i + j = t`` of the
    image become the columns ``t``. Computed by padding each row to ``H + W`` and reading the
    flat buffer in rows of ``H + W - 1``.
    """
    B, F_, H, W = x.shape
    flat = F.pad(x, (0, H)).reshape(B, F_, H * (W + H))  # (B, F, H (W + H))
    return flat[:, :, : H * (W + H - 1)].reshape(B, F_, H, W + H - 1)


def unskew(s: Tensor, width: int) -> Tensor:
    """The inverse of :func:`skew`: ``(B, F, H, H + W - 1)`` -> ``(B, F, H, W)``."""
    B, F_, H, T = s.shape
    flat = F.pad(s.reshape(B, F_, H * T), (0, H))  # (B, F, H (T + 1))
    return flat.reshape(B, F_, H, T + 1)[..., :width]


def _lstm_step(
    gates: Tensor, c: Tensor, n_hidden: int, dim: int
) -> tuple[Tensor, Tensor]:
    """One LSTM update from the ``4 h`` pre-activations ``[o, f, i, g]`` along ``dim``."""
    o, f, i, g = gates.split(n_hidden, dim=dim)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class _Residual(nn.Module):
    """What both layers share: the class bias of the gates and the residual output
    ``r + W_{1 x 1} h`` (masked B by channel group)."""

    def _init_residual(
        self, n_filters: int, hidden_size: int, n_channels: int, n_classes: int, n_gates: int
    ) -> None:
        self.hidden_size = hidden_size
        mask = channel_mask(channel_groups(n_filters, n_channels),
                            channel_groups(hidden_size, n_channels), strict=False)
        self.out = MaskedConv2d(hidden_size, n_filters, 1, mask[:, :, None, None])
        self.embed = nn.Embedding(n_classes, n_gates) if n_classes else None

    def class_bias(self, context: Tensor | None) -> Tensor | float:
        """Per-image gate bias ``V^T e_y``, ``(B, n_gates, 1, 1)``, or 0."""
        if self.embed is None:
            return 0.0
        return self.embed(context.long())[:, :, None, None]


class RowLSTMLayer(_Residual):
    """A Row LSTM layer with a residual connection (a torch module).

    Parameters
    ----------
    n_filters : int
        Maps of the residual stream (in and out).
    hidden_size : int
        Maps of the LSTM state ``h`` (and cell ``c``).
    n_channels : int
        Image channels ``C``, for the channel masks.
    n_classes : int, default=0
        Classes of a class-conditional model.
    """

    def __init__(self, n_filters: int, hidden_size: int, n_channels: int,
                 n_classes: int = 0) -> None:
        super().__init__()
        gate_groups = np.tile(channel_groups(hidden_size, n_channels), 4)
        in_groups = channel_groups(n_filters, n_channels)
        mask = raster_mask(gate_groups, in_groups, (1, 3), strict=False)
        self.input_to_state = MaskedConv2d(n_filters, 4 * hidden_size, (1, 3), mask,
                                           padding=(0, 1))
        # The row above is entirely in the past: every channel, left and right, may pass.
        self.state_to_state = nn.Conv1d(hidden_size, 4 * hidden_size, 3, padding=1)
        self._init_residual(n_filters, hidden_size, n_channels, n_classes, 4 * hidden_size)

    def forward(self, r: Tensor, context: Tensor | None = None) -> Tensor:
        """``(B, n_filters, H, W)`` -> ``(B, n_filters, H, W)``."""
        B, _, H, W = r.shape
        hs = self.hidden_size
        a = self.input_to_state(r) + self.class_bias(context)  # (B, 4h, H, W), all rows at once
        h = c = r.new_zeros(B, hs, W)
        rows = []
        for i in range(H):
            gates = a[:, :, i] + self.state_to_state(h)  # (B, 4h, W)
            h, c = _lstm_step(gates, c, hs, dim=1)
            rows.append(h)
        return r + self.out(torch.stack(rows, dim=2))  # (B, h, H, W) -> residual


class DiagonalBiLSTMLayer(_Residual):
    """A Diagonal BiLSTM layer with a residual connection (a torch module).

    Both directions run in one loop over the ``H + W - 1`` diagonals, their weights kept apart
    by grouped convolutions.

    Parameters
    ----------
    n_filters : int
        Maps of the residual stream (in and out).
    hidden_size : int
        Maps of each direction's LSTM state.
    n_channels : int
        Image channels ``C``, for the channel masks.
    n_classes : int, default=0
        Classes of a class-conditional model.
    shift : bool, default=True
        Shift the right-to-left direction down one row. ``False`` only to show, in a test, that
        the unshifted layer sees a future pixel.
    """

    def __init__(self, n_filters: int, hidden_size: int, n_channels: int,
                 n_classes: int = 0, shift: bool = True) -> None:
        super().__init__()
        hs = hidden_size
        gate_groups = np.tile(channel_groups(hs, n_channels), 4)
        in_groups = channel_groups(n_filters, n_channels)
        mask = channel_mask(gate_groups, in_groups, strict=False)[:, :, None, None]
        # Left-to-right and right-to-left input-to-state maps, stacked: (8h, F, 1, 1).
        self.input_to_state = MaskedConv2d(n_filters, 8 * hs, 1, torch.cat([mask, mask]))
        # 2 x 1 state-to-state convolution along a skewed column: (i - 1, i) -> i; one group
        # per direction.
        self.state_to_state = nn.Conv1d(2 * hs, 8 * hs, 2, groups=2)
        self.shift = shift
        self._init_residual(n_filters, hidden_size, n_channels, n_classes, 8 * hs)

    def forward(self, r: Tensor, context: Tensor | None = None) -> Tensor:
        """``(B, n_filters, H, W)`` -> ``(B, n_filters, H, W)``."""
        B, F_, H, W = r.shape
        hs = self.hidden_size
        w = self.input_to_state.weight * self.input_to_state.mask  # (8h, F, 1, 1)
        bias = self.input_to_state.bias
        a_lr = F.conv2d(r, w[: 4 * hs], bias[: 4 * hs])
        a_rl = F.conv2d(r.flip(3), w[4 * hs :], bias[4 * hs :])  # mirrored image
        a = skew(torch.cat([a_lr, a_rl], dim=1) + self.class_bias(context))  # (B, 8h, H, T)
        h = c = r.new_zeros(B, 2, hs, H)
        # Skewed positions outside the image hold zero states, the zero padding of a state at
        # (i, -1) or (-1, j); the incremental sampler relies on it.
        rows = torch.arange(H, device=r.device)
        cols = []
        for t in range(a.shape[3]):
            inside = ((t - rows >= 0) & (t - rows < W)).to(r.dtype)  # (H,)
            # Row i of column t reads rows i - 1 and i of column t - 1: the pixels above and
            # to the left of (i, t - i).
            s = self.state_to_state(F.pad(h.reshape(B, 2 * hs, H), (1, 0)))  # (B, 8h, H)
            gates = (a[:, :, :, t] + s).view(B, 2, 4 * hs, H)
            h, c = _lstm_step(gates, c, hs, dim=2)
            h, c = h * inside, c * inside
            cols.append(h.reshape(B, 2 * hs, H))
        states = unskew(torch.stack(cols, dim=3), W)  # (B, 2h, H, W)
        lr, rl = states[:, :hs], states[:, hs:].flip(3)
        if self.shift:
            # Unshifted, the state at (i, j) has read (i, j + 1); a row down, it reads only
            # rows above i.
            rl = F.pad(rl, (0, 0, 1, 0))[:, :, :H]
        return r + self.out(lr + rl)


class PixelRNN(ImageNetwork):
    """The PixelRNN network (a torch module) keeping the :class:`skar.base.AutoregressiveNetwork`
    contract.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    n_levels : int
        Number of pixel levels K; inputs (codes ``0 .. K-1``) are scaled to ``[-1, 1]``.
    n_params : int
        Parameters of each pixel channel's conditional (``family.n_params``).
    layer : {"row_lstm", "diagonal_bilstm"}
    n_filters : int
        Maps of the residual stream (at least C).
    hidden_size : int
        Maps of each LSTM state (at least C).
    n_layers : int
        Recurrent layers.
    kernel_size : int
        Odd size of the first, mask-A, ``k x k`` convolution.
    head_filters : int
        Width of the masked ``1 x 1`` output head (at least C).
    n_classes : int, default=0
        Classes of a class-conditional model; 0 for an unconditional one.
    _shift : bool, default=True
        Private: ``False`` removes the Diagonal BiLSTM's shift (tests show the leak).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_levels: int,
        n_params: int,
        layer: str = "diagonal_bilstm",
        n_filters: int = 32,
        hidden_size: int = 32,
        n_layers: int = 4,
        kernel_size: int = 7,
        head_filters: int = 64,
        n_classes: int = 0,
        _shift: bool = True,
    ) -> None:
        super().__init__()
        C = int(image_shape[0])
        self._init_image(image_shape, n_levels, n_params, n_classes)
        self.layer = layer
        k = int(kernel_size)
        mask = raster_mask(channel_groups(n_filters, C), np.arange(C), (k, k), strict=True)
        self.first = MaskedConv2d(C, n_filters, k, mask, padding=k // 2)
        if layer == "row_lstm":
            layers = [RowLSTMLayer(n_filters, hidden_size, C, n_classes) for _ in range(n_layers)]
        elif layer == "diagonal_bilstm":
            layers = [DiagonalBiLSTMLayer(n_filters, hidden_size, C, n_classes, _shift)
                      for _ in range(n_layers)]
        else:
            raise ValueError(f"layer must be 'row_lstm' or 'diagonal_bilstm'; got {layer!r}")
        self.layers = nn.ModuleList(layers)
        self.out = ImageHead(n_filters, head_filters, C, n_params)

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, C*H*W)`` codes -> ``(B, C*H*W*n_params)`` parameters, column-major by pixel.

        Column ``d = c H W + i W + j`` owns ``out[:, d * n_params : (d + 1) * n_params]``.
        ``context`` holds the class codes ``(B,)`` of a class-conditional model.
        """
        self._check_context(context)
        r = self.first(self.images(x))  # (B, n_filters, H, W)
        for layer in self.layers:
            r = layer(r, context)
        return self.columns(self.out(r))


@torch.no_grad()
def sample_row_lstm(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """Exact incremental sampling of a Row LSTM :class:`PixelRNN`.

    The state of a Row LSTM at ``(i, j)`` needs only the states of row ``i - 1`` (at
    ``j - 1, j, j + 1``), its own cell state above, and the layer's input at ``(i, j - 1)`` and
    ``(i, j)``. So the state-to-state term of every layer is computed once per row, and each
    pixel channel runs the mask-A window, ``n_layers`` LSTM cells at one position and the
    head: ``O(n_layers)`` small operations instead of a full pass over the image. The random
    draws are the same calls, in the same order and shapes, as :func:`skar.base.sample_plain`'s,
    so with the same generator both return the same images (up to float rounding in the
    parameters).

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is a :class:`PixelRNN` with ``layer="row_lstm"``.
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    context : Tensor of shape (n_samples,), optional
        Class codes of a class-conditional model.

    Returns
    -------
    Tensor of shape (n_samples, C*H*W)
        Pixel codes.
    """
    net: PixelRNN = module.network
    if net.layer != "row_lstm":
        raise ValueError(f"sample_row_lstm needs a Row LSTM network; this one is {net.layer!r}")
    net._check_context(context)
    fams = module.conditionals.families
    C, H, W = net.image_shape
    P, n = net.n_params, n_samples
    device = net.orderings.device
    first = net.first
    k = first.kernel_size[0]
    k2 = k // 2
    w_first = first.weight * first.mask
    layers = list(net.layers)
    biases = [layer.class_bias(context) for layer in layers]
    hs = [layer.hidden_size for layer in layers]
    F_ = first.out_channels
    codes = torch.zeros(n, C, H, W, device=device)
    # Scaled pixels, zero-padded as the mask-A convolution pads them.
    img = torch.zeros(n, C, H + 2 * k2, W + 2 * k2, device=device)
    h_above = [torch.zeros(n, h, W, device=device) for h in hs]
    c_above = [torch.zeros(n, h, W, device=device) for h in hs]
    for i in range(H):
        ss = [layer.state_to_state(h_above[m]) for m, layer in enumerate(layers)]  # (n, 4h, W)
        # Each layer's input along row i, padded by one column each side (its 1 x 3 window).
        r_row = [torch.zeros(n, F_, 1, W + 2, device=device) for _ in layers]
        h_row = [torch.zeros(n, h, W, device=device) for h in hs]
        c_row = [torch.zeros(n, h, W, device=device) for h in hs]
        for j in range(W):
            for c in range(C):
                r = F.conv2d(img[:, :, i : i + k, j : j + k], w_first, first.bias)  # (n, F, 1, 1)
                for m, layer in enumerate(layers):
                    r_row[m][:, :, :, j + 1] = r[:, :, :, 0]
                    a = layer.input_to_state(r_row[m][:, :, :, j : j + 3])[:, :, :, 1:2]
                    a = a + biases[m]  # (n, 4h, 1, 1)
                    gates = a[:, :, 0] + ss[m][:, :, j : j + 1]  # (n, 4h, 1)
                    h, cell = _lstm_step(gates, c_above[m][:, :, j : j + 1], hs[m], dim=1)
                    h_row[m][:, :, j : j + 1], c_row[m][:, :, j : j + 1] = h, cell
                    r = r + layer.out(h[:, :, None])  # (n, F, 1, 1)
                params = net.out(r)[:, c * P : (c + 1) * P, 0, 0]  # (n, P)
                value = fams[c * H * W + i * W + j].sample(params, generator)
                codes[:, c, i, j] = value
                img[:, c, k2 + i, k2 + j] = net.scale(value)
        h_above, c_above = h_row, c_row
    return codes.reshape(n, -1)


@torch.no_grad()
def sample_diagonal(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """Exact incremental sampling of a Diagonal BiLSTM :class:`PixelRNN`.

    The left-to-right state at ``(i, j)`` needs the states at ``(i, j - 1)`` and
    ``(i - 1, j)`` and the layer's input at ``(i, j)``: one LSTM cell per layer and pixel
    channel. The right-to-left states that reach row ``i`` are those of row ``i - 1`` (the
    shift), computed once when row ``i`` starts, by a right-to-left scan over row ``i - 1``
    from the states of row ``i - 2``. The random draws are the same calls, in the same order
    and shapes, as :func:`skar.base.sample_plain`'s, so with the same generator both return the
    same images (up to float rounding in the parameters).

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is a :class:`PixelRNN` with ``layer="diagonal_bilstm"`` (and its
        shift).
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    context : Tensor of shape (n_samples,), optional
        Class codes of a class-conditional model.

    Returns
    -------
    Tensor of shape (n_samples, C*H*W)
        Pixel codes.
    """
    net: PixelRNN = module.network
    if net.layer != "diagonal_bilstm" or not all(layer.shift for layer in net.layers):
        raise ValueError("sample_diagonal needs a Diagonal BiLSTM network with its shift")
    net._check_context(context)
    fams = module.conditionals.families
    C, H, W = net.image_shape
    P, n = net.n_params, n_samples
    device = net.orderings.device
    first = net.first
    k2 = first.kernel_size[0] // 2
    w_first = first.weight * first.mask
    layers = list(net.layers)
    L = len(layers)
    biases = [layer.class_bias(context) for layer in layers]  # (n, 8h, 1, 1) or 0
    hs = [layer.hidden_size for layer in layers]
    F_ = first.out_channels

    def input_to_state(m: int, r: Tensor, direction: int) -> Tensor:
        """The masked 1 x 1 input-to-state map of one direction, plus the class bias."""
        layer, h4 = layers[m], 4 * hs[m]
        w = layer.input_to_state.weight * layer.input_to_state.mask
        part = slice(direction * h4, (direction + 1) * h4)
        a = F.conv2d(r, w[part], layer.input_to_state.bias[part])
        b = biases[m]
        return a + (b[:, part] if torch.is_tensor(b) else b)

    def state_to_state(m: int, above: Tensor, before: Tensor, direction: int) -> Tensor:
        """The 2 x 1 state-to-state map of one direction at one position, ``(n, 4h)``, from the
        state above and the state before it along the row."""
        h = hs[m]
        x = torch.zeros(n, 2 * h, 2, device=device)  # the other direction's group is unused
        x[:, direction * h : (direction + 1) * h, 0] = above
        x[:, direction * h : (direction + 1) * h, 1] = before
        return layers[m].state_to_state(x)[:, direction * 4 * h : (direction + 1) * 4 * h, 0]

    codes = torch.zeros(n, C, H, W, device=device)
    img = torch.zeros(n, C, H + 2 * k2, W + 2 * k2, device=device)  # scaled, zero-padded
    r_prev = [torch.zeros(n, F_, 1, W, device=device) for _ in range(L)]  # inputs, row i - 1
    lr_h = [torch.zeros(n, h, W, device=device) for h in hs]  # left-to-right, row i - 1
    rl_h = [torch.zeros(n, h, W, device=device) for h in hs]  # right-to-left, row i - 1
    for i in range(H):
        if i > 0:  # the right-to-left states of row i - 1 from those of row i - 2
            for m in range(L):
                a = input_to_state(m, r_prev[m], 1)[:, :, 0]  # (n, 4h, W)
                row_h = torch.zeros(n, hs[m], W, device=device)
                h_next = c_next = torch.zeros(n, hs[m], device=device)
                for j in reversed(range(W)):
                    gates = a[:, :, j] + state_to_state(m, rl_h[m][:, :, j], h_next, 1)
                    h_next, c_next = _lstm_step(gates, c_next, hs[m], dim=1)
                    row_h[:, :, j] = h_next
                rl_h[m] = row_h
        r_row = [torch.zeros(n, F_, 1, W, device=device) for _ in range(L)]
        lr_row = [torch.zeros(n, h, W, device=device) for h in hs]
        lr_c = [torch.zeros(n, h, device=device) for h in hs]  # cell state of (i, j - 1)
        for j in range(W):
            for c in range(C):
                window = img[:, :, i : i + 2 * k2 + 1, j : j + 2 * k2 + 1]
                r = F.conv2d(window, w_first, first.bias)  # (n, F, 1, 1)
                cells = []
                for m, layer in enumerate(layers):
                    r_row[m][:, :, :, j] = r[:, :, :, 0]
                    before = lr_row[m][:, :, j - 1] if j else torch.zeros_like(lr_c[m])
                    gates = input_to_state(m, r, 0)[:, :, 0, 0] + state_to_state(
                        m, lr_h[m][:, :, j], before, 0)
                    h, cell = _lstm_step(gates, lr_c[m], hs[m], dim=1)
                    cells.append(cell)
                    lr_row[m][:, :, j] = h
                    r = r + layer.out((h + rl_h[m][:, :, j])[:, :, None, None])
                params = net.out(r)[:, c * P : (c + 1) * P, 0, 0]  # (n, P)
                value = fams[c * H * W + i * W + j].sample(params, generator)
                codes[:, c, i, j] = value
                img[:, c, k2 + i, k2 + j] = net.scale(value)
            lr_c = cells  # the pixel is complete: its cells feed (i, j + 1)
        r_prev, lr_h = r_row, lr_row
    return codes.reshape(n, -1)


class PixelRNNDensity(BaseImageDensity):
    """Image density estimation with a PixelRNN (Row LSTM or Diagonal BiLSTM), optionally
    class-conditional.

    Each pixel channel's conditional ``p(x_{c,i,j} | pixels before it, y)`` is a Bernoulli
    (binary images), a Categorical over K levels, or a discretized mixture of logistics
    (PixelCNN++), with parameters from one pass of two-dimensional LSTMs over the image (van den
    Oord et al. 2016). Rows of ``X`` are flattened ``(C, H, W)`` images; 3-D ``(n, H, W)`` and
    4-D ``(n, C, H, W)`` arrays are accepted too. With labels, ``fit(X, y)`` learns
    ``p(x | y)``; ``score_samples(X, y)`` and ``sample(n, y=...)`` then condition on them, and
    without ``y`` they use the class mixture ``p(x) = sum_y p(y) p(x | y)`` with the training
    frequencies ``p(y)``. Same conventions and parameters as :class:`skar.PixelCNNDensity`
    where the concept is shared.

    Sampling carries the LSTM states (:func:`sample_row_lstm`, :func:`sample_diagonal`):
    ``n_layers`` LSTM cells per pixel channel, plus a scan of the row above per row for the
    Diagonal BiLSTM, instead of one full network pass per pixel channel.

    Parameters
    ----------
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of the images. ``None`` takes it from 3-D/4-D input, else
        infers ``(1, s, s)`` when ``n_features = s^2``, else ``(1, 1, n_features)`` (one row).
    layer : {"diagonal_bilstm", "row_lstm"}, default="diagonal_bilstm"
        The recurrent layer. The Diagonal BiLSTM sees every earlier pixel from its first layer;
        the Row LSTM has a triangular receptive field but runs ``H`` steps per layer instead of
        ``H + W - 1``.
    n_levels : int or "auto", default="auto"
        Number of pixel levels K, the values being ``0 .. K-1``; "auto" is the largest
        training value plus one (at least 2).
    output : {"auto", "bernoulli", "categorical", "logistic_mixture"}, default="auto"
        Conditional family of each pixel channel. "auto": Bernoulli for ``K = 2``, Categorical
        for ``K <= 64``, the discretized logistic mixture above (8-bit images).
    n_components : int, default=5
        Components of the discretized logistic mixture.
    n_filters : int, default=32
        Maps of the residual stream between layers (at least C).
    hidden_size : int, default=32
        Maps of each LSTM's state (at least C).
    n_layers : int, default=4
        Recurrent layers, each with a residual connection.
    kernel_size : int, default=7
        Odd size of the first layer's ``k x k`` mask-A convolution (7 in the paper).
    head_filters : int, default=64
        Width of the ``1 x 1`` output head (at least C).
    {shared_parameters}

    Attributes
    ----------
    n_features_in_ : int
        ``C * H * W``.
    image_shape_ : tuple of int
        ``(C, H, W)``.
    n_levels_ : int
        Number of pixel levels K.
    output_ : str
        The conditional family used ("bernoulli", "categorical" or "logistic_mixture").
    layer_ : str
        The recurrent layer of the fitted network.
    classes_ : ndarray of shape (n_classes,)
        Labels seen in fit (only when fitted with ``y``).
    class_prior_ : ndarray of shape (n_classes,)
        Their training frequencies (only when fitted with ``y``).
    schema_ : ImageSchema
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_.network`` is the :class:`PixelRNN`.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per image) and duration.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    skar.PixelCNNDensity : The gated PixelCNN: masked convolutions, fast cached sampling.
    skar.NADEDensity : An image as a vector of binary or categorical columns.

    References
    ----------
    A. van den Oord, N. Kalchbrenner and K. Kavukcuoglu. Pixel Recurrent Neural Networks.
    ICML 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import PixelRNNDensity
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(100, 16) < 0.3).astype(int)  # 100 binary 4 x 4 images
    >>> y = rng.randint(2, size=100)
    >>> est = PixelRNNDensity(layer="row_lstm", n_filters=8, hidden_size=8, n_layers=1,
    ...                       max_iter=2, random_state=0).fit(X, y)
    >>> est.image_shape_
    (1, 4, 4)
    >>> est.score_samples(X[:3], y[:3]).shape
    (3,)
    >>> est.sample(2, y=1, random_state=0).shape
    (2, 16)
    >>> bool(est.bits_per_dim(X) > 0)
    True
    """

    _parameter_constraints: dict = {
        **IMAGE_CONSTRAINTS,
        "layer": [StrOptions({"row_lstm", "diagonal_bilstm"})],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 3, None, closed="left")],
    }

    def __init__(
        self,
        image_shape: Any = None,
        *,
        layer: str = "diagonal_bilstm",
        n_levels: Any = "auto",
        output: str = "auto",
        n_components: int = 5,
        n_filters: int = 32,
        hidden_size: int = 32,
        n_layers: int = 4,
        kernel_size: int = 7,
        head_filters: int = 64,
        batch_size: Any = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 100,
        alpha: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.image_shape = image_shape
        self.layer = layer
        self.n_levels = n_levels
        self.output = output
        self.n_components = n_components
        self.n_filters = n_filters
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.kernel_size = kernel_size
        self.head_filters = head_filters
        super().__init__(**shared_params(locals()))

    def _build_network(
        self, schema: ImageSchema, conditionals: ColumnConditionals, seed: int
    ) -> PixelRNN:
        C = schema.image_shape[0]
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {self.kernel_size}")
        self._check_widths(C, ("n_filters", "hidden_size", "head_filters"))
        return PixelRNN(
            image_shape=schema.image_shape,
            n_levels=schema.n_levels,
            n_params=conditionals.families[0].n_params,
            layer=self.layer,
            n_filters=self.n_filters,
            hidden_size=self.hidden_size,
            n_layers=self.n_layers,
            kernel_size=self.kernel_size,
            head_filters=self.head_filters,
            n_classes=len(getattr(self, "classes_", ())),
        )

    def _sample_encoded(
        self, n_samples: int, generator: torch.Generator, context: Tensor | None = None
    ) -> Tensor:
        sampler = sample_row_lstm if self.layer_ == "row_lstm" else sample_diagonal
        return sampler(self.net_.module_, n_samples, generator, context)

    def _fitted_attributes(self, schema: ImageSchema, network: nn.Module) -> dict[str, Any]:
        return {**super()._fitted_attributes(schema, network), "layer_": network.layer}
