"""What the image models share: the image schema, channel masks, the output head, the network
contract over ``(C, H, W)`` images, and the estimator face with class conditioning.

PixelCNN (:mod:`skar.models.pixelcnn`) and PixelRNN (:mod:`skar.models.pixelrnn`) model the same
thing, an image ``x`` of shape ``(C, H, W)`` generated in raster order and channel by channel
inside a pixel,

.. math::

    p(x \\mid y) = \\prod_{i=1}^{H} \\prod_{j=1}^{W} \\prod_{c=1}^{C}
        p\\big(x_{c,i,j} \\mid x_{:, <(i,j)},\\; x_{<c, i, j},\\; y\\big),

and differ only in the network that computes the conditionals. Everything else lives here:

- :class:`ImageSchema`: pixels of one kind (binary, or ``K`` levels), checked by position;
- :func:`channel_groups`, :func:`channel_mask` and :func:`raster_mask`: the masks over channels
  (feature map ``f`` of ``n`` belongs to image channel ``floor(f C / n)``) and over a ``k x k``
  window, type A (first layer: a channel group sees the *earlier* channels of the current
  pixel) or type B (later layers: the earlier channels and its own);
- :class:`ImageHead`: the masked ``1 x 1`` output head, hidden maps -> every pixel channel's
  conditional parameters;
- :class:`ImageNetwork`: the raster ordering, the input scaling and the column layout that
  every image network keeps;
- :class:`BaseImageDensity`: the estimator face: 2-D, 3-D and 4-D input, the image shape,
  the output family (Bernoulli, K-level Categorical, the discretized logistic mixture of
  PixelCNN++), class conditioning through ``fit(X, y)`` and :meth:`BaseImageDensity.bits_per_dim`.

:class:`skar.nn.MaskedConv2d` applies the masks; :func:`raster_mask` could move to
:mod:`skar.nn` next to it.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from .base import (
    TRAINING_CONSTRAINTS,
    AutoregressiveNetwork,
    BaseAutoregressiveDensity,
    check_labels,
)
from .distributions import (
    Bernoulli,
    Categorical,
    ConditionalFamily,
    DiscretizedLogisticMixture,
)
from .nn import MaskedConv2d
from .schema import ColumnSpec, TabularSchema

__all__ = [
    "IMAGE_CONSTRAINTS",
    "BaseImageDensity",
    "ImageHead",
    "ImageNetwork",
    "ImageSchema",
    "channel_groups",
    "channel_mask",
    "raster_mask",
]


# ---------------------------------------------------------------------------- masks
def channel_groups(n_maps: int, n_channels: int) -> np.ndarray:
    """The image channel (group) of each of ``n_maps`` feature maps: ``floor(f C / n_maps)``."""
    return np.arange(n_maps) * n_channels // n_maps


def channel_mask(out_groups: np.ndarray, in_groups: np.ndarray, strict: bool) -> Tensor:
    """``(out, in)`` 0/1 mask at the current pixel: group ``g`` sees input groups ``< g``
    (``strict``, mask A) or ``<= g`` (mask B)."""
    o, i = out_groups[:, None], in_groups[None, :]
    return torch.as_tensor(i < o if strict else i <= o, dtype=torch.float32)


def raster_mask(
    out_groups: np.ndarray, in_groups: np.ndarray, kernel_size: tuple[int, int], strict: bool
) -> Tensor:
    """``(out, in, kH, kW)`` mask of a convolution centred on the current pixel (PixelRNN's
    masks A and B, van den Oord et al. 2016, section 3.4).

    Taps in rows above the centre and left of it in the centre row see every channel; the
    centre tap sees the channel groups of :func:`channel_mask`; taps right of the centre and
    below see nothing. ``kernel_size`` is odd in both directions.
    """
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"a raster mask needs an odd kernel; got {kernel_size}")
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw)
    mask[:, :, : kh // 2] = 1.0
    mask[:, :, kh // 2, : kw // 2] = 1.0
    mask[:, :, kh // 2, kw // 2] = channel_mask(out_groups, in_groups, strict)
    return mask


class ImageHead(nn.Module):
    """The output head: masked ``1 x 1`` convolutions from hidden maps to every pixel channel's
    conditional parameters, ``theta = W_2\\, \\mathrm{elu}(W_1\\, \\mathrm{elu}(h))``.

    Both convolutions are masked B by channel group, so the parameters of channel ``c`` use only
    the hidden maps of groups ``<= c``.

    Parameters
    ----------
    n_hidden : int
        Hidden maps coming in (at least C).
    head_filters : int
        Width of the head (at least C).
    n_channels : int
        Image channels ``C``.
    n_params : int
        Parameters of each pixel channel's conditional.
    """

    def __init__(self, n_hidden: int, head_filters: int, n_channels: int, n_params: int) -> None:
        super().__init__()
        C = n_channels
        hidden_groups, head_groups = channel_groups(n_hidden, C), channel_groups(head_filters, C)
        out_groups = np.repeat(np.arange(C), n_params)
        m1 = channel_mask(head_groups, hidden_groups, strict=False)
        m2 = channel_mask(out_groups, head_groups, strict=False)
        self.head1 = MaskedConv2d(n_hidden, head_filters, 1, m1[:, :, None, None])
        self.head2 = MaskedConv2d(head_filters, C * n_params, 1, m2[:, :, None, None])

    def forward(self, h: Tensor) -> Tensor:
        """``(B, n_hidden, ., .)`` -> ``(B, C * n_params, ., .)`` parameters."""
        # ELU rather than ReLU (as PixelCNN++): its derivative is never 0, so no input can be
        # cut off by a unit that happens to be off, and the Jacobian tests see every path.
        return self.head2(F.elu(self.head1(F.elu(h))))


class ImageNetwork(AutoregressiveNetwork):
    """What every image network keeps: the raster ordering, the input scaling, the class
    context check and the column layout of its output.

    Subclasses call :meth:`_init_image` in ``__init__`` (it draws nothing from the RNG).

    Attributes
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    n_levels, n_params, n_classes : int
    orderings : LongTensor of shape (1, C*H*W)
        Buffer; raster order over pixels, channels in order within a pixel.
    """

    def _init_image(
        self, image_shape: tuple[int, int, int], n_levels: int, n_params: int, n_classes: int
    ) -> None:
        C, H, W = (int(s) for s in image_shape)
        self.image_shape = (C, H, W)
        self.n_levels = int(n_levels)
        self.n_params = int(n_params)
        self.n_classes = int(n_classes)
        hh, ww, cc = np.meshgrid(np.arange(H), np.arange(W), np.arange(C), indexing="ij")
        order = (cc * H * W + hh * W + ww).reshape(1, -1)  # raster order, channels inside
        self.register_buffer("orderings", torch.as_tensor(order, dtype=torch.long))

    def ordering(self, member: int = 0) -> Tensor:
        """Raster order over pixels, channels R, G, B within a pixel (flattened column ids)."""
        return self.orderings[member]

    def scale(self, codes: Tensor) -> Tensor:
        """Pixel codes ``0 .. K-1`` -> network inputs in ``[-1, 1]``."""
        return codes * (2.0 / (self.n_levels - 1)) - 1.0

    def images(self, x: Tensor) -> Tensor:
        """``(B, C*H*W)`` codes -> scaled ``(B, C, H, W)`` inputs."""
        return self.scale(x).view(x.shape[0], *self.image_shape)

    def columns(self, out: Tensor) -> Tensor:
        """``(B, C * n_params, H, W)`` head output -> ``(B, C*H*W*n_params)``, column
        ``d = c H W + i W + j`` owning ``[d * n_params, (d + 1) * n_params)``."""
        C, H, W = self.image_shape
        B = out.shape[0]
        # (B, C, P, H, W) -> (B, C, H, W, P): every column's parameters are contiguous.
        return out.view(B, C, self.n_params, H, W).permute(0, 1, 3, 4, 2).reshape(B, -1)

    def _check_context(self, context: Tensor | None) -> None:
        if self.n_classes and context is None:
            raise ValueError(
                f"this {type(self).__name__} was fitted with class labels y; pass y to "
                "condition on"
            )


# ---------------------------------------------------------------------------- schema
class ImageSchema(TabularSchema):
    """The schema of images whose pixels share one kind: binary, or ``n_levels`` levels.

    Every column (pixel channel) is ``"binary"`` (``n_levels == 2``) or ``"categorical"`` with
    the codes ``0 .. n_levels - 1`` standing for themselves. Encoding is vectorised over the
    whole image, and bad values are reported by pixel position.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``; columns are the row-major flattening of that shape.
    n_levels : int
        Number of levels K.
    array_dtype : numpy dtype or None
        dtype of the training array, kept for the samples.
    """

    def __init__(self, image_shape: tuple[int, int, int], n_levels: int, array_dtype: Any) -> None:
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_levels = int(n_levels)
        kind = "binary" if self.n_levels == 2 else "categorical"
        cats = np.arange(self.n_levels)
        columns = [
            ColumnSpec(d, kind, cats, dtype=array_dtype) for d in range(math.prod(image_shape))
        ]
        super().__init__(columns, is_frame=False, array_dtype=array_dtype)

    def pixel(self, d: int) -> str:
        """How error messages name column ``d``."""
        c, i, j = np.unravel_index(d, self.image_shape)
        return f"pixel {d} (channel {c}, row {i}, column {j})"

    def encode(self, X: Any) -> np.ndarray:
        """Check the pixels and return them as float32 codes ``(n_samples, C*H*W)``.

        Raises
        ------
        ValueError
            When a pixel is not a finite integer in ``0 .. n_levels - 1``; the message names
            the row, the pixel, its value and the expected range.
        """
        x = _as_float(X)
        x = x.reshape(x.shape[0], -1)  # images (n, C, H, W) -> rows
        _check_pixels(x, self, self.n_levels)
        return x.astype(np.float32)

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Codes -> pixel values, in the training array's dtype when it is numeric."""
        codes = np.rint(np.asarray(Z, dtype=np.float64)).astype(np.int64)
        dt = self.array_dtype
        return codes.astype(dt) if dt is not None and np.dtype(dt).kind in "biuf" else codes


