"""
=============================================
Learning curves from ``selection_history_``
=============================================

Every skar estimator keeps its training history in ``history_``, a
:class:`pandas.DataFrame` with one row per epoch: the mean negative log-likelihood of the
training rows (``train_nll``) and of the rows held out for early stopping (``valid_nll``),
in nats per row in the units of the data, and the epoch's duration.

Here three estimators are fitted on UCI red wine (11 physico-chemical columns). Early stopping
ends a fit once the validation NLL has not improved for ``n_iter_no_change`` epochs (a patience
that grows with the epochs run, ``patience_fraction``), and the best epoch (marked with a dot)
sets the epoch count; MADE and the Transformer then train again on all rows for that many
epochs (``refit=True``, their default), so their ``history_`` is the refit's and the curves
below, with their validation NLL, are ``selection_history_``. ``max_iter`` caps the number of
epochs (kept small here so that the example runs in seconds).
"""

# %%
import matplotlib.pyplot as plt

from skar import ARTransformerDensity, MADEDensity, RNADEDensity
from skar.datasets import load_wine_quality

X, _ = load_wine_quality(color="red", return_X_y=True)
common = dict(batch_size=200, learning_rate_init=3e-3, max_iter=40, n_iter_no_change=8,
              random_state=0)
models = {
    "MADEDensity": MADEDensity(hidden_layer_sizes=(64, 64), n_components=5, **common),
    "RNADEDensity": RNADEDensity(hidden_layer_sizes=(64,), n_components=5, **common),
    "ARTransformerDensity": ARTransformerDensity(d_model=32, n_layers=1, n_components=5,
                                                 **common),
}
for model in models.values():
    model.fit(X)

models["MADEDensity"].selection_history_.head()

# %%
# Plot train and validation NLL per epoch. Lower is better; the gap between the two curves
# is the over-fit.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True, layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    h = model.selection_history_
    ax.plot(h["epoch"], h["train_nll"], label="train")
    ax.plot(h["epoch"], h["valid_nll"], label="validation")
    best = h["valid_nll"].idxmin()
    ax.plot(h.loc[best, "epoch"], h.loc[best, "valid_nll"], "o", color="C1")
    ax.set_title(f"{name}\nbest epoch {h.loc[best, 'epoch']}, "
                 f"{h['duration'].sum() + model.history_['duration'].sum():.1f} s", fontsize=10)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("negative log-likelihood (nats per wine)")
axes[0].legend()
axes[0].set_ylim(
    top=float(min(m.selection_history_["train_nll"].iloc[0] for m in models.values())))
plt.show()
