"""
=========================================================
Rejecting perturbed images by their likelihood (defence)
=========================================================

An image classifier can be fooled by a small, deliberate perturbation: each pixel moved a
little in the direction that raises the classifier's loss (the *fast gradient sign* attack,
Goodfellow et al. 2015). PixelDefend (Song et al. 2018) noticed that such images are far less
likely under an image density fitted to clean images, so a density can flag them before the
classifier sees them.

Here a :class:`~sklearn.linear_model.LogisticRegression` classifies scikit-learn's 8 x 8 digits
(17 grey levels, 0 to 16). Its loss gradient with respect to the pixels is known in closed form
from ``coef_``: for the true class ``y``, ``grad_x = W^T (softmax(W x + b) - e_y)``. Two steps
of one grey level along its sign make the adversarial images; random steps of one grey level
make the noisy ones. :class:`~skar.anomaly.DensityOutlierDetector` wraps a
:class:`~skar.PixelCNNDensity` and a :class:`~skar.PixelRNNDensity` fitted to
clean training images; each image's log-likelihood is its score, and the AUROC says how well it
separates perturbed from clean test images (1 is perfect, 0.5 chance). Tiny models, a few
epochs: well under a minute on a laptop CPU.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skar import PixelCNNDensity, PixelRNNDensity
from skar.anomaly import DensityOutlierDetector

X, y = load_digits(return_X_y=True)
X = X.astype(np.int64)  # (1797, 64), grey levels 0 .. 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=0, stratify=y)

clf = LogisticRegression(max_iter=2000).fit(X_train / 16, y_train)


def gradient_sign_attack(images, labels, n_steps=2, step=1):
    """Move every pixel ``step`` grey levels along the sign of the loss gradient, ``n_steps``
    times (the logistic regression sees ``x / 16``, so the gradient is ``W^T (p - e_y) / 16``,
    whose sign is the same)."""
    x = images.astype(float)
    onehot = np.eye(len(clf.classes_))[np.searchsorted(clf.classes_, labels)]
    for _ in range(n_steps):
        p = softmax(clf.decision_function(x / 16), axis=1)
        grad = (p - onehot) @ clf.coef_  # d loss / d (x / 16)
        x = np.clip(x + step * np.sign(grad), 0, 16)
    return x.astype(np.int64)


rng = np.random.RandomState(0)
X_adv = gradient_sign_attack(X_test, y_test)
# Noise: every pixel moved by -1, 0 or +1 grey level at random.
X_noise = np.clip(X_test + rng.randint(-1, 2, size=X_test.shape), 0, 16)
print(f"classifier accuracy: clean {clf.score(X_test / 16, y_test):.3f}, "
      f"noisy {clf.score(X_noise / 16, y_test):.3f}, "
      f"adversarial {clf.score(X_adv / 16, y_test):.3f}")
print(f"mean |change| per pixel: noise {np.abs(X_noise - X_test).mean():.2f}, "
      f"adversarial {np.abs(X_adv - X_test).mean():.2f} grey levels")

# %%
# Two small image densities, fitted on clean training images only (17 levels, a Categorical
# per pixel), each wrapped in an outlier detector.
shared = dict(n_levels=17, max_iter=6, batch_size=64, learning_rate_init=5e-3,
              early_stopping=False, random_state=0)
detectors = {
    "PixelCNNDensity": DensityOutlierDetector(
        PixelCNNDensity(n_filters=12, n_layers=2, head_filters=32, **shared), random_state=0),
    "PixelRNNDensity (Diagonal BiLSTM)": DensityOutlierDetector(
        PixelRNNDensity(layer="diagonal_bilstm", n_filters=16, hidden_size=16, n_layers=1,
                        kernel_size=5, head_filters=32, **shared), random_state=0),
}
scores, aurocs = {}, {}
for name, det in detectors.items():
    det.fit(X_train)
    s = {k: det.score_samples(v) for k, v in
         [("clean", X_test), ("noise", X_noise), ("adversarial", X_adv)]}
    scores[name] = s
    for kind in ("noise", "adversarial"):
        truth = np.r_[np.zeros(len(X_test)), np.ones(len(X_test))]
        # A low log-likelihood means "perturbed": the AUROC of -score.
        aurocs[name, kind] = roc_auc_score(truth, -np.r_[s["clean"], s[kind]])
        print(f"{name:34s} AUROC clean vs {kind:11s}: {aurocs[name, kind]:.3f}")

# %%
# Histograms of the log-likelihoods: the perturbed images sit far below the clean ones.
fig, axes = plt.subplots(1, len(detectors), figsize=(10, 3.6), layout="constrained")
for ax, (name, s) in zip(axes, scores.items()):
    bins = np.linspace(min(map(np.min, s.values())), max(map(np.max, s.values())), 40)
    for kind, color in [("clean", "tab:blue"), ("noise", "tab:orange"),
                        ("adversarial", "tab:red")]:
        label = kind if kind == "clean" else f"{kind} (AUROC {aurocs[name, kind]:.3f})"
        ax.hist(s[kind], bins=bins, alpha=0.55, color=color, label=label)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("log-likelihood (nats per image)")
    ax.legend(fontsize=8)
axes[0].set_ylabel("test images")
plt.show()

# %%
# A clean test image, its noisy and its adversarial version, and the classifier's guess.
fig, axes = plt.subplots(1, 3, figsize=(5.4, 2.2), layout="constrained")
for ax, (title, img) in zip(axes, [("clean", X_test[0]), ("noise", X_noise[0]),
                                   ("adversarial", X_adv[0])]):
    ax.imshow(img.reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
    ax.set_title(f"{title}: '{clf.predict(img[None] / 16)[0]}'", fontsize=9)
    ax.set_axis_off()
plt.show()
