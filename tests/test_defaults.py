"""What the defaults chosen in ``benchmarks/defaults`` promise (issue 17).

``select_component.py`` chose logistic kernels for the continuous columns of MADE, RNADE and
the Transformer after one Boston fold scored -48.5 nats per row with Gaussian kernels: a single
unusual test row cost 2,377 nats in one column. A logistic kernel's log-density falls linearly
with the distance from its location, ``log f(z) = -|z| - 2 log(1 + e^{-|z|})``, a Gaussian's
quadratically; these tests check that property on fitted defaults, against the closed form.
"""

import numpy as np
import pytest

from skar import ARTransformerDensity, MADEDensity, RNADEDensity
from skar.models.nade import NADEDensity

SMALL = {
    MADEDensity: dict(hidden_layer_sizes=(16,)),
    RNADEDensity: dict(hidden_layer_sizes=(16,)),
    ARTransformerDensity: dict(d_model=16, n_layers=1),
}


def _relation(n=400, seed=0):
    """x2 = x1 + noise of sd 0.05: the conditional of x2 is narrow."""
    rng = np.random.RandomState(seed)
    x1 = rng.normal(size=n)
    return np.c_[x1, x1 + 0.05 * rng.normal(size=n)]


@pytest.mark.parametrize("Est", list(SMALL))
def test_default_kernel_is_logistic(Est):
    assert Est().component == "logistic"


@pytest.mark.parametrize("Est", list(SMALL))
def test_default_conditional_tail_falls_linearly_not_quadratically(Est):
    X = _relation()
    est = Est(max_iter=15, random_state=0, **SMALL[Est]).fit(X)
    # Rows off the relation by d, far beyond every component (the noise sd is 0.05): the
    # log-density of x2 given x1 is then -d / s + const for a logistic mixture whose widest
    # reaching component has scale s, -d^2 / (2 s^2) + const for a Gaussian one. The second
    # differences over d = 4, 6, 8 tell the two apart: 0 for a line, 2 (4 / s^2) for a
    # parabola, which at s <= 1 is large against the first difference.
    d = np.array([4.0, 6.0, 8.0])
    rows = np.c_[np.zeros(3), d]
    per_col = est.score_samples_per_feature(rows)[:, 1]
    first = per_col[1] - per_col[0]
    second = per_col[2] - 2 * per_col[1] + per_col[0]
    assert first < 0
    assert abs(second) < 0.1 * abs(first), (per_col, first, second)


def test_rnade_and_nade_train_without_the_recipe_by_default():
    # select_recipe.py re-read by nats per column chose the recipe off for RNADE; NADE's own
    # selection chose off.
    for Est in (RNADEDensity, NADEDensity):
        p = Est().get_params()
        assert (p["lr_schedule"], p["average_weights"], p["patience_fraction"], p["refit"]) == (
            None, 0.0, 0.0, False)
    p = MADEDensity().get_params()
    assert (p["lr_schedule"], p["refit"]) == ("cosine", True)
