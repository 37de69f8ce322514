"""Recipe on or off for NADE and RNADE: the selection of benchmarks/defaults, on held-out rows.

Issue 17 asks for one default training recipe chosen over a suite of data sets by a fixed
procedure, never tuned on one data set. ``MADEDensity`` and ``ARTransformerDensity`` took the
recipe (``lr_schedule="cosine"``, ``average_weights=0.99``, ``patience_fraction=0.5``,
``refit=True``) from such a selection; this script applies the same procedure to the tied
NADE estimators, with two candidates:

- ``off``: ``lr_schedule=None, average_weights=0.0, patience_fraction=0.0, refit=False`` (the
  training of before the recipe);
- ``on``: the recipe above.

Everything else is the estimator's default (``init_params="marginals"`` in both).

Protocol (written before any number of this run was read):

- Every cell is fitted on the benchmark's **training** rows only. 20% of them (seeded,
  ``RandomState(1000 + seed)``) are held out as *selection rows*; the model is fitted on the
  other 80% and scored on the selection rows. On ``mixture_1d`` the model is fitted on the
  100 training rows and scored on 5,000 fresh draws of the true mixture
  (``RandomState(20_000 + seed)``, disjoint from the benchmark's test draws). The benchmark's
  test rows are never used.
- ``RNADEDensity()`` on the continuous data sets of the suite: ``mixture_1d`` (seeds 0-2),
  ``moons``, ``boston``, ``ionosphere``, ``red_wine``, ``digits_pca15`` (first fold or seed;
  ``--seeds`` for more). ``white_wine`` and ``parkinsons`` (4,898 and 5,875 rows) are left out
  of the quick run for compute.
- ``NADEDensity()`` on discrete data: the suite has no all-discrete data set, so the selection
  uses the 8x8 digits binarized at 8 of 16 (``digits_binary``: 64 binary columns, the
  benchmark's 80/20 split per seed; seeds 0-1).
- Rule, per model: rank the two candidates within every cell (1 = higher selection
  log-likelihood), average the ranks per data set (over seeds), then over data sets (each data
  set weighs the same); the lower mean rank wins; a tie goes to the higher mean over data sets
  of ``LL(on) - LL(off)``. One choice per model, for every data set.

Usage::

    python benchmarks/defaults/select_recipe.py --worker 0 --workers 2 &
    python benchmarks/defaults/select_recipe.py --worker 1 --workers 2 &
    python benchmarks/defaults/select_recipe.py --table-only

Cells go to ``benchmarks/results/select_recipe_nade_cells.jsonl`` (a rerun skips the cells
there) and the table to ``benchmarks/results/select_recipe_nade.md``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skar import NADEDensity, RNADEDensity

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("defaults_run", _HERE / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["defaults_run"] = bench
_spec.loader.exec_module(bench)

RESULTS = _HERE.parent / "results"
OFF = {"lr_schedule": None, "average_weights": 0.0, "patience_fraction": 0.0, "refit": False}
ON = {"lr_schedule": "cosine", "average_weights": 0.99, "patience_fraction": 0.5, "refit": True}
CONFIGS = {"off": OFF, "on": ON}
MODELS = {"RNADEDensity()": RNADEDensity, "NADEDensity()": NADEDensity}
# (data set, model, seeds in the quick run); cheap cells first, so a stopped run has them.
PLAN = [("mixture_1d", "RNADEDensity()", 3), ("moons", "RNADEDensity()", 1),
        ("boston", "RNADEDensity()", 1), ("ionosphere", "RNADEDensity()", 1),
        ("digits_binary", "NADEDensity()", 2), ("digits_pca15", "RNADEDensity()", 1),
        ("red_wine", "RNADEDensity()", 1)]


def training_rows(ds: str, seed: int) -> np.ndarray:
    """The benchmark's training rows of split ``seed`` of ``ds`` (``digits_binary``: the
    digits' 80/20 split, pixels above 7 of 16 set to 1)."""
    if ds == "digits_binary":
        X = (load_digits().data > 7).astype(np.float64)
        return train_test_split(X, test_size=0.2, random_state=seed)[0]
    return np.asarray(bench.load_split(ds, seed).X_train, dtype=np.float64)


