"""The conditional family of the continuous columns (``component``), chosen on held-out rows.

Every tabular estimator models a continuous column given the columns before it by a mixture
of ``n_components`` location-scale components; ``component`` names the kernel ``f_0`` of

    p(x_d | x_<d) = sum_k pi_k(x_<d) / s_k(x_<d) * f_0((x_d - m_k(x_<d)) / s_k(x_<d)).

A Gaussian kernel's log-density falls quadratically in the distance from the nearest
component, a logistic or Laplace kernel's only linearly. The defaults benchmark found one
``MADEDensity()`` fit on a Boston fold whose mean held-out log-likelihood was -48.5 while its
median row scored -0.26: a single test row scored -2,391 nats, 2,377 of them in one column
whose conditional components the model had made narrow (the other folds: -4.1 and -2.3). This
script decides, by the procedure of ``select_recipe.py``, which kernel the defaults use.

Candidates: ``component`` in {"gaussian", "logistic", "laplace"}; everything else at the
estimator's defaults, except ``RNADEDensity``'s training recipe, which is off
(``select_recipe.OFF``): the recipe's own selection, re-read with this script's rule (nats per
column), chose off for RNADE, and its defaults follow that (see ``benchmarks/defaults/README.md``).

Protocol (written before any number of this run was read):

- Rows: the benchmark's **training** rows only, split as in ``select_recipe.py``: 20% of them
  (``RandomState(1000 + seed)``) are selection rows, the model is fitted on the other 80%;
  ``mixture_1d`` is fitted on its 100 training rows and scored on 5,000 fresh draws. Test rows
  are never used.
- Models and data: ``MADEDensity()``, ``RNADEDensity()`` and ``ARTransformerDensity()`` on the
  continuous data sets of the suite: ``mixture_1d`` (seeds 0-2), ``moons``, ``boston``,
  ``ionosphere``, ``digits_pca15``, ``red_wine`` (first fold or seed). ``white_wine`` and
  ``parkinsons`` are left out for compute.
- Rule, per model: in every cell, the difference of the candidate's selection log-likelihood
  from the Gaussian's, **divided by the number of columns** (nats per column, so that
  ionosphere's 32 columns do not outweigh moons' 2); averaged over seeds per data set, then over
  data sets (each data set weighs the same). The candidate with the highest mean wins (the
  Gaussian scores 0); the mean rank (1 = best of 3) is reported beside it but does not decide.
  One choice per model, for every data set. (The rank rule of ``select_recipe.py`` counted wins
  and let RNADE's recipe through while it lost 0.37 nats on average; this rule weighs the
  nats.)

Usage::

    python benchmarks/defaults/select_component.py --worker 0 --workers 2 &
    python benchmarks/defaults/select_component.py --worker 1 --workers 2 &
    python benchmarks/defaults/select_component.py --table-only

Cells go to ``benchmarks/results/select_component_cells.jsonl`` (a rerun skips the cells
there), the table to ``benchmarks/results/select_component.md``. Nothing is downloaded.
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

from skar import ARTransformerDensity, MADEDensity, RNADEDensity

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("select_recipe", _HERE / "select_recipe.py")
recipe = importlib.util.module_from_spec(_spec)
sys.modules["select_recipe"] = recipe
_spec.loader.exec_module(recipe)

RESULTS = _HERE.parent / "results"
CANDIDATES = ("gaussian", "logistic", "laplace")
MODELS = {"MADEDensity()": MADEDensity, "RNADEDensity()": RNADEDensity,
          "ARTransformerDensity()": ARTransformerDensity}
# Fixed parameters per model besides ``component`` (see the docstring).
FIXED = {"RNADEDensity()": recipe.OFF}
# (data set, seeds); cheap data sets first, so that a stopped run has them.
PLAN = [("mixture_1d", 3), ("moons", 1), ("boston", 1), ("ionosphere", 1),
        ("digits_pca15", 1), ("red_wine", 1)]


def fit_and_score(ds: str, model: str, seed: int, candidate: str, make: Any,
                  **extra: Any) -> dict[str, Any]:
    """One cell of a selection: ``make(fit_rows)`` builds the estimator, which is fitted on
    the fit rows of ``(ds, seed)`` and scores the selection rows; returns the cell's record
    (``extra`` goes into it; the candidate is stored under ``"component"``, the key
    :func:`rank_table` reads). Shared by every ``select_*.py`` script after this one."""
    torch.set_num_threads(1)
    fit_rows, sel = recipe.selection_split(ds, seed)
    est = make(fit_rows)
    t = time.perf_counter()
    est.fit(fit_rows)
    fit_s = time.perf_counter() - t
    ll = est.score_samples(sel)
    return {"dataset": ds, "model": model, "seed": seed, "component": candidate, **extra,
            "selection_ll": float(ll.mean()), "selection_median": float(np.median(ll)),
            "selection_min": float(ll.min()), "n_columns": int(fit_rows.shape[1]),
            "fit_s": fit_s, "n_fit": len(fit_rows), "n_selection": len(sel),
            "n_iter": int(est.n_iter_), "load_average": os.getloadavg()[0]}


def cell(ds: str, model: str, seed: int, component: str) -> dict[str, Any]:
    """Fit one candidate on the fit rows and score the selection rows."""
    return fit_and_score(ds, model, seed, component, lambda rows: MODELS[model](
        component=component, random_state=seed, **FIXED.get(model, {})))


def rank_table(cells: list[dict[str, Any]], incumbent: str = "gaussian") -> str:
    """The rule of the protocol, per model, as markdown tables (``incumbent`` scores 0 and
    keeps a tie)."""
    by = collections.defaultdict(dict)
    for c in cells:
        by[(c["model"], c["dataset"], c["seed"])][c["component"]] = c
    lines = ["| model | data set | seed | " + " | ".join(
        f"{k} LL (median, min)" for k in CANDIDATES) + " | fit s (" + ", ".join(CANDIDATES)
        + ") |", "|---|---|---:|" + "---:|" * len(CANDIDATES) + "---:|"]
    delta = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.
                                                                    defaultdict(list)))
    ranks = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.
                                                                    defaultdict(list)))
    for (model, ds, seed), row in sorted(by.items()):
        if set(row) != set(CANDIDATES):
            continue  # an incomplete cell does not count
        g = row[incumbent]["selection_ll"]
        order = sorted(CANDIDATES, key=lambda k: -row[k]["selection_ll"])
        for k in CANDIDATES:
            delta[model][k][ds].append((row[k]["selection_ll"] - g) / row[k]["n_columns"])
            ranks[model][k][ds].append(1.0 + order.index(k))
        lines.append(f"| {model} | {ds} | {seed} | " + " | ".join(
            f"{row[k]['selection_ll']:.3f} ({row[k]['selection_median']:.2f}, "
            f"{row[k]['selection_min']:.1f})" for k in CANDIDATES) + " | " + ", ".join(
            f"{row[k]['fit_s']:.0f}" for k in CANDIDATES) + " |")
    lines += ["", "| model | data sets | " + " | ".join(
        f"{k}: mean Δ nats/column (mean rank)" for k in CANDIDATES) + " | chosen |",
        "|---|---:|" + "---:|" * len(CANDIDATES) + "---|"]
    for model in delta:
        means = {k: float(np.mean([np.mean(v) for v in delta[model][k].values()]))
                 for k in CANDIDATES}
        mranks = {k: float(np.mean([np.mean(v) for v in ranks[model][k].values()]))
                  for k in CANDIDATES}
        chosen = max(CANDIDATES, key=lambda k: (means[k], k == incumbent))
        lines.append(f"| {model} | {len(delta[model][incumbent])} | " + " | ".join(
            f"{means[k]:+.4f} ({mranks[k]:.2f})" for k in CANDIDATES) + f" | **{chosen}** |")
    return "\n".join(lines)


def run_cells(path: Path, plan: list[tuple], cell_fn: Any, n_candidates: int,
              args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run this worker's cells of ``plan`` that ``path`` does not hold yet, appending each to
    ``path`` as a JSON line; return every cell (earlier ones included).

    A plan entry is ``(data set, model, seed, candidate)``; the ``n_candidates`` consecutive
    entries of one cell go to the same worker (``args.worker`` of ``args.workers``), so that
    the candidates compared see the same load. ``args.table_only`` runs nothing. Shared by
    ``select_batch.py`` and ``select_recipe_rnade.py``.
    """
    done = []
    if path.exists():
        done = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    have = {(c["dataset"], c["model"], c["seed"], c["component"]) for c in done}
    if not args.table_only:
        for i, key in enumerate(plan):
            if (i // n_candidates) % args.workers != args.worker or key in have:
                continue
            c = cell_fn(*key)
            with path.open("a") as f:
                f.write(json.dumps(c) + "\n")
            print(json.dumps(c), flush=True)
            done.append(c)
    return done


def selection_main(description: str, stem: str, candidates: tuple[str, ...], incumbent: str,
                   cell_fn: Any, models: list[str], header: str,
                   plans: dict[str, list[tuple[str, int]]] | None = None) -> None:
    """The command line of a selection script: run this worker's cells of every
    ``(data set, model, seed, candidate)`` of :data:`PLAN` (or of ``plans[model]`` for a
    model listed there), print the tables of :func:`rank_table`, and with ``--table-only``
    write them to ``results/<stem>.md`` under ``header``. Cells go to
    ``results/<stem>_cells.jsonl``."""
    global CANDIDATES
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--models", nargs="+", choices=models, default=models)
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    plans = plans or {}
    plan = [(ds, m, s, k) for ds, n in PLAN for m in args.models if m not in plans
            for s in range(n) for k in candidates]
    plan += [(ds, m, s, k) for m in args.models if m in plans for ds, n in plans[m]
             for s in range(n) for k in candidates]
    done = run_cells(RESULTS / f"{stem}_cells.jsonl", plan, cell_fn, len(candidates), args)
    CANDIDATES = candidates
    md = rank_table(done, incumbent=incumbent)
    print(md)
    if args.table_only:
        (RESULTS / f"{stem}.md").write_text(header + md + "\n")


def main() -> None:
    selection_main(
        __doc__.split("\n")[0], "select_component", CANDIDATES, "gaussian", cell, list(MODELS),
        "# The continuous columns' kernel (`component`) of the defaults (selection rows "
        "of the training folds)\n\nCommand: `python benchmarks/defaults/select_component.py"
        " --worker i --workers 2` (two processes, `nice -n 19`, one torch thread each), "
        "then `--table-only`. Protocol: the module docstring.\n\n")


if __name__ == "__main__":
    main()
