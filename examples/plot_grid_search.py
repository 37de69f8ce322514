"""
===========================================
Choosing hyper-parameters with GridSearchCV
===========================================

skar estimators have ``score(X)``, the total log-likelihood of ``X``, so
:class:`~sklearn.model_selection.GridSearchCV` needs no ``scoring`` argument: it keeps the
parameters with the highest held-out log-likelihood, exactly as for
:class:`~sklearn.neighbors.KernelDensity`.

Here we search the number of mixture components of each conditional and the width of the
hidden layer of :class:`~skar.MADEDensity` on a ring-shaped 2-D data set. ``score`` is a sum
over rows, so the mean test score is divided by the number of test rows to read it in nats
per point.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from skar import MADEDensity

rng = np.random.RandomState(0)
angle = rng.uniform(0, 2 * np.pi, 900)
radius = 2 + 0.15 * rng.standard_normal(900)
X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])

param_grid = {"n_components": [1, 2, 4, 8], "hidden_layer_sizes": [(16,), (64,)]}
search = GridSearchCV(
    MADEDensity(batch_size=300, learning_rate_init=1e-2, max_iter=50, n_iter_no_change=5,
                random_state=0),
    param_grid,
    cv=3,
).fit(X)
print("best parameters:", search.best_params_)

# %%
# The mean held-out log-likelihood of every setting, with its spread over the folds. One
# Gaussian per conditional cannot express ``p(x2 | x1)`` on a ring, which is two-humped for
# ``|x1| < 2``; two or more components do much better. The differences between 2, 4 and 8
# components are within the spread over the folds: with this little data (and short training)
# the search cannot tell them apart, and a cheaper setting is as good a choice as the "best".
res = search.cv_results_
n_test = len(X) // 3
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
for hidden, marker in zip(param_grid["hidden_layer_sizes"], "os"):
    rows = [i for i, p in enumerate(res["params"]) if p["hidden_layer_sizes"] == hidden]
    ks = [res["params"][i]["n_components"] for i in rows]
    ax.errorbar(ks, res["mean_test_score"][rows] / n_test,
                yerr=res["std_test_score"][rows] / n_test, marker=marker, capsize=3,
                label=f"hidden_layer_sizes={hidden}")
ax.set_xscale("log", base=2)
ax.set_xticks(param_grid["n_components"], labels=[str(k) for k in param_grid["n_components"]])
ax.set_xlabel("n_components (mixture components per conditional)")
ax.set_ylabel("held-out log-likelihood (nats per point)")
ax.set_title("GridSearchCV, 3 folds")
ax.legend(loc="lower right")
ax.grid(alpha=0.3)
plt.show()

# %%
# Samples from the best model, refitted on all rows by ``GridSearchCV``. (A longer training,
# a larger ``max_iter`` and a smaller learning rate, sharpens the ring further.)
samples = search.best_estimator_.sample(900, random_state=1)
fig, ax2 = plt.subplots(figsize=(5, 5), layout="constrained")
ax2.scatter(*X.T, s=3, alpha=0.4, label="data")
ax2.scatter(*samples.T, s=3, alpha=0.4, label="samples of the best model")
ax2.set_aspect("equal")
ax2.set_title(f"best: {search.best_params_}", fontsize=9)
ax2.legend(loc="upper right", markerscale=4, fontsize=8)
plt.show()
