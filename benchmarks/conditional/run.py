"""Conditional density benchmark: held-out log p(x | y) on UCI red wine given its quality.

x is the 11 physico-chemical columns (data units), y the quality score (an integer 3 to 8,
passed as a number). The columns of x are recorded on grids (pH to 0.01, sulphur dioxide to 1,
density to 1e-5): a continuous density fitted to such values can put a narrow spike on every
recorded value and score without bound, so every column is *dequantized* first, once, with a
fixed seed: ``x + u``, ``u`` uniform on half a grid step either side (the step found by
:func:`skar.schema.detect_step`). Every method then fits and scores the same continuous data,
by the mean held-out ``log p(x | y)`` per row, in nats, in the units of x, over stratified
80/20 splits:

* skar's conditional estimators, ``fit(X_train, y_train)`` then
  ``score_samples(X_test, y_test)``: MADEDensity (y into every hidden unit),
  ARTransformerDensity (cross-attention to a y token), RNADEDensity (a conditioning bias) and
  RNNDensity (the initial state from y). The columns are modelled
  as continuous densities (``quantization=None, point_masses=None``), as the baselines do, so the
  numbers are in the same units;
* GaussianMixture conditioned in closed form: a mixture fitted to the joint ``(x, y)``
  (standardised, number of components chosen by 5-fold CV on the joint likelihood; the
  integer y dequantized the same way for this fit only), then
  ``log p(x | y) = log p(x, y) - log p(y)`` with ``p(y) = sum_k pi_k N(y; mu_k^y, Sigma_k^yy)``,
  both exact for a Gaussian mixture;
* per-class KernelDensity: one KDE of x per quality class, with one bandwidth chosen by 5-fold CV
  of the held-out ``log p(x | y)`` (classes of a few rows cannot choose their own);
* for reference, the unconditional ``log p(x)`` of every skar model (``fit(X_train)``) and of
  the CV-tuned mixture: the gap to the conditional rows is what the quality says about the
  wine, as each method can use it.

Usage::

    nice -n 19 python benchmarks/conditional/run.py --quick   # 1 split, shorter training
    nice -n 19 python benchmarks/conditional/run.py           # 5 splits

Writes ``benchmarks/results/conditional.md`` (``conditional_quick.md`` with ``--quick``). One
torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from skar import ARTransformerDensity, MADEDensity, RNADEDensity, RNNDensity
from skar.datasets import load_wine_quality
from skar.schema import detect_step

RESULTS = Path(__file__).resolve().parents[1] / "results"
CONTINUOUS = dict(quantization=None, point_masses=None)


def dequantize(X: np.ndarray, seed: int) -> tuple[np.ndarray, list]:
    """``X + u`` with ``u ~ U(-r/2, r/2)`` per column of grid step ``r`` (none: unchanged)."""
    rng = np.random.default_rng(seed)
    steps = [detect_step(X[:, j]) for j in range(X.shape[1])]
    noise = np.column_stack([rng.uniform(-r / 2, r / 2, len(X)) if r else np.zeros(len(X))
                             for r in steps])
    return X + noise, steps


def skar_models(seed: int, quick: bool) -> dict:
    epochs = 100 if quick else 400
    return {
        "MADEDensity": lambda: MADEDensity(
            hidden_layer_sizes=(128, 128), n_components=10, max_iter=epochs,
            random_state=seed, **CONTINUOUS),
        "ARTransformerDensity": lambda: ARTransformerDensity(
            d_model=32, n_heads=4, n_layers=2, n_components=10, max_iter=epochs // 2,
            random_state=seed, **CONTINUOUS),
        "RNADEDensity": lambda: RNADEDensity(
            hidden_layer_sizes=(100,), n_components=10, max_iter=epochs,
            random_state=seed, **CONTINUOUS),
        "RNNDensity": lambda: RNNDensity(
            hidden_size=64, n_components=10, max_iter=epochs // 2, random_state=seed,
            **CONTINUOUS),
    }


def joint_mixture(Z: np.ndarray, seed: int, quick: bool) -> GaussianMixture:
    """A Gaussian mixture on standardised rows, components and covariance by 5-fold CV."""
    grid = {"n_components": [1, 2, 4, 8] if quick else [1, 2, 3, 4, 6, 8, 12, 16],
            "covariance_type": ["full"]}
    search = GridSearchCV(GaussianMixture(reg_covar=1e-4, n_init=1, random_state=seed), grid,
                          cv=5)
    return search.fit(Z).best_estimator_


def mixture_conditional(gm: GaussianMixture, Zx: np.ndarray, zy: np.ndarray) -> np.ndarray:
    """``log p(x | y)`` of a mixture on ``(x, y)``, y the last column: ``log p(x, y) - log p(y)``,
    with ``p(y)`` the mixture's exact marginal of its last coordinate."""
    joint = gm.score_samples(np.column_stack([Zx, zy]))
    comps = [np.log(w) + multivariate_normal(mu[-1], cov[-1, -1]).logpdf(zy)
             for w, mu, cov in zip(gm.weights_, gm.means_, gm.covariances_)]
    return joint - logsumexp(np.vstack(comps), axis=0)


