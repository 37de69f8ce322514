"""Gated PixelCNN (van den Oord et al., 2016) with class conditioning, the discretized logistic
mixture outputs of PixelCNN++ (Salimans et al., 2017) and cached sampling (Ramachandran et al.,
2017).

An image ``x`` of shape ``(C, H, W)`` is generated in raster order, and within a pixel channel by
channel (R, then G, then B):

.. math::

    p(x \\mid y) = \\prod_{i=1}^{H} \\prod_{j=1}^{W} \\prod_{c=1}^{C}
        p\\big(x_{c,i,j} \\mid x_{:, <(i,j)},\\; x_{<c, i, j},\\; y\\big),

where ``<(i, j)`` is every pixel above, or left in the same row, and ``y`` an optional class
label. One convolutional pass returns every conditional at once, because the convolutions are
*masked* so that position ``(c, i, j)`` never sees itself or anything after it:

* the **vertical stack** ``v`` sees the rows at and above row ``i`` (its kernel is cropped to
  the top ``k//2 + 1`` rows of a ``k x k`` window); it reaches the horizontal stack only
  *shifted down by one row*, so the horizontal stack at row ``i`` gets rows ``< i`` from it;
* the **horizontal stack** ``h`` sees the current row left of ``j`` (a ``1 x (k//2 + 1)``
  kernel). Its first layer has **mask A** at the centre tap (feature maps of channel group ``g``
  see the input channels ``< g`` of the current pixel; with one channel, not the pixel at all),
  later layers **mask B** (groups ``<= g``), and the 1 x 1 convolutions in between are masked B
  by channel group too.

Together the stacks cover every pixel above and to the left, without the *blind spot* of a
plain stack of masked ``3 x 3`` convolutions. Each layer is gated,

.. math::

    v' = \\tanh(W_{v,f} * v + V_f^\\top e_y) \\odot \\sigma(W_{v,g} * v + V_g^\\top e_y),\\qquad
    h' = h + W_{1\\times1}\\big[\\tanh(a_f) \\odot \\sigma(a_g)\\big],\\quad
    a = W_h * h + W_{v\\to h}\\,\\mathrm{shift}(W_v * v) + U^\\top e_y,

with a residual connection on the horizontal stack, and ``e_y`` the one-hot class of a
class-conditional model (van den Oord et al. 2016, eq. 4; the label enters every layer as a
bias, so it does not affect the autoregressive structure). A ``1 x 1`` masked head turns ``h``
into the parameters of each ``p(x_{c,i,j} | ...)``: a Bernoulli for binary images, a Categorical
over ``K`` levels, or the discretized mixture of logistics of PixelCNN++ (for 8-bit images).

**Cached sampling.** The generic sampler runs the whole network once per pixel and channel,
``C H W`` passes over ``H x W`` positions. Here the vertical stack of row ``i - 1`` is computed
once (one row per layer) when row ``i`` starts, and the horizontal stack of pixel ``(i, j)``
from the cached rows to its left, so each pixel costs ``O(n_layers)`` small convolutions
(the row-caching scheme of Ramachandran et al. 2017). It draws exactly what
:func:`skar.base.sample_plain` draws with the same generator.

References
----------
A. van den Oord, N. Kalchbrenner and K. Kavukcuoglu. Pixel Recurrent Neural Networks. ICML 2016.
A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves and K. Kavukcuoglu.
Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
T. Salimans, A. Karpathy, X. Chen and D. P. Kingma. PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications. ICLR 2017.
P. Ramachandran, T. L. Paine, P. Khorrami, M. Babaeizadeh, S. Chang, Y. Zhang,
M. Hasegawa-Johnson, R. H. Campbell and T. S. Huang. Fast Generation for Convolutional
Autoregressive Models. ICLR 2017 workshop.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import Tensor, nn

from ..base import DensityModule, shared_params
from ..distributions import ColumnConditionals
from ..images import (
    IMAGE_CONSTRAINTS,
    BaseImageDensity,
    ImageHead,
    ImageNetwork,
    ImageSchema,
)
from ..images import channel_groups as _groups
from ..images import channel_mask as _channel_mask
from ..nn import MaskedConv2d

__all__ = [
    "GatedPixelCNN",
    "ImageSchema",
    "PixelCNNDensity",
    "sample_row_cached",
]


def _gate(a: Tensor) -> Tensor:
    """``tanh(a_f) * sigmoid(a_g)`` on the two halves of the channel axis."""
    f, g = a.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedBlock(nn.Module):
    """One gated layer: a vertical and a horizontal stack (a torch module).

    Parameters
    ----------
    in_channels : int
        Feature maps coming in (the image channels ``C`` for the first layer).
    n_filters : int
        Feature maps of each stack, ``p``; the gates use ``2p`` pre-activations.
    kernel_size : int
        Odd ``k``: the vertical kernel is ``(k//2 + 1) x k``, the horizontal ``1 x (k//2 + 1)``.
    n_image_channels : int
        ``C``; feature maps are split into ``C`` groups for the channel masks.
    first : bool
        Mask A at the centre tap and no residual connection (the first layer).
    n_classes : int
        Number of classes of a class-conditional model, 0 for an unconditional one.
    """

    def __init__(
        self,
        in_channels: int,
        n_filters: int,
        kernel_size: int,
        n_image_channels: int,
        first: bool,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        k2 = kernel_size // 2
        p = n_filters
        self.k2, self.p, self.first = k2, p, first
        C = n_image_channels
        in_groups = _groups(in_channels, C)
        gate_groups = np.tile(_groups(p, C), 2)  # a_f and a_g of a feature map share its group
        h_mask = torch.ones(2 * p, in_channels, 1, k2 + 1)
        h_mask[:, :, 0, k2] = _channel_mask(gate_groups, in_groups, strict=first)
        out_mask = _channel_mask(_groups(p, C), _groups(p, C), strict=False)
        self.v_conv = nn.Conv2d(in_channels, 2 * p, (k2 + 1, kernel_size))
        self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_conv = MaskedConv2d(in_channels, 2 * p, (1, k2 + 1), h_mask)
        self.h_out = MaskedConv2d(p, p, 1, out_mask[:, :, None, None])
        self.embed = nn.Embedding(n_classes, 4 * p) if n_classes else None

    def class_bias(self, context: Tensor | None) -> tuple[Tensor | float, Tensor | float]:
        """Per-row biases ``(V^T e_y, U^T e_y)`` of the two stacks, each ``(B, 2p, 1, 1)``."""
        if self.embed is None:
            return 0.0, 0.0
        e = self.embed(context.long())  # (B, 4p)
        return e[:, : 2 * self.p, None, None], e[:, 2 * self.p :, None, None]

    def vertical(self, v_padded: Tensor) -> Tensor:
        """Vertical pre-activation from input padded by ``k//2`` on top, left and right."""
        return self.v_conv(v_padded)  # (B, 2p, rows, W)

    def horizontal(self, h_padded: Tensor) -> Tensor:
        """Masked horizontal pre-activation from input padded by ``k//2`` on the left."""
        return self.h_conv(h_padded)

    def combine(self, a: Tensor, h: Tensor) -> Tensor:
        """Gate the horizontal pre-activation ``a`` and add the residual ``h``."""
        out = self.h_out(_gate(a))
        return out if self.first else h + out

    def forward(self, v: Tensor, h: Tensor, context: Tensor | None = None):
        """``(B, in, H, W)`` stacks -> ``(B, p, H, W)`` stacks."""
        k2 = self.k2
        bv, bh = self.class_bias(context)
        vp = self.vertical(F.pad(v, (k2, k2, k2, 0))) + bv  # (B, 2p, H, W)
        # Row i of the horizontal stack gets row i-1 of the vertical one: the vertical stack
        # sees the whole of row i (also right of j), so only the rows above may pass.
        above = F.pad(vp, (0, 0, 1, 0))[:, :, :-1]
        a = self.horizontal(F.pad(h, (k2, 0, 0, 0))) + self.v_to_h(above) + bh
        return _gate(vp), self.combine(a, h)


class GatedPixelCNN(ImageNetwork):
    """The gated PixelCNN (a torch module) keeping the :class:`skar.base.AutoregressiveNetwork`
    contract.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    n_levels : int
        Number of pixel levels K; inputs (codes ``0 .. K-1``) are scaled to ``[-1, 1]``.
    n_params : int
        Parameters of each pixel channel's conditional (``family.n_params``).
    n_filters : int
        Feature maps per stack (at least ``C``).
    n_layers : int
        Gated layers.
    kernel_size : int
        Odd kernel size ``k``.
    head_filters : int
        Width of the masked ``1 x 1`` output head (at least ``C``).
    n_classes : int, default=0
        Classes of a class-conditional model; 0 for an unconditional one.

    Attributes
    ----------
    orderings : LongTensor of shape (1, C*H*W)
        Buffer; the generation order of the flattened ``(C, H, W)`` columns: raster order over
        pixels, channels in order within a pixel.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_levels: int,
        n_params: int,
        n_filters: int = 32,
        n_layers: int = 5,
        kernel_size: int = 3,
        head_filters: int = 64,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        C = int(image_shape[0])
        self._init_image(image_shape, n_levels, n_params, n_classes)
        self.k2 = kernel_size // 2
        self.blocks = nn.ModuleList(
            GatedBlock(C if i == 0 else n_filters, n_filters, kernel_size, C, i == 0, n_classes)
            for i in range(n_layers)
        )
        self.out = ImageHead(n_filters, head_filters, C, n_params)

    def head(self, h: Tensor) -> Tensor:
        """``(B, p, ., .)`` horizontal stack -> ``(B, C * n_params, ., .)`` parameters."""
        return self.out(h)

    def forward(self, x: Tensor, member: int = 0, context: Tensor | None = None) -> Tensor:
        """``(B, C*H*W)`` codes -> ``(B, C*H*W*n_params)`` parameters, column-major by pixel.

        Column ``d = c H W + i W + j`` owns ``out[:, d * n_params : (d + 1) * n_params]``.
        ``context`` holds the class codes ``(B,)`` of a class-conditional model.
        """
        self._check_context(context)
        v = h = self.images(x)  # (B, C, H, W)
        for block in self.blocks:
            v, h = block(v, h, context)
        return self.columns(self.head(h))  # (B, C * P, H, W) -> (B, C*H*W*P)


@torch.no_grad()
def sample_row_cached(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    context: Tensor | None = None,
) -> Tensor:
    """Exact incremental sampling of a :class:`GatedPixelCNN` (row caching).

    At the start of row ``i`` every layer computes its vertical stack for row ``i - 1`` only
    (from the cached rows ``i - 1 - k//2 .. i - 1`` of the layer below) and the link into the
    horizontal stack; each pixel ``(i, j)`` then runs the horizontal stacks on the cached
    ``k//2 + 1`` positions to its left and the head, once per channel. The random draws are the
    same calls, in the same order and shapes, as :func:`skar.base.sample_plain`'s, so with the
    same generator both return the same images (up to float rounding in the parameters).

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is a :class:`GatedPixelCNN`.
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
    net: GatedPixelCNN = module.network
    net._check_context(context)
    fams = module.conditionals.families
    C, H, W = net.image_shape
    P, k2, n = net.n_params, net.k2, n_samples
    device = net.orderings.device
    blocks = list(net.blocks)
    L = len(blocks)
    biases = [b.class_bias(context) for b in blocks]
    widths = [C] + [b.p for b in blocks]  # input feature maps of each layer
    codes = torch.zeros(n, C, H, W, device=device)
    # Padded inputs of every layer's vertical stack (top k2 rows, k2 columns each side).
    v_in = [torch.zeros(n, widths[m], H + k2, W + 2 * k2, device=device) for m in range(L)]
    for i in range(H):
        links = []
        for m, block in enumerate(blocks):
            if i == 0:
                above = torch.zeros(n, 2 * block.p, 1, W, device=device)
            else:
                above = block.vertical(v_in[m][:, :, i - 1 : i + k2]) + biases[m][0]
                if m + 1 < L:  # row i-1 of this layer's output is the next layer's input
                    v_in[m + 1][:, :, k2 + i - 1, k2 : k2 + W] = _gate(above)[:, :, 0]
            links.append(block.v_to_h(above) + biases[m][1])  # (n, 2p, 1, W)
        h_in = [torch.zeros(n, widths[m], 1, W + k2, device=device) for m in range(L)]
        for j in range(W):
            for c in range(C):
                for m, block in enumerate(blocks):
                    a = block.horizontal(h_in[m][:, :, :, j : j + k2 + 1])
                    a = a + links[m][:, :, :, j : j + 1]
                    h = block.combine(a, h_in[m][:, :, :, k2 + j : k2 + j + 1])
                    if m + 1 < L:
                        h_in[m + 1][:, :, :, k2 + j] = h[:, :, :, 0]
                params = net.head(h)[:, c * P : (c + 1) * P, 0, 0]  # (n, P)
                value = fams[c * H * W + i * W + j].sample(params, generator)
                codes[:, c, i, j] = value
                scaled = net.scale(value)
                h_in[0][:, c, 0, k2 + j] = scaled
                v_in[0][:, c, k2 + i, k2 + j] = scaled
    return codes.reshape(n, -1)


def sample_cached(*args: Any, **kwargs: Any) -> Tensor:
    """Deprecated alias of :func:`sample_row_cached`, renamed so the cached samplers of two models
    have distinct names; it will be removed in a future release."""
    warnings.warn(
        "skar.models.pixelcnn.sample_cached was renamed sample_row_cached; the old name will be "
        "removed",
        FutureWarning,
        stacklevel=2,
    )
    return sample_row_cached(*args, **kwargs)


class PixelCNNDensity(BaseImageDensity):
    """Image density estimation with a gated PixelCNN, optionally class-conditional.

    Each pixel channel's conditional ``p(x_{c,i,j} | pixels before it, y)`` is a Bernoulli
    (binary images), a Categorical over K levels, or a discretized mixture of logistics
    (PixelCNN++), with parameters from one masked-convolution pass (van den Oord et al. 2016).
    Rows of ``X`` are flattened ``(C, H, W)`` images; 3-D ``(n, H, W)`` and 4-D
    ``(n, C, H, W)`` arrays are accepted too. With labels, ``fit(X, y)`` learns ``p(x | y)``;
    ``score_samples(X, y)`` and ``sample(n, y=...)`` then condition on them, and without ``y``
    they use the class mixture ``p(x) = sum_y p(y) p(x | y)`` with the training frequencies
    ``p(y)``. Sampling uses the exact row cache (:func:`sample_row_cached`).

    Parameters
    ----------
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of the images. ``None`` takes it from 3-D/4-D input, else
        infers ``(1, s, s)`` when ``n_features = s^2``, else ``(1, 1, n_features)`` (one row).
    n_levels : int or "auto", default="auto"
        Number of pixel levels K, the values being ``0 .. K-1``; "auto" is the largest
        training value plus one (at least 2).
    output : {"auto", "bernoulli", "categorical", "logistic_mixture"}, default="auto"
        Conditional family of each pixel channel. "auto": Bernoulli for ``K = 2``, Categorical
        for ``K <= 64``, the discretized logistic mixture above (8-bit images).
    n_components : int, default=5
        Components of the discretized logistic mixture.
    n_filters : int, default=32
        Feature maps of each stack (at least C).
    n_layers : int, default=5
        Gated layers. The receptive field grows by ``kernel_size // 2`` pixels per layer.
    kernel_size : int, default=3
        Odd kernel size of the gated layers.
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
    classes_ : ndarray of shape (n_classes,)
        Labels seen in fit (only when fitted with ``y``).
    class_prior_ : ndarray of shape (n_classes,)
        Their training frequencies (only when fitted with ``y``).
    schema_ : ImageSchema
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_.network`` is the :class:`GatedPixelCNN`.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per image) and duration.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    skar.MADEDensity : Masked autoencoder density, for any column kinds.
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves and K. Kavukcuoglu.
    Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
    T. Salimans, A. Karpathy, X. Chen and D. P. Kingma. PixelCNN++. ICLR 2017.
    P. Ramachandran et al. Fast Generation for Convolutional Autoregressive Models. 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import PixelCNNDensity
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(100, 16) < 0.3).astype(int)  # 100 binary 4 x 4 images
    >>> y = rng.randint(2, size=100)
    >>> est = PixelCNNDensity(n_filters=8, n_layers=2, max_iter=2, random_state=0).fit(X, y)
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
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 3, None, closed="left")],
    }

    def __init__(
        self,
        image_shape: Any = None,
        *,
        n_levels: Any = "auto",
        output: str = "auto",
        n_components: int = 5,
        n_filters: int = 32,
        n_layers: int = 5,
        kernel_size: int = 3,
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
        self.n_levels = n_levels
        self.output = output
        self.n_components = n_components
        self.n_filters = n_filters
        self.n_layers = n_layers
        self.kernel_size = kernel_size
        self.head_filters = head_filters
        super().__init__(**shared_params(locals()))

    # ------------------------------------------------------------------ hooks
    def _build_network(
        self, schema: ImageSchema, conditionals: ColumnConditionals, seed: int
    ) -> GatedPixelCNN:
        C = schema.image_shape[0]
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {self.kernel_size}")
        self._check_widths(C, ("n_filters", "head_filters"))
        return GatedPixelCNN(
            image_shape=schema.image_shape,
            n_levels=schema.n_levels,
            n_params=conditionals.families[0].n_params,
            n_filters=self.n_filters,
            n_layers=self.n_layers,
            kernel_size=self.kernel_size,
            head_filters=self.head_filters,
            n_classes=len(getattr(self, "classes_", ())),
        )

    def _sample_encoded(
        self, n_samples: int, generator: torch.Generator, context: Tensor | None = None
    ) -> Tensor:
        return sample_row_cached(self.net_.module_, n_samples, generator, context)
