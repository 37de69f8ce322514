"""Do the learning-rate wins survive another seed, jittered test values, a 10x smaller min_scale?

For each case (model, data set, old and new ``learning_rate_init``), on split 0 of
``run.py``: the default fit (seed 0), its score of the test rows moved uniformly within half a
grid step (the recording resolution skar's schema finds; a column without one does not
move, so the jitter only tests quantized columns), a second seed, and ``min_scale`` ten
times smaller. Usage: ``python benchmarks/defaults/robust_lr.py``; prints one JSON line per
case (``../results/robust_lr.jsonl``).
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

import skar
from skar.schema import TabularSchema

H = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("bench", H / "run.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)

torch.set_num_threads(1)
CASES = [("MADEDensity", "red_wine", (1e-3, 1e-2)), ("MADEDensity", "digits_pca15", (1e-3, 1e-2)),
         ("RNADEDensity", "ionosphere", (1e-3, 3e-3)), ("MADEDensity", "ionosphere", (1e-3, 1e-2)),
         ("MADEDensity", "moons", (1e-3, 1e-2))]
for model, ds, lrs in CASES:
    s = bench.load_split(ds, 0)
    Xtr, Xte = np.asarray(s.X_train, float), np.asarray(s.X_test, float)
    steps = np.array([c.step or 0.0 for c in TabularSchema.from_data(Xtr).columns])
    u = np.random.default_rng(1000).uniform(-0.499, 0.499, Xte.shape)
    for lr in lrs:
        r = {"model": model, "ds": ds, "lr": lr}
        for name, kw in [("seed0", {"random_state": 0}), ("seed1", {"random_state": 1}),
                         ("min_scale/10", {"random_state": 0, "min_scale": 1e-4})]:
            e = getattr(skar, model)(learning_rate_init=lr, **kw).fit(Xtr)
            r[name] = round(float(e.score_samples(Xte).mean()), 3)
            if name == "seed0":
                r["jittered"] = round(float(e.score_samples(Xte + u * steps).mean()), 3)
                r["max_step"] = float(steps.max())
        print(json.dumps(r), flush=True)
