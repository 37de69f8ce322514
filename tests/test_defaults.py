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
from skar.base import auto_batch_size
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
    # Rows off the relation by d, beyond every component (the noise sd is 0.05). Past all
    # locations a logistic component's log-density is -d / s_k + const_k up to a term that
    # vanishes, so log p(x2 | x1) is a log-sum-exp of affine functions of d: convex, its
    # second differences over d = 6, 10, 14 are >= 0. A Gaussian mixture's is a log-sum-exp of
    # concave parabolas -d^2 / (2 s_k^2): its second difference is about -16 / s^2 (every
    # default fitted with Gaussian kernels gave -41 to -49 here).
    d = np.array([6.0, 10.0, 14.0])
    rows = np.c_[np.zeros(3), d]
    per_col = est.score_samples_per_feature(rows)[:, 1]
    first = per_col[1] - per_col[0]
    second = per_col[2] - 2 * per_col[1] + per_col[0]
    assert first < 0
    assert second > -0.1 * abs(first), (per_col, first, second)


def test_rnade_and_nade_train_without_the_recipe_by_default():
    # select_recipe.py re-read by nats per column chose the recipe off for RNADE; NADE's own
    # selection chose off.
    for Est in (RNADEDensity, NADEDensity):
        p = Est().get_params()
        assert (p["lr_schedule"], p["average_weights"], p["patience_fraction"], p["refit"]) == (
            None, 0.0, 0.0, False)
    p = MADEDensity().get_params()
    assert (p["lr_schedule"], p["refit"]) == ("cosine", True)


@pytest.mark.parametrize(
    "n,steps,expected",
    [(10, 10, 10), (31, 10, 31), (100, 10, 32), (320, 10, 32), (500, 10, 50),
     (1279, 10, 128), (2000, 10, 200), (5000, 10, 200), (100, 1, 100), (500, 1, 200)],
)
def test_auto_batch_size_closed_form(n, steps, expected):
    assert auto_batch_size(n, steps) == expected


@pytest.mark.parametrize("Est,expected", [(MADEDensity, 50), (RNADEDensity, 50),
                                          (ARTransformerDensity, 200)])
def test_auto_batch_size_is_what_fit_trains_with(Est, expected):
    # select_batch.py chose about ten steps per epoch for MADE and RNADE, min(200, n) for the
    # Transformer.
    X = np.random.RandomState(0).normal(size=(500, 2))
    est = Est(max_iter=1, early_stopping=False, random_state=0, **SMALL[Est]).fit(X)
    assert est.net_.batch_size == expected
    assert "round(n_samples / 10)" in Est.__doc__ or expected == 200


@pytest.mark.parametrize("Est,expected", [(MADEDensity, 1e-2), (RNADEDensity, 3e-3),
                                          (ARTransformerDensity, 1e-3)])
def test_default_learning_rate_is_the_selected_one_and_what_adam_starts_from(Est, expected):
    # select_lr.py chose 1e-2 for MADE and 3e-3 for RNADE (nats per column on selection rows);
    # the Transformer keeps 1e-3. The rate is the peak of MADE's and the Transformer's
    # warm-up + cosine schedule and RNADE's constant rate.
    assert Est().learning_rate_init == expected
    X = np.random.RandomState(0).normal(size=(200, 2))
    est = Est(max_iter=2, random_state=0, **SMALL[Est]).fit(X)
    assert est.net_.lr == expected
    if Est is RNADEDensity:  # no schedule: every step used the rate itself
        assert est.net_.optimizer_.param_groups[0]["lr"] == expected
