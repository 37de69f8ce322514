"""RNADE's training recipe on or off again, with the kernel and minibatches chosen since.

``select_recipe.py`` decided RNADE's recipe with Gaussian kernels and ``min(200, n)``
minibatches, by a rule that counted wins; re-read by nats per column it chose off, and
``select_component.py`` and ``select_batch.py`` then chose logistic kernels and about ten
steps per epoch with the recipe off. This script asks the recipe question once more with those
defaults, by ``select_component.py``'s protocol and rule (selection rows of the training
folds; the candidate's gain over the incumbent in nats per column, averaged over seeds per
data set, then over data sets; the incumbent, ``off``, keeps a tie). Candidates:
``select_recipe.OFF`` and ``select_recipe.ON``; everything else at ``RNADEDensity()``'s
defaults.

Usage::

    python benchmarks/defaults/select_recipe_rnade.py [--worker i --workers n]
    python benchmarks/defaults/select_recipe_rnade.py --table-only

Cells go to ``benchmarks/results/select_recipe_rnade_cells.jsonl``, the table to
``benchmarks/results/select_recipe_rnade.md``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skar import RNADEDensity

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("select_component", _HERE / "select_component.py")
sc = importlib.util.module_from_spec(_spec)
sys.modules["select_component"] = sc
_spec.loader.exec_module(sc)

RESULTS = _HERE.parent / "results"
CANDIDATES = ("off", "on")
CONFIGS = {"off": sc.recipe.OFF, "on": sc.recipe.ON}
MODEL = "RNADEDensity()"


def cell(ds: str, model: str, seed: int, candidate: str) -> dict[str, Any]:
    """Fit one candidate on the fit rows and score the selection rows."""
    torch.set_num_threads(1)
    fit_rows, sel = sc.recipe.selection_split(ds, seed)
    est = RNADEDensity(random_state=seed, **CONFIGS[candidate])
    t = time.perf_counter()
    est.fit(fit_rows)
    fit_s = time.perf_counter() - t
    ll = est.score_samples(sel)
    return {"dataset": ds, "model": model, "seed": seed, "component": candidate,
            "kernel": est.component, "selection_ll": float(ll.mean()),
            "selection_median": float(np.median(ll)), "selection_min": float(ll.min()),
            "n_columns": int(fit_rows.shape[1]), "fit_s": fit_s, "n_fit": len(fit_rows),
            "n_selection": len(sel), "n_iter": int(est.n_iter_),
            "load_average": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    plan = [(ds, MODEL, s, k) for ds, n in sc.PLAN for s in range(n) for k in CANDIDATES]
    done = sc.run_cells(RESULTS / "select_recipe_rnade_cells.jsonl", plan, cell,
                        len(CANDIDATES), args)
    sc.CANDIDATES = CANDIDATES
    md = sc.rank_table(done, incumbent="off")
    print(md)
    if args.table_only:
        (RESULTS / "select_recipe_rnade.md").write_text(
            "# RNADE's training recipe with logistic kernels and ten steps per epoch "
            "(selection rows of the training folds)\n\nCommand: `python benchmarks/defaults/"
            "select_recipe_rnade.py` (`nice -n 19`, one torch thread), then `--table-only`. "
            "Protocol: the module docstring. The `component` columns of the tables hold the "
            "recipe candidate.\n\n" + md + "\n")


if __name__ == "__main__":
    main()
