"""Loader for binarized MNIST with the fixed Larochelle & Murray split."""

from __future__ import annotations

import numpy as np

from ._uci import _check_choice, _data_file

__all__ = ["BINARIZED_MNIST_PUBLISHED", "load_binarized_mnist"]

_N_PIXELS = 784
_SPLITS = ("train", "valid", "test")

#: Published test negative log-likelihoods on binarized MNIST (nats per image, lower is better).
BINARIZED_MNIST_PUBLISHED: dict[str, float] = {
    "FVSBN": 97.45,
    "NADE": 88.86,
    "MADE 1 hidden layer, 32 masks": 88.04,
    "MADE 2 hidden layers, 32 masks": 86.64,
    "EoNADE 2 hidden layers, 128 orderings": 85.10,
    "PixelCNN": 81.30,
    "Row LSTM": 80.54,
    "Diagonal BiLSTM (PixelRNN)": 79.20,
}


def load_binarized_mnist(*, split: str = "train") -> np.ndarray:
    """Load binarized MNIST, the standard fixed binarization and split.

    This is the fixed stochastic binarization of Salakhutdinov & Murray (2008) with the
    50000 / 10000 / 10000 split of Larochelle & Murray (2011), the benchmark of NADE, MADE,
    EoNADE, PixelRNN and PixelCNN. Published test negative log-likelihoods are in
    :data:`BINARIZED_MNIST_PUBLISHED`.

    Parameters
    ----------
    split : {"train", "valid", "test"}, default="train"
        Which split to load: 50000, 10000 and 10000 images.

    Returns
    -------
    X : ndarray of shape (n_images, 784), uint8
        One flattened 28 x 28 image per row (row-major), with values 0 and 1.

    Raises
    ------
    ValueError
        If ``split`` is not one of ``"train"``, ``"valid"``, ``"test"``.

    Notes
    -----
    The images are stored bit-packed (``numpy.packbits(axis=1)``) in the bundled file
    ``binarized_mnist.npz``. MNIST: Y. LeCun, C. Cortes & C. J. C. Burges, The MNIST database of
    handwritten digits. Binarization: R. Salakhutdinov & I. Murray, On the quantitative analysis
    of deep belief networks, ICML 2008; H. Larochelle & I. Murray, The neural autoregressive
    distribution estimator, AISTATS 2011.

    Examples
    --------
    >>> from skar.datasets import load_binarized_mnist
    >>> X = load_binarized_mnist(split="test")
    >>> X.shape, X.dtype
    ((10000, 784), dtype('uint8'))
    >>> sorted(int(v) for v in set(X.ravel().tolist()))
    [0, 1]
    """
    _check_choice("split", split, _SPLITS)
    with _data_file("binarized_mnist.npz").open("rb") as f, np.load(f) as npz:
        packed = npz[split]
    return np.ascontiguousarray(np.unpackbits(packed, axis=1)[:, :_N_PIXELS])