def per_class_kde(Zx: np.ndarray, y: np.ndarray, bandwidth: float) -> dict:
    return {c: KernelDensity(bandwidth=bandwidth).fit(Zx[y == c]) for c in np.unique(y)}


def kde_conditional(kdes: dict, Zx: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty(len(y))
    for c in np.unique(y):
        out[y == c] = kdes[c].score_samples(Zx[y == c])
    return out


def kde_bandwidth(Zx: np.ndarray, y: np.ndarray, seed: int) -> float:
    """One bandwidth for every class, by 5-fold CV of the held-out ``log p(x | y)``."""
    grid = np.logspace(-1.3, 0.3, 17)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(Zx, y))
    scores = []
    for h in grid:
        total = 0.0
        for train, valid in folds:
            kdes = per_class_kde(Zx[train], y[train], h)
            known = np.isin(y[valid], list(kdes))
            total += kde_conditional(kdes, Zx[valid][known], y[valid][known]).sum()
        scores.append(total)
    return float(grid[int(np.argmax(scores))])


def run_split(X: np.ndarray, y: np.ndarray, seed: int, quick: bool) -> dict[str, tuple]:
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y,
                                              random_state=seed)
    rows: dict[str, tuple] = {}
    for name, make in skar_models(seed, quick).items():
        t = time.perf_counter()
        est = make().fit(X_tr, y_tr)
        rows[f"{name}, given y"] = (est.score_samples(X_te, y_te).mean(), time.perf_counter() - t)
        t = time.perf_counter()
        est = make().fit(X_tr)
        rows[f"{name}, no y"] = (est.score_samples(X_te).mean(), time.perf_counter() - t)
        print(f"  split {seed} {name}: {rows[f'{name}, given y'][0]:.3f} given y, "
              f"{rows[f'{name}, no y'][0]:.3f} without", flush=True)

    sx = StandardScaler().fit(X_tr)
    sy = StandardScaler().fit(y_tr[:, None].astype(float))
    Zx_tr, Zx_te = sx.transform(X_tr), sx.transform(X_te)
    zy_te = sy.transform(y_te[:, None].astype(float))[:, 0]
    log_jac = -np.log(sx.scale_).sum()  # standardised density -> density in units of x

    t = time.perf_counter()
    # The joint mixture is fitted with y dequantized (else its components collapse on the six
    # values of y), and conditioned on the recorded y.
    y_jit = y_tr + np.random.default_rng(seed).uniform(-0.5, 0.5, len(y_tr))
    zy_jit = sy.transform(y_jit[:, None])[:, 0]
    gm = joint_mixture(np.column_stack([Zx_tr, zy_jit]), seed, quick)
    rows["GaussianMixture (CV) on (x, y), given y"] = (
        (mixture_conditional(gm, Zx_te, zy_te) + log_jac).mean(), time.perf_counter() - t)
    t = time.perf_counter()
    gx = joint_mixture(Zx_tr, seed, quick)
    rows["GaussianMixture (CV), no y"] = ((gx.score_samples(Zx_te) + log_jac).mean(),
                                               time.perf_counter() - t)

    t = time.perf_counter()
    h = kde_bandwidth(Zx_tr, y_tr, seed)
    kdes = per_class_kde(Zx_tr, y_tr, h)
    rows[f"KernelDensity per class (CV, h={h:.3f}), given y"] = (
        (kde_conditional(kdes, Zx_te, y_te) + log_jac).mean(), time.perf_counter() - t)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = load_wine_quality(color="red", return_X_y=True)
    X, steps = dequantize(X, seed=12345)
    n_splits = 1 if args.quick else 5
    start = time.perf_counter()
    results: dict[str, list] = {}
    for seed in range(n_splits):
        for name, value in run_split(X, y, seed, args.quick).items():
            key = name.split(" (CV, h=")[0] + " (CV), given y" if "h=" in name else name
            results.setdefault(key, []).append(value)
    total = time.perf_counter() - start

    lines = [
        "# Conditional density: red wine given its quality",
        "",
        f"Command: `nice -n 19 python benchmarks/conditional/run.py"
        f"{' --quick' if args.quick else ''}`, {n_splits} stratified 80/20 split(s), "
        f"{total / 60:.1f} min in total.",
        f"Machine: {platform.machine()}, 1 torch thread, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}.",
        "",
        "Mean held-out log-likelihood per row (nats, units of x; higher is better); "
        "`given y` rows are log p(x | y), conditioned on the quality; `no y` rows are the "
        "unconditional log p(x) of the same method, for reference. The columns are "
        "dequantized once (uniform noise of one grid step, "
        f"steps {steps}), and skar models treat every column as a continuous density "
        "(`quantization=None, point_masses=None`), as the baselines do.",
        "",
        "| method | test log-likelihood | sd over splits | fit time (s) |",
        "|---|---|---|---|",
    ]
    for name, vals in sorted(results.items(), key=lambda kv: -np.mean([v[0] for v in kv[1]])):
        ll = np.array([v[0] for v in vals])
        sd = f"{ll.std(ddof=1):.3f}" if len(ll) > 1 else "-"
        lines.append(f"| {name} | {ll.mean():.3f} | {sd} | "
                     f"{np.mean([v[1] for v in vals]):.0f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("conditional_quick.md" if args.quick else "conditional.md")
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