def _as_float(X: Any) -> np.ndarray:
    try:
        return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"pixels must be numbers: {exc}") from None


def _check_pixels(x: np.ndarray, schema: ImageSchema, n_levels: int | None) -> None:
    """Every value finite, integer, ``>= 0`` and (with ``n_levels``) ``<= n_levels - 1``.

    The message names the first bad row and pixel, its value and the expected range.
    """
    finite = np.isfinite(x)
    bad = ~finite | (x != np.round(x)) | (x < 0)
    if n_levels is not None:
        bad |= x > n_levels - 1
    if not bad.any():
        return
    row, d = (int(v) for v in np.argwhere(bad)[0])
    v = float(x[row, d])
    where = f"{schema.pixel(d)} of row {row}"
    if not np.isfinite(v):
        what = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
        raise ValueError(f"{where} holds {what}; pixels must be finite integers")
    if v < 0:
        # The phrase scikit-learn uses for estimators that need non-negative input.
        raise ValueError(
            f"Negative values in data: {where} holds {v!r}; pixels must be non-negative "
            "integers"
        )
    expected = (
        f"integers in 0..{n_levels - 1} (the {n_levels} levels of fit; set n_levels to "
        "allow more)" if n_levels is not None else "non-negative integers"
    )
    raise ValueError(f"{where} holds {v!r}; pixels must be {expected}")


