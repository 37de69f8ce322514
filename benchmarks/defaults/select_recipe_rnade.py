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

import importlib.util
import sys
from pathlib import Path
from typing import Any

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
    return sc.fit_and_score(ds, model, seed, candidate,
                            lambda rows: RNADEDensity(random_state=seed, **CONFIGS[candidate]),
                            kernel=RNADEDensity().component)


def main() -> None:
    sc.selection_main(
        __doc__.split("\n")[0], "select_recipe_rnade", CANDIDATES, "off", cell, [MODEL],
        "# RNADE's training recipe with logistic kernels and ten steps per epoch "
        "(selection rows of the training folds)\n\nCommand: `python benchmarks/defaults/"
        "select_recipe_rnade.py` (`nice -n 19`, one torch thread), then `--table-only`. "
        "Protocol: the module docstring. The `component` columns of the tables hold the "
        "recipe candidate.\n\n")


if __name__ == "__main__":
    main()
