"""The default learning rate (``learning_rate_init``), chosen on held-out rows.

Every estimator inherited Adam's ``learning_rate_init=1e-3`` from
:class:`~sklearn.neural_network.MLPRegressor` without a selection. A pilot on the selection
rows of ``select_recipe.py`` (MADE only, seed 0: moons, digits_pca15, boston and two data sets
outside this plan, red_wine_n300 and digits_pca15_n300) gave 1e-2 a lead over 1e-3 on all five
(digits_pca15 -45.5 against -47.9 nats per row): MADE's validation NLL on moons was still
falling at epoch 200 and its digits fit stopped at epoch 40. This script decides, by the
procedure of ``select_component.py``, which rate the defaults use. The pilot's numbers were
read before this protocol was written; the candidates and the rule were fixed after it and
before any other cell.

Candidates: ``learning_rate_init`` in {1e-3 (today's default, the incumbent), 3e-3, 1e-2}.
Everything else at the estimator's defaults (the kernels of ``select_component.py``, the
batch sizes of ``select_batch.py``; RNADE's recipe off, as its default), so the rate is the
peak of the Transformer's and MADE's warm-up + cosine schedule and RNADE's constant rate.

Protocol (the rows, models, data sets and rule of ``select_component.py``): selection rows
of the training folds; ``mixture_1d`` (seeds 0-2), ``moons``, ``boston``, ``ionosphere``,
``digits_pca15``, ``red_wine``; per model, the candidate's selection log-likelihood minus the
incumbent's, in nats per column, averaged over seeds per data set and then over data sets;
the higher mean wins, the incumbent scores 0 and keeps a tie. One choice per model.

``NADEDensity()`` (added in a later session, by the same rule): its defaults fit binary data,
where it trained at 1e-3 with the recipe off; in the defaults benchmark's first discrete run
(``digits_binary``, seed 0) its validation NLL was still falling at ``max_iter=200``
(-17.67 at epoch 150, -17.49 at 200). Its cells: ``digits_binary`` (the 8x8 digits binarized,
64 binary columns, the selection rows of ``select_recipe.py``), seeds 0-1, the candidates
above, everything else at NADE's defaults. That one run was seen before this paragraph was
written; no NADE cell of this script was.

Usage::

    python benchmarks/defaults/select_lr.py --worker 0 --workers 2 &
    python benchmarks/defaults/select_lr.py --worker 1 --workers 2 &
    python benchmarks/defaults/select_lr.py --table-only

Cells go to ``benchmarks/results/select_lr_cells.jsonl`` (a rerun skips the cells there), the
table to ``benchmarks/results/select_lr.md``. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from skar import NADEDensity

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("select_component", _HERE / "select_component.py")
sc = importlib.util.module_from_spec(_spec)
sys.modules["select_component"] = sc
_spec.loader.exec_module(sc)

RESULTS = _HERE.parent / "results"
CANDIDATES = ("1e-3", "3e-3", "1e-2")
MODELS = {**sc.MODELS, "NADEDensity()": NADEDensity}
# NADE models discrete columns: its own plan, the binarized digits of select_recipe.py.
PLANS = {"NADEDensity()": [("digits_binary", 2)]}


def cell(ds: str, model: str, seed: int, candidate: str) -> dict[str, Any]:
    """Fit one candidate on the fit rows and score the selection rows."""
    return sc.fit_and_score(ds, model, seed, candidate, lambda rows: MODELS[model](
        learning_rate_init=float(candidate), random_state=seed, **sc.FIXED.get(model, {})))


def main() -> None:
    sc.selection_main(
        __doc__.split("\n")[0], "select_lr", CANDIDATES, "1e-3", cell, list(MODELS),
        "# The default learning rate (selection rows of the training folds)\n\nCommand: "
        "`python benchmarks/defaults/select_lr.py --worker i --workers 2` (two processes, "
        "`nice -n 10`, one torch thread each), then `--table-only`. Protocol: the module "
        "docstring. The `component` columns of the tables hold the learning-rate "
        "candidate.\n\n", plans=PLANS)


if __name__ == "__main__":
    main()