# ---------------------------------------------------------------------------- estimator
#: Constraints of the parameters every image estimator shares (with the training ones).
IMAGE_CONSTRAINTS: dict[str, list] = {
    **TRAINING_CONSTRAINTS,
    "image_shape": ["array-like", None],
    "n_levels": [StrOptions({"auto"}), Interval(Integral, 2, None, closed="left")],
    "output": [StrOptions({"auto", "bernoulli", "categorical", "logistic_mixture"})],
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "head_filters": [Interval(Integral, 1, None, closed="left")],
}


class BaseImageDensity(BaseAutoregressiveDensity):
    """Base class of the image estimators (PixelCNN, PixelRNN); not used directly.

    Rows of ``X`` are flattened ``(C, H, W)`` images; 3-D ``(n, H, W)`` and 4-D
    ``(n, C, H, W)`` arrays are accepted too. With labels, ``fit(X, y)`` learns ``p(x | y)``;
    ``score_samples(X, y)`` and ``sample(n, y=...)`` then condition on them, and without ``y``
    they use the class mixture ``p(x) = sum_y p(y) p(x | y)`` with the training frequencies
    ``p(y)``. Subclasses store ``image_shape``, ``n_levels``, ``output`` and ``n_components``
    and build their network (an :class:`ImageNetwork`) in ``_build_network``.
    """

    _parameter_constraints: dict = dict(IMAGE_CONSTRAINTS)

    # ------------------------------------------------------------------ input
    def _check_X(self, X: Any, *, reset: bool) -> Any:
        """Accept 3-D ``(n, H, W)`` and 4-D ``(n, C, H, W)`` images as well as rows.

        The checks run on the flattened rows; images come back as 4-D ``(n, C, H, W)``, so
        their shape reaches :meth:`_make_schema` with the data (and :class:`ImageSchema`
        flattens them when encoding).
        """
        ndim = getattr(X, "ndim", None)
        if ndim is None and isinstance(X, (list, tuple)):
            try:
                ndim = np.ndim(X)
            except ValueError:  # ragged nested lists: let the base report them
                ndim = None
        if ndim in (3, 4):
            arr = np.asarray(X)
            shape = (1, *arr.shape[1:]) if ndim == 3 else tuple(arr.shape[1:])
            shape = tuple(int(s) for s in shape)
            if not reset and shape != self.image_shape_:
                raise ValueError(
                    f"X holds images of shape {shape} (C, H, W), but {type(self).__name__} "
                    f"was fitted on images of shape {self.image_shape_}"
                )
            rows = super()._check_X(arr.reshape(arr.shape[0], -1), reset=reset)
            return rows.reshape(-1, *shape)
        X = super()._check_X(X, reset=reset)
        return X.to_numpy() if isinstance(X, pd.DataFrame) else X

    def _resolve_image_shape(
        self, n_features: int, arr_shape: tuple[int, ...] | None
    ) -> tuple[int, int, int]:
        """``image_shape``, checked against ``n_features`` and against the shape of image
        input (``arr_shape``, None for rows); else the image input's shape, else a guess."""
        if self.image_shape is not None:
            shape = tuple(np.asarray(self.image_shape).reshape(-1).tolist())
            if len(shape) == 2:
                shape = (1, *shape)
            if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
                raise ValueError(
                    "image_shape must be (C, H, W) or (H, W) of positive integers; got "
                    f"{self.image_shape!r}"
                )
            if math.prod(shape) != n_features:
                raise ValueError(
                    f"image_shape={shape} needs {math.prod(shape)} features per row, but X "
                    f"has {n_features}"
                )
            if arr_shape is not None and arr_shape != shape:
                raise ValueError(f"X holds images of shape {arr_shape}, not image_shape={shape}")
            return shape
        if arr_shape is not None:
            return arr_shape
        side = math.isqrt(n_features)
        return (1, side, side) if side * side == n_features else (1, 1, n_features)

    def _make_schema(self, X: Any) -> ImageSchema:
        """All pixels share one kind (binary or K levels); no per-column inference."""
        arr_shape = tuple(X.shape[1:]) if X.ndim == 4 else None
        shape = self._resolve_image_shape(math.prod(X.shape[1:]), arr_shape)
        probe = ImageSchema(shape, 2, None)  # only to name pixels in errors
        x = _as_float(X).reshape(X.shape[0], -1)
        _check_pixels(x, probe, None)
        top = int(x.max()) + 1
        if self.n_levels == "auto":
            n_levels = max(top, 2)
        else:
            n_levels = int(self.n_levels)
            _check_pixels(x, probe, n_levels)
        return ImageSchema(shape, n_levels, np.asarray(X).dtype)

    def _encode_context(self, y: Any, *, reset: bool) -> np.ndarray | None:
        """Class labels -> class codes ``0 .. n_classes - 1`` (int64), the network's context."""
        if reset:
            self.__dict__.pop("classes_", None)
            self.__dict__.pop("class_prior_", None)
            if y is None:
                return None
            y = self._labels(y)
            classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
            self.classes_ = classes
            self.class_prior_ = counts / counts.sum()
            return codes.astype(np.int64)
        if y is None or not hasattr(self, "classes_"):
            return None  # an unconditional model ignores y
        y = self._labels(y)
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unseen = self.classes_[codes] != y
        if unseen.any():
            row = int(np.flatnonzero(unseen)[0])
            label = y[row].item() if isinstance(y[row], np.generic) else y[row]
            raise ValueError(
                f"y holds the label {label!r} at row {row}, which was not seen in fit; the "
                f"known labels are {self.classes_.tolist()}"
            )
        return codes.astype(np.int64)

    @staticmethod
    def _labels(y: Any) -> np.ndarray:
        return check_labels(y)

    # ------------------------------------------------------------------ hooks
    def _resolve_output(self, n_levels: int) -> str:
        if self.output == "auto":
            if n_levels == 2:
                return "bernoulli"
            return "categorical" if n_levels <= 64 else "logistic_mixture"
        if self.output == "bernoulli" and n_levels != 2:
            raise ValueError(
                f"output='bernoulli' needs binary pixels, but the images have {n_levels} levels"
            )
        return self.output

    def _families(self, schema: ImageSchema) -> list[ConditionalFamily]:
        output = self._resolve_output(schema.n_levels)
        fam: ConditionalFamily
        if output == "bernoulli":
            fam = Bernoulli()
        elif output == "categorical":
            fam = Categorical(schema.n_levels)
        else:
            fam = DiscretizedLogisticMixture(self.n_components, schema.n_levels)
        return [fam] * schema.n_features  # one family: one gather for every pixel

    def _check_widths(self, n_channels: int, names: tuple[str, ...]) -> None:
        """Every named width parameter has at least one feature map per image channel."""
        for name in names:
            if getattr(self, name) < n_channels:
                raise ValueError(
                    f"{name}={getattr(self, name)} is smaller than the {n_channels} image "
                    "channels; every channel needs its own feature maps"
                )

    def _fitted_attributes(self, schema: ImageSchema, network: nn.Module) -> dict[str, Any]:
        return {
            "image_shape_": schema.image_shape,
            "n_levels_": schema.n_levels,
            "output_": self._resolve_output(schema.n_levels),
        }

    # ------------------------------------------------------------------ public API
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # pixels are levels 0 .. K-1
        return tags

    def _has_classes(self) -> bool:
        """Whether the model was fitted with class labels (``p(x | y)``)."""
        return hasattr(self, "classes_")

    def score_samples(self, X: Any, y: Any = None) -> np.ndarray:
        """Log-probability of every image, natural log.

        Parameters
        ----------
        X : array-like of shape (n_samples, C*H*W), (n_samples, H, W) or (n_samples, C, H, W)
            Pixels, integers in ``0 .. n_levels_ - 1``.
        y : array-like of shape (n_samples,), default=None
            Class labels, for a model fitted with ``y``: returns ``log p(x | y)``. Without them
            a class-conditional model returns the mixture
            ``log p(x) = log sum_k p(k) p(x | k)`` (``p(k)`` = ``class_prior_``).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        if y is not None or not self._has_classes():
            return super().score_samples(X, y)
        Z = self._encode(X)
        per_class = np.empty((len(self.class_prior_), Z.shape[0]), dtype=np.float64)
        for k, prior in enumerate(self.class_prior_):
            codes = np.full(Z.shape[0], k, dtype=np.int64)
            self._fill_batches(per_class[k], lambda module, z, c: module(z, context=c), Z, codes)
            per_class[k] += np.log(prior)
        return np.logaddexp.reduce(per_class, axis=0)

    def sample(self, n_samples: int = 1, random_state: Any = None, y: Any = None) -> np.ndarray:
        """Draw images (flattened rows ``(n_samples, C*H*W)``) from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draw; ``None`` uses the estimator's ``random_state``.
        y : scalar or array-like of shape (n_samples,), default=None
            Class label(s) of a class-conditional model (a scalar for all rows). ``None``
            draws the labels from ``class_prior_`` first (the class mixture).

        Returns
        -------
        X : ndarray of shape (n_samples, C*H*W)
            In the training array's dtype; ``X.reshape(-1, *image_shape_)`` gives images.
        """
        check_is_fitted(self)
        if y is None and self._has_classes() and isinstance(n_samples, Integral):
            rs = check_random_state(self.random_state if random_state is None else random_state)
            if n_samples >= 1:
                y = self.classes_[rs.choice(len(self.classes_), n_samples, p=self.class_prior_)]
            return super().sample(n_samples, random_state=rs, y=y)
        return super().sample(n_samples, random_state=random_state, y=y)

    def bits_per_dim(self, X: Any, y: Any = None) -> float:
        """Mean negative log2-likelihood per pixel channel, the usual image-model unit.

        .. math::  \\mathrm{bpd} = -\\frac{1}{N\\,C H W} \\sum_n \\log_2 p(x_n)

        Parameters
        ----------
        X : array-like of shape (n_samples, C*H*W) or images
        y : array-like of shape (n_samples,), default=None
            Class labels of a class-conditional model (see :meth:`score_samples`).

        Returns
        -------
        float
        """
        logp = self.score_samples(X, y)
        return float(-np.mean(logp) / (self.n_features_in_ * math.log(2.0)))
