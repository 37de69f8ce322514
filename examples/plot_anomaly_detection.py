"""
=====================================================
Anomaly scores and explanations on a mixed-type table
=====================================================

:class:`~skar.anomaly.DensityOutlierDetector` turns any density estimator into an outlier
detector with the API of :class:`~sklearn.ensemble.IsolationForest`: ``score_samples`` (the
log density, low is abnormal), ``decision_function`` (negative for outliers), ``predict``
(``-1`` for outliers), plus calibrated p-values (``pvalues``) and, for skar's autoregressive
estimators, per-column explanations (``explain``).

The data is a table of card payments with a categorical, a boolean and two continuous
columns. A payment can be abnormal in one column (an amount far too large for a grocery
store) or only in combination (a shop visit at 3 a.m.): a density over all the columns at
once catches both, and its chain-rule factorisation says which column is to blame.
"""

# %%
# A mixed-type frame: ``category`` (pandas category), ``online`` (bool), ``hour`` and
# ``amount`` (floats). The amount depends on the category, the hour on whether the payment
# was made online.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skar import MADEDensity
from skar.anomaly import DensityOutlierDetector


def payments(n, rng):
    category = rng.choice(["grocery", "electronics", "travel"], size=n, p=[0.6, 0.25, 0.15])
    p_online = pd.Series(category).map({"grocery": 0.2, "electronics": 0.6, "travel": 0.7})
    online = rng.rand(n) < p_online.to_numpy()
    hour = np.where(online, rng.normal(20, 2.5, n), rng.normal(13, 3, n)) % 24
    log_mean = pd.Series(category).map({"grocery": 3.5, "electronics": 5.5, "travel": 6.5})
    amount = np.exp(rng.normal(log_mean.to_numpy(), 0.4))
    return pd.DataFrame({
        "category": pd.Categorical(category),
        "online": online,
        "hour": hour.round(2),
        "amount": amount.round(2),
    })


rng = np.random.RandomState(0)
X_train = payments(3000, rng)
X_normal = payments(500, rng)
# Hand-made anomalies: each breaks one relation between columns.
X_odd = pd.DataFrame({
    "category": pd.Categorical(
        ["grocery", "grocery", "electronics", "travel", "electronics", "electronics"],
        categories=X_train["category"].cat.categories),
    "online": [False, False, False, True, True, False],
    "hour": [11.0, 2.5, 1.5, 21.0, 7.5, 14.0],
    "amount": [1800.0, 30.0, 240.0, 6.0, 250.0, 2.5],
})
X_train.head()

# %%
# Fit the detector: 20% of the rows are held out to calibrate the p-values, the density is
# fitted on the rest. With ``contamination="auto"`` a row is flagged when its p-value is at
# most ``false_alarm_rate``, so at most 1% of normal rows raise a false alarm.
detector = DensityOutlierDetector(
    MADEDensity(hidden_layer_sizes=(64, 64), batch_size=256, learning_rate_init=3e-3,
                max_iter=60, random_state=0),
    false_alarm_rate=0.01,
    random_state=0,
).fit(X_train)

print(f"normal rows flagged:    {np.mean(detector.predict(X_normal) == -1):.1%}")
print(f"anomalous rows flagged: {np.mean(detector.predict(X_odd) == -1):.0%}")
result = X_odd.assign(log_density=detector.score_samples(X_odd).round(1),
                      p_value=detector.pvalues(X_odd).round(4))
print(result.to_string())

# %%
# Which column made each anomaly unlikely? ``explain`` splits ``-log p(x)`` into
# ``-log p(x_d | x_<d)``, and ranks the columns by how many more nats they cost than usual.
explanation = detector.explain(X_odd)
excess = explanation.pivot_table(index="row", columns="feature", values="excess")
excess = excess[list(X_train.columns)]
explanation.query("rank == 1")[["feature", "value", "contribution", "excess"]]

# %%
# Left: log densities of fresh normal payments and of the anomalies, with the detector's
# threshold ``offset_``. Right: the excess surprise of each column for each anomaly.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained",
                               gridspec_kw={"width_ratios": [1, 1.15]})
normal_scores = detector.score_samples(X_normal)
odd_scores = detector.score_samples(X_odd)
left = normal_scores.min() - 12  # anomalies further left are drawn at the edge
ax1.hist(normal_scores, bins=40, color="C0", alpha=0.8, label="normal payments")
for s in odd_scores:
    ax1.axvline(max(s, left), color="C3", lw=1.5)
    if s < left:
        ax1.annotate(f"off the scale: {s:.0f}", (left, 0.12),
                     xycoords=("data", "axes fraction"), xytext=(4, 0),
                     textcoords="offset points", color="C3", va="center", fontsize=9)
ax1.axvline(detector.offset_, color="k", ls="--", label="threshold (offset_)")
ax1.plot([], [], color="C3", label="anomalies")
ax1.set_xlim(left - 1, normal_scores.max() + 1)
ax1.set_xlabel("log density (score_samples)")
ax1.set_ylabel("payments")
ax1.legend(loc="upper left", bbox_to_anchor=(0.05, 0.98), framealpha=1)

labels = [
    f"{r.category}, {'online' if r.online else 'in shop'}, {r.hour:g}h, {r.amount:g}"
    for r in X_odd.itertuples()
]
values = excess.to_numpy()
im = ax2.imshow(values, cmap="Reds", vmin=0, vmax=10, aspect="auto")
ax2.set_xticks(range(excess.shape[1]), labels=excess.columns)
ax2.set_yticks(range(len(labels)), labels=labels)
for (i, j), v in np.ndenumerate(values):
    ax2.text(j, i, f"{v:.1f}", ha="center", va="center",
             color="white" if v > 6 else "black", fontsize=9)
ax2.set_title("excess surprise of each column: -log p(x_d | x_<d) minus its median")
fig.colorbar(im, ax=ax2, extend="max", label="nats")
plt.show()

# %%
# The model's ordering is the column order: ``category``, ``online``, ``hour``, ``amount``.
# A shop visit in the middle of the night, or an online order at 7:30 a.m., is blamed on
# ``hour`` given ``online``; an amount that does not fit its category is blamed on ``amount``,
# the later column of the broken pair. The colour scale stops at 10 nats; the numbers are exact.
#
# Not every anomaly crosses the threshold: at ``false_alarm_rate=0.01`` a row is flagged only
# when it is less likely than about 99% of normal rows. Rank rows by ``pvalues`` (or
# ``score_samples``) instead of using ``predict`` when a human reviews the top of the list.
