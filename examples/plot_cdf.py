"""
==========================================================
One column without a bandwidth: neural CDFs (SLC and SIC)
==========================================================

:class:`~skar.CDFDensity` estimates the density of a single column by fitting a monotone
network :math:`H(x)` to its cumulative distribution function and differentiating it, the
"stochastic learning of the cumulative" (SLC) and "smooth interpolation of the cumulative"
(SIC) of Magdon-Ismail & Atiya. :math:`H` is pinned to 0 and 1 at :math:`\\pm\\infty`, so the
density :math:`dH/dx` integrates to exactly 1; sampling inverts :math:`H` by bisection.

Here both are compared with :class:`~sklearn.neighbors.KernelDensity` whose bandwidth is chosen
by cross-validation, on 1,000 draws of a mixture with one narrow and one wide mode. A single
kernel width is a compromise between the two modes; the neural CDF adapts its smoothness.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skar import CDFDensity

rng = np.random.RandomState(0)


def true_density(x):
    return 0.4 * stats.norm.pdf(x, -2.0, 0.5) + 0.6 * stats.norm.pdf(x, 1.0, 1.2)


def draw(n):
    narrow = rng.rand(n) < 0.4
    return np.where(narrow, rng.normal(-2.0, 0.5, n), rng.normal(1.0, 1.2, n))[:, None]


X, X_test = draw(1000), draw(5000)

models = {
    "SLC": CDFDensity(method="slc", max_iter=150, random_state=0).fit(X),
    "SIC": CDFDensity(method="sic", max_iter=150, random_state=0).fit(X),
    "KDE, CV bandwidth": GridSearchCV(
        KernelDensity(), {"bandwidth": np.logspace(-1.5, 0.5, 20)}, cv=5
    ).fit(X).best_estimator_,
}

# %%
# Held-out log-likelihood per point, against the true density's (higher is better).
print(f"true density        {np.log(true_density(X_test[:, 0])).mean():.4f}")
for name, model in models.items():
    print(f"{name:<20}{model.score_samples(X_test).mean():.4f}")

# %%
# The estimated densities, and a histogram of 5,000 values sampled from the SIC model.
x = np.linspace(-5, 6, 600)
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax.plot(x, true_density(x), "k", lw=2.5, label="true density")
for (name, model), style in zip(models.items(), ["C0-", "C1--", "C3:"]):
    ax.plot(x, np.exp(model.score_samples(x[:, None])), style, lw=1.5, label=name)
ax.set(xlabel="x", ylabel="density", title="n = 1,000")
ax.legend(frameon=False)

samples = models["SIC"].sample(5000, random_state=1)
ax2.hist(samples[:, 0], bins=80, density=True, color="C1", alpha=0.5, label="SIC samples")
ax2.plot(x, np.exp(models["SIC"].score_samples(x[:, None])), "C1", label="SIC density")
ax2.set(xlabel="x", title="sampling inverts the fitted CDF")
ax2.legend(frameon=False)
plt.show()