def selection_split(ds: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit rows, selection rows)``, both from the training rows (see the protocol)."""
    X = training_rows(ds, seed)
    if ds == "mixture_1d":
        rng = np.random.RandomState(20_000 + seed)
        comp = rng.rand(5000) < 0.3
        sel = np.where(comp, rng.normal(0, 1, 5000), rng.normal(5, 1, 5000))[:, None]
        return X, sel
    rows = np.random.RandomState(1000 + seed).permutation(len(X))
    k = int(0.2 * len(X))
    return X[rows[k:]], X[rows[:k]]


def cell(ds: str, model: str, seed: int, config: str) -> dict[str, Any]:
    """Fit one candidate on the fit rows and score the selection rows."""
    torch.set_num_threads(1)
    fit_rows, sel = selection_split(ds, seed)
    est = MODELS[model](random_state=seed, **CONFIGS[config])
    t = time.perf_counter()
    est.fit(fit_rows)
    fit_s = time.perf_counter() - t
    return {"dataset": ds, "model": model, "seed": seed, "config": config,
            "selection_ll": float(est.score_samples(sel).mean()), "fit_s": fit_s,
            "n_fit": len(fit_rows), "n_selection": len(sel), "n_iter": int(est.n_iter_),
            "refit_epochs": getattr(est.net_, "refit_epochs_", None),
            "load_average": os.getloadavg()[0]}


def rank_table(cells: list[dict[str, Any]]) -> str:
    """The rule of the protocol, per model, as a markdown table."""
    by = collections.defaultdict(dict)
    for c in cells:
        by[(c["model"], c["dataset"], c["seed"])][c["config"]] = c
    lines = ["| model | data set | seed | off LL | on LL | on − off | off fit s (epochs) | "
             "on fit s (epochs, refit) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    ranks = collections.defaultdict(lambda: collections.defaultdict(list))
    deltas = collections.defaultdict(lambda: collections.defaultdict(list))
    for (model, ds, seed), pair in sorted(by.items()):
        if set(pair) != set(CONFIGS):
            continue  # an incomplete cell does not count
        off, on = pair["off"], pair["on"]
        d = on["selection_ll"] - off["selection_ll"]
        ranks[model][ds].append(1.0 if d > 0 else 2.0 if d < 0 else 1.5)
        deltas[model][ds].append(d)
        lines.append(f"| {model} | {ds} | {seed} | {off['selection_ll']:.3f} | "
                     f"{on['selection_ll']:.3f} | {d:+.3f} | {off['fit_s']:.0f} "
                     f"({off['n_iter']}) | {on['fit_s']:.0f} ({on['n_iter']}, "
                     f"{on['refit_epochs']}) |")
    lines += ["", "| model | data sets | mean rank of `on` (of 2) | mean rank of `off` | "
              "mean on − off (nats) | chosen |", "|---|---:|---:|---:|---:|---|"]
    for model in ranks:
        r_on = np.mean([np.mean(v) for v in ranks[model].values()])
        d = np.mean([np.mean(v) for v in deltas[model].values()])
        chosen = "on" if r_on < 1.5 or (r_on == 1.5 and d > 0) else "off"
        lines.append(f"| {model} | {len(ranks[model])} | {r_on:.2f} | {3 - r_on:.2f} | "
                     f"{d:+.3f} | **{chosen}** |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seeds", type=int, help="seeds per data set (default: the quick plan's)")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    path = RESULTS / "select_recipe_nade_cells.jsonl"
    done = []
    if path.exists():
        done = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    have = {(c["dataset"], c["model"], c["seed"], c["config"]) for c in done}
    plan = [(ds, m, s, cfg) for ds, m, n in PLAN for s in range(args.seeds or n)
            for cfg in CONFIGS]
    if not args.table_only:
        for i, key in enumerate(plan):
            # A worker runs both candidates of its cells: the pair sees the same load.
            if (i // len(CONFIGS)) % args.workers != args.worker or key in have:
                continue
            c = cell(*key)
            with path.open("a") as f:
                f.write(json.dumps(c) + "\n")
            print(json.dumps(c), flush=True)
            done.append(c)
    md = rank_table(done)
    print(md)
    if args.table_only:
        (RESULTS / "select_recipe_nade.md").write_text(
            "# Training recipe on/off for NADE and RNADE (selection rows of the training "
            "folds)\n\nCommand: `python benchmarks/defaults/select_recipe.py --worker i "
            "--workers 2` (two processes, `nice -n 19`, one torch thread each), then "
            "`--table-only`. Protocol: the module docstring.\n\n" + md + "\n")


if __name__ == "__main__":
    main()
