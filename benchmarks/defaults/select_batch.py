"""The default minibatch size on small data, chosen on held-out rows.

``batch_size="auto"`` is ``min(200, n_samples)``: a fit on a few hundred rows then takes one to
three optimizer steps per epoch, and ``max_iter=200`` epochs are at most a few hundred steps.
The defaults benchmark saw ``MADEDensity()`` on two moons (667 rows) still improving at epoch
200 on every fold. This script decides, by the procedure of ``select_component.py``, whether
``"auto"`` should give small data sets smaller minibatches (more, noisier steps per epoch).

Candidates:

- ``min200``: ``min(200, n)``, today's ``"auto"``;
- ``n/10``: ``min(200, max(32, round(n / 10)))``, about ten steps per epoch below 2,000 rows.

``n`` is the number of rows handed to ``fit``. Everything else at the estimator's defaults with
the ``component`` chosen by ``select_component.py`` (``COMPONENT`` below) and, for RNADE, the
recipe off (as in ``select_component.py``).

Protocol (written before any number of this run was read): the rows, models, data sets and
rule of ``select_component.py`` (selection rows of the training folds; the candidate's
selection log-likelihood minus the incumbent's (``min200``), in nats per column, averaged over
seeds per data set and then over data sets; the higher mean wins, the incumbent scores 0 and
keeps a tie), with ``mixture_1d``, ``moons``, ``boston``, ``ionosphere``, ``digits_pca15`` and
``red_wine``.

Usage::

    python benchmarks/defaults/select_batch.py --worker 0 --workers 2 &
    python benchmarks/defaults/select_batch.py --worker 1 --workers 2 &
    python benchmarks/defaults/select_batch.py --table-only

Cells go to ``benchmarks/results/select_batch_cells.jsonl`` (a rerun skips the cells there),
the table to ``benchmarks/results/select_batch.md``. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("select_component", _HERE / "select_component.py")
sc = importlib.util.module_from_spec(_spec)
sys.modules["select_component"] = sc
_spec.loader.exec_module(sc)

RESULTS = _HERE.parent / "results"
CANDIDATES = ("min200", "n/10")
#: The kernel ``select_component.py`` chose, per model.
COMPONENT = {"MADEDensity()": "logistic", "RNADEDensity()": "logistic",
             "ARTransformerDensity()": "logistic"}


def batch_size(candidate: str, n: int) -> int:
    """The minibatch size of ``candidate`` for a fit on ``n`` rows."""
    if candidate == "min200":
        return min(200, n)
    return int(min(200, max(32, round(n / 10))))


def cell(ds: str, model: str, seed: int, candidate: str) -> dict[str, Any]:
    """Fit one candidate on the fit rows and score the selection rows."""
    sizes = []

    def make(rows: Any) -> Any:
        sizes.append(batch_size(candidate, len(rows)))
        return sc.MODELS[model](component=COMPONENT[model], batch_size=sizes[0],
                                random_state=seed, **sc.FIXED.get(model, {}))

    record = sc.fit_and_score(ds, model, seed, candidate, make, kernel=COMPONENT[model])
    return {**record, "batch_size": sizes[0]}


def main() -> None:
    sc.selection_main(
        __doc__.split("\n")[0], "select_batch", CANDIDATES, "min200", cell, list(sc.MODELS),
        "# The default minibatch size on small data (selection rows of the training "
        "folds)\n\nCommand: `python benchmarks/defaults/select_batch.py --worker i "
        "--workers 2` (two processes, `nice -n 19`, one torch thread each), then "
        "`--table-only`. Protocol: the module docstring. The `component` columns of the "
        "tables hold the batch-size "
        "candidate.\n\n")


if __name__ == "__main__":
    main()
