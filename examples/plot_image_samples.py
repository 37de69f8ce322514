"""
=======================================
Samples from the image models as a grid
=======================================

Two exact-likelihood models of the same small binary images, scikit-learn's 8 x 8
handwritten digits (:func:`~sklearn.datasets.load_digits`, a pixel is on when its grey level
is above 4 of 16), small enough to train in seconds on a CPU:

* :class:`~skar.NADEDensity` reads an image as a vector of 64 binary columns in raster order,
  with one hidden layer whose weights are shared by every conditional;
* :class:`~skar.PixelCNNDensity` knows it is an image: masked, gated convolutions see only the
  pixels above and to the left, with the same local weights at every position. Fitted with the
  digit labels, it is class-conditional: ``sample(n, y=3)`` draws threes.

Both give exact log-likelihoods, shown in bits per pixel on held-out images (lower is better),
and both draw new images one pixel at a time with ``sample``. The same code fits binarized
MNIST (:func:`skar.datasets.load_binarized_mnist`, 28 x 28), which takes minutes on a CPU and
is the subject of ``benchmarks/pixelcnn/run.py``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skar import NADEDensity, PixelCNNDensity

digits = load_digits()
X = (digits.data > 4).astype(np.uint8)  # (1797, 64) binary images
X_train, X_test, y_train, y_test = train_test_split(
    X, digits.target, test_size=0.2, random_state=0, stratify=digits.target)

nade = NADEDensity(hidden_layer_sizes=(64,), batch_size=100, learning_rate_init=1e-2,
                   max_iter=25, random_state=0).fit(X_train)
pixelcnn = PixelCNNDensity(image_shape=(8, 8), n_filters=16, n_layers=3, head_filters=32,
                           batch_size=100, learning_rate_init=1e-2, max_iter=20,
                           random_state=0).fit(X_train, y_train)


def bits_per_pixel(log_density):
    return -np.mean(log_density) / (64 * np.log(2))


print(f"NADEDensity:     {bits_per_pixel(nade.score_samples(X_test)):.3f} bits/pixel")
print(f"PixelCNNDensity: {bits_per_pixel(pixelcnn.score_samples(X_test, y_test)):.3f} "
      "bits/pixel (given the label)")

# %%
# Training images, NADE samples, and PixelCNN samples with the labels 0 to 9.
labels = np.repeat(np.arange(10), 2)
grids = {
    "training images": X_train[:20],
    "NADEDensity samples": nade.sample(20, random_state=0),
    "PixelCNNDensity samples\n(two per label, 0 to 9, by column)":
        pixelcnn.sample(20, y=labels, random_state=0),
}


def mosaic(images, n_rows=2, gutter=0.12):
    """Tile 8 x 8 images column by column, with a one-pixel light-grey gutter."""
    n_cols = int(np.ceil(len(images) / n_rows))
    out = np.full((n_rows * 9 - 1, n_cols * 9 - 1), gutter)
    for k, image in enumerate(np.asarray(images).reshape(-1, 8, 8)):
        i, j = k % n_rows, k // n_rows
        out[i * 9:i * 9 + 8, j * 9:j * 9 + 8] = image
    return out


fig, axes = plt.subplots(3, 1, figsize=(8, 5.6), layout="constrained")
for ax, (title, images) in zip(axes, grids.items()):
    ax.imshow(mosaic(images), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
plt.show()

# %%
# With 1,437 training images and a few seconds of training, both models draw plausible
# strokes; PixelCNN's samples follow their labels. Both improve with more data and epochs.
# On full binarized MNIST the published test NLLs are about 88.9 nats per image for NADE and
# 81.3 for PixelCNN (:data:`skar.datasets.BINARIZED_MNIST_PUBLISHED`).
