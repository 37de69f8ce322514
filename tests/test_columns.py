"""Column semantics: quantized columns, point masses, forced kinds, unseen values, datetimes.

Every number is checked against an independent one: mpmath/scipy CDFs, numerical integrals,
exact sums over the grid, chi-square on samples.
"""

import datetime

import mpmath
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp, softmax

from skar import ARTransformerDensity, MADEDensity, MASDEDensity, NADEDensity, RNADEDensity
from skar.anomaly import DensityOutlierDetector
from skar.datasets import load_rnade_uci
from skar.distributions import Categorical, ColumnConditionals, Mixture, log_cell_prob
from skar.schema import TabularSchema, detect_atoms, detect_grid, detect_step

COMPONENTS = ["gaussian", "laplace", "logistic"]
MP_CDF = {
    "gaussian": lambda z: mpmath.ncdf(z),
    "laplace": lambda z: mpmath.mpf(0.5) * mpmath.exp(z) if z < 0
    else 1 - mpmath.mpf(0.5) * mpmath.exp(-z),
    "logistic": lambda z: 1 / (1 + mpmath.exp(-z)),
}


def _raw(scale, floor):
    """softplus^{-1}(scale - floor)."""
    e = np.asarray(scale, dtype=np.float64) - floor
    return e + np.log(-np.expm1(-e))


# ---------------------------------------------------------------- exact cell probabilities
@pytest.mark.parametrize("component", COMPONENTS)
def test_log_cell_prob_is_exact_in_the_tails_and_for_thin_cells(component):
    mpmath.mp.dps = 50
    cases = [(-0.3, 0.6), (0.2, 1e-3), (-40.0, 0.5), (25.0, 0.01), (-8.0, 1e-6),
             (3.0, 1e-7), (-1e-3, 2e-3), (5.0, 30.0), (-12.0, 1e-9)]
    lo = torch.tensor([c[0] for c in cases], dtype=torch.float64)
    gap = torch.tensor([c[1] for c in cases], dtype=torch.float64)
    got = log_cell_prob(component, lo, gap).numpy()
    cdf = MP_CDF[component]
    # Every family is symmetric: mirror upper cells so that 50 digits resolve their tails.
    want = [float(mpmath.log(cdf(mpmath.mpf(b) + mpmath.mpf(g)) - cdf(mpmath.mpf(b))))
            for b, g in ((a if a + g / 2 <= 0 else -a - g, g) for a, g in cases)]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def _quantized_params(component, step, rng, n_components=3):
    floor = step / 16
    logits = rng.normal(size=n_components)
    loc = rng.normal(size=n_components)
    scale = np.array([0.05, 0.4, 1.3])[:n_components]
    theta = np.concatenate([logits, loc, _raw(scale, floor)])
    return theta, softmax(logits), loc, scale


@pytest.mark.parametrize("component", COMPONENTS)
def test_quantized_cells_sum_to_one_and_match_scipy(component):
    rng = np.random.RandomState(0)
    step, offset = 0.1, 0.03
    fam = Mixture(3, component, step=step, offset=offset)
    theta, w, loc, scale = _quantized_params(component, step, rng)
    centres = offset + step * np.arange(-400, 401)  # the grid over [-40, 40]
    x = torch.tensor(centres)
    lp = fam.log_prob(torch.tensor(theta).expand(x.numel(), -1), x).numpy()
    cell = np.exp(lp) * step  # the cell probabilities
    assert cell.sum() == pytest.approx(1.0, abs=1e-6)
    dist = {"gaussian": stats.norm, "laplace": stats.laplace, "logistic": stats.logistic}
    d = dist[component]
    want = sum(wk * (d.cdf(centres + step / 2, m, s) - d.cdf(centres - step / 2, m, s))
               for wk, m, s in zip(w, loc, scale))
    mid = want > 1e-8
    np.testing.assert_allclose(cell[mid], want[mid], rtol=1e-7)


@pytest.mark.parametrize("component", COMPONENTS)
def test_quantized_density_integrates_to_one_and_is_constant_on_cells(component):
    rng = np.random.RandomState(1)
    step = 0.25
    fam = Mixture(3, component, step=step)
    theta, *_ = _quantized_params(component, step, rng)
    x = np.linspace(-40, 40, 320_001)
    lp = fam.log_prob(torch.tensor(theta).expand(x.size, -1), torch.tensor(x)).numpy()
    assert np.trapezoid(np.exp(lp), x) == pytest.approx(1.0, abs=1e-2)
    # Off-grid values score as the centre of their cell: the dequantized density.
    inside = torch.tensor([0.5 - 0.12, 0.5, 0.5 + 0.12])
    vals = fam.log_prob(torch.tensor(theta).expand(3, -1), inside).numpy()
    np.testing.assert_allclose(vals, vals[1], rtol=0, atol=1e-12)


def test_mixed_columns_normalise_jointly():
    """Categorical x quantized x continuous, each conditional depending on the columns before
    it: sum over the category and the grid, integrate over the real column, get 1."""
    step = 0.5
    fams = [Categorical(3), Mixture(2, "logistic", step=step, offset=0.0), Mixture(2)]
    cc = ColumnConditionals(fams)

    def params(x0, x1):
        n = x0.shape[0]
        p = torch.zeros(n, cc.n_params, dtype=torch.float64)
        p[:, :3] = torch.tensor([0.3, -0.2, 0.6])
        p[:, 3:5] = torch.stack([x0 * 0.5, -x0 * 0.3], 1)  # logits of column 1
        p[:, 5:7] = torch.stack([x0 - 1.0, x0 + 0.5], 1)  # means
        p[:, 7:9] = torch.tensor([-0.5, 0.3])
        p[:, 9:11] = torch.stack([0.2 * x1, -0.1 * x1], 1)
        p[:, 11:13] = torch.stack([0.3 * x1 - 1, x0 + 0.1 * x1], 1)
        p[:, 13:15] = torch.tensor([0.1, -0.4])
        return p

    grid1 = step * np.arange(-60, 61)
    x2 = np.linspace(-30, 30, 6001)
    total = 0.0
    for k in range(3):
        for g in grid1:
            X = torch.tensor(np.column_stack([np.full(x2.size, k), np.full(x2.size, g), x2]))
            lp = cc.log_prob(params(X[:, 0], X[:, 1]), X).sum(1).numpy()
            total += np.trapezoid(np.exp(lp), x2) * step  # the density is constant on a cell
    assert total == pytest.approx(1.0, abs=1e-3)


# ---------------------------------------------------------------- the floor no longer matters
def _rounded_wine(column):
    return load_rnade_uci("red_wine")[:, column]


def test_quantized_score_is_bounded_by_one_over_the_step():
    x = np.round(np.random.RandomState(0).normal(3.3, 0.15, 500), 2)  # pH-like, step 0.01
    schema = TabularSchema.from_data(x[:, None])
    assert schema.feature_types == ["quantized"] and schema.columns[0].step == 0.01
    (fam,) = schema.families(n_components=2)
    z0 = (3.31 - schema.columns[0].mean) / schema.columns[0].scale
    # A component collapsed onto the value: the whole cell, no more.
    theta = torch.tensor([[5.0, 0.0, z0, 0.0, -40.0, 0.0]], dtype=torch.float64)
    Z = schema.encode(np.array([[3.31], [3.3149], [3.3051]]))  # all in the cell of 3.31
    lp = fam.log_prob(theta.expand(3, -1), torch.tensor(Z[:, 0], dtype=torch.float64))
    user = lp.numpy() + schema.log_jacobian
    assert np.all(user <= -np.log(0.01) + 1e-9)
    w = softmax([5.0, 0.0])
    s, h = np.log1p(1.0) + fam.step / 16, fam.step / 2  # the second component, standardised
    other = stats.norm.cdf(z0 + h, 0.0, s) - stats.norm.cdf(z0 - h, 0.0, s)
    np.testing.assert_allclose(user, np.log((w[0] + w[1] * other) / 0.01), rtol=1e-9)


@pytest.mark.parametrize("column", [1, 7, 8, 10])  # volatile acidity, density, pH, alcohol
def test_min_scale_over_ten_moves_held_out_scores_by_at_most_005_nats(column):
    """The marginal fit (EM) of a red wine column, scored on held-out rows: quantized, the
    scores do not move when min_scale is divided by 10; modelled as continuous (the old
    semantics), the floor sets them."""
    x = _rounded_wine(column)
    perm = np.random.RandomState(0).permutation(x.size)
    train, test = x[perm[:1200]], x[perm[1200:]]

    def held_out(min_scale, **kw):
        schema = TabularSchema.from_data(train[:, None], **kw)
        (fam,) = schema.families(n_components=5, min_scale=min_scale)
        z = schema.encode(train[:, None])[:, 0].astype(np.float64)
        theta = torch.tensor(fam.marginal_params(z, np.ones_like(z), seed=0))
        zt = torch.tensor(schema.encode(test[:, None])[:, 0], dtype=torch.float64)
        lp = fam.log_prob(theta.expand(zt.numel(), -1), zt).numpy() + schema.log_jacobian
        return lp.mean(), schema.feature_types[0]

    (a, kind), (b, _) = held_out(1e-3), held_out(1e-4)
    assert kind == "quantized" and abs(a - b) <= 0.05
    old = dict(quantization=None, point_masses=None)
    (a, kind), (b, _) = held_out(1e-3, **old), held_out(1e-4, **old)
    assert kind == "continuous" and abs(a - b) > 0.05


def test_jitter_within_half_a_step_leaves_the_quantized_score_unchanged():
    """The old failure (red wine's score collapsing under sub-step noise) cannot happen: a
    value anywhere in its cell scores the cell."""
    X = load_rnade_uci("red_wine")
    schema = TabularSchema.from_data(X)
    steps = np.array([c.step for c in schema.columns])
    jitter = np.random.RandomState(0).uniform(-0.499, 0.499, X.shape) * steps
    on_grid = np.all(np.abs(X / steps - np.round(X / steps)) < 1e-6, axis=1)
    X = X[on_grid]
    np.testing.assert_array_equal(schema.encode(X), schema.encode(X + jitter[on_grid]))


# ---------------------------------------------------------------- detection rules
def test_detection_keeps_continuous_data_continuous_and_finds_visible_grids():
    rng = np.random.RandomState(0)
    x = rng.normal(0, 1, 10_000)
    assert detect_step(x) is None  # float64 draws lie on no grid
    assert detect_step(np.round(x, 6)) is None  # on the 1e-6 grid, but values never collide
    assert detect_step(np.round(x, 2)) == 0.01
    assert detect_step(rng.poisson(4, 1000).astype(float)) == 1.0
    assert detect_step(5.0 * rng.poisson(4, 1000)) == 5.0
    wine = load_rnade_uci("red_wine")
    assert detect_step(wine[:, 10]) == 0.1  # alcohol: 15 averaged values are off the grid


def test_a_standardised_grid_is_the_same_grid():
    """``StandardScaler`` moves a grid off the decimals: its points are ``origin + k * r / s``.
    Before this rule, red wine scaled by the user lost its grid and got five point masses per
    column, scored as probabilities beside densities (MADE: 5 nats per row below the classics)."""
    rng = np.random.RandomState(0)
    raw = np.round(rng.gamma(4.0, 0.3, 2000), 2)
    z = (raw - 1.234567) / 0.4321
    step, origin = detect_grid(z)
    assert step == pytest.approx(0.01 / 0.4321, rel=1e-9)
    q = (z - origin) / step
    np.testing.assert_allclose(q, np.round(q), atol=1e-6)  # every value is a grid point
    assert detect_grid(raw) == (0.01, 0.0)  # a decimal grid keeps its decimal origin
    assert detect_grid((rng.normal(size=5000) - 0.3) / 1.7) is None  # continuous stays so
    assert detect_grid((np.round(rng.normal(size=10_000), 6) - 0.3) / 1.7) is None  # no repeats
    wine = load_rnade_uci("red_wine")
    zw = (wine - wine.mean(0)) / wine.std(0)
    schema = TabularSchema.from_data(zw)
    assert all(c.step is not None and c.atoms is None for c in schema.columns)


@pytest.mark.parametrize("name", ["red_wine", "white_wine", "parkinsons", "ionosphere", "boston"])
def test_standardising_a_uci_set_changes_no_column_type(name):
    """The decimal rule on the raw columns is the reference: z-scored, every column keeps its
    type, its step divided by its deviation, and its point masses. (Boston's NOX, recorded to
    1e-4 with no two values 1e-4 apart, lost its grid when standardised before.)"""
    X = load_rnade_uci(name).astype(float)
    raw = TabularSchema.from_data(X)
    zed = TabularSchema.from_data((X - X.mean(0)) / X.std(0))
    for a, b in zip(raw.columns, zed.columns):
        assert a.feature_type == b.feature_type, a.name
        assert (a.atoms is None) == (b.atoms is None), a.name
        if a.step is not None:
            assert b.step == pytest.approx(a.step / a.scale, rel=1e-6), a.name


def test_scores_on_standardised_columns_are_the_raw_scores_plus_the_jacobian():
    """The same data in other units: log p_z(z) = log p_x(x) + sum_d log s_d, which holds only
    if the scaled columns get the same cells (independently: the change of variables)."""
    wine = load_rnade_uci("red_wine")[:600, :4]
    mu, sd = wine.mean(0), wine.std(0)
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, refit=False)
    raw = MADEDensity(**params).fit(wine)
    zed = MADEDensity(**params).fit((wine - mu) / sd)
    np.testing.assert_allclose(
        zed.score_samples((wine - mu) / sd), raw.score_samples(wine) + np.log(sd).sum(),
        atol=2e-3,
    )


def test_clipped_values_become_atoms_not_a_grid():
    X = load_rnade_uci("ionosphere")
    schema = TabularSchema.from_data(X)
    assert schema.feature_types == ["continuous"] * X.shape[1]
    assert set(schema.columns[0].atoms.tolist()) >= {1.0}
    np.testing.assert_array_equal(detect_atoms(np.array([0.1, 0.2, 1, 1, 1, 0.3])), [1.0])
    assert detect_atoms(np.random.RandomState(0).normal(size=500)).size == 0


def test_atom_scores_a_probability_and_the_rest_integrates():
    x = np.concatenate([np.ones(300), np.random.RandomState(0).normal(0, 0.5, 700)])
    schema = TabularSchema.from_data(x[:, None], quantization=None)
    (spec,) = schema.columns
    np.testing.assert_array_equal(spec.atoms, [1.0])
    (fam,) = schema.families(n_components=2)
    z = schema.encode(x[:, None])[:, 0].astype(np.float64)
    theta = torch.tensor(fam.marginal_params(z, np.ones_like(z)))
    at_one = fam.log_prob(theta[None], torch.tensor(schema.encode(np.array([[1.0]]))[0]))
    user = at_one.item() + schema.log_jacobian  # a log-probability, in any unit
    assert user == pytest.approx(np.log(300.5 / 1001.0), abs=1e-6)
    grid = np.linspace(-40, 40, 200_001)
    lp = fam.log_prob(theta.expand(grid.size, -1), torch.tensor(grid)).numpy()
    continuous = np.trapezoid(np.exp(lp), grid)  # the atom's point has measure zero
    assert continuous + np.exp(user) == pytest.approx(1.0, abs=1e-3)
    draws = fam.sample(theta.expand(20_000, -1), torch.Generator().manual_seed(0)).numpy()
    on_atom = np.isclose(draws, z[0], rtol=0, atol=1e-6).mean()
    assert abs(on_atom - 300.5 / 1001) < 4 * np.sqrt(0.3 * 0.7 / 20_000)


def test_quantized_samples_lie_on_the_grid_with_the_cell_probabilities():
    rng = np.random.RandomState(0)
    x = np.round(rng.normal(2.0, 0.3, 400), 1)
    schema = TabularSchema.from_data(x[:, None])
    (fam,) = schema.families(n_components=2)
    z = schema.encode(x[:, None])[:, 0].astype(np.float64)
    theta = torch.tensor(fam.marginal_params(z, np.ones_like(z)))
    draws = fam.sample(theta.expand(30_000, -1), torch.Generator().manual_seed(0))
    values = schema.decode(draws.numpy()[:, None])[:, 0]
    np.testing.assert_array_equal(values, np.round(values, 1))
    cells, counts = np.unique(values, return_counts=True)
    lp = fam.log_prob(theta.expand(cells.size, -1),
                      torch.tensor(schema.encode(cells[:, None])[:, 0], dtype=torch.float64))
    p = np.exp(lp.numpy()) * fam.step
    keep = p * 30_000 > 5
    obs = np.append(counts[keep], counts[~keep].sum() + (30_000 - counts.sum()))
    exp = np.append(p[keep], 1 - p[keep].sum()) * 30_000
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    uniform = TabularSchema.from_data(x[:, None], quantized_samples="uniform")
    (ufam,) = uniform.families(n_components=2)
    assert ufam.within_cell
    u = ufam.sample(theta.expand(2000, -1), torch.Generator().manual_seed(0)).numpy()
    off = (u - ufam.offset) / ufam.step - np.round((u - ufam.offset) / ufam.step)
    assert stats.kstest(off + 0.5, "uniform").pvalue > 1e-3


# ---------------------------------------------------------------- kinds the user controls
@pytest.fixture
def frame():
    rng = np.random.RandomState(0)
    return pd.DataFrame({
        "flag": rng.randint(0, 2, 60),
        "count": rng.randint(0, 9, 60),
        "height": rng.normal(170, 10, 60),
        "city": rng.choice(["Oslo", "Lima"], 60),
    })


def test_inferred_feature_types(frame):
    assert TabularSchema.from_data(frame).feature_types == [
        "binary", "quantized", "continuous", "categorical"]


@pytest.mark.parametrize("spec", [
    {"flag": "continuous", "count": "categorical", "height": "quantized"},
    ["continuous", "categorical", "quantized", None],
    {0: "continuous", 1: "categorical", 2: "quantized"},
])
def test_every_feature_type_override(frame, spec):
    frame = frame.assign(height=np.round(frame["height"], 1))
    schema = TabularSchema.from_data(frame, feature_types=spec)
    assert schema.feature_types == ["continuous", "categorical", "quantized", "categorical"]
    assert schema.columns[2].step == 0.1
    assert schema.columns[1].categories.tolist() == sorted(frame["count"].unique())
    numeric = frame.iloc[:, :3]
    assert TabularSchema.from_data(numeric, feature_types="continuous").feature_types == [
        "continuous"] * 3
    assert TabularSchema.from_data(frame, quantization=None).feature_types[1] == "continuous"
    assert TabularSchema.from_data(frame, quantization={"height": 0.5}).columns[2].step == 0.5
    assert TabularSchema.from_data(frame.assign(count=frame["flag"]), feature_types={
        "flag": "binary", "count": "quantized"}).feature_types[:2] == ["binary", "quantized"]


def test_declared_quantized_constant_columns_get_a_step():
    X = np.column_stack([np.zeros(20), np.full(20, 3.5), np.arange(20.0)])
    schema = TabularSchema.from_data(X, feature_types="quantized")
    assert [c.step for c in schema.columns] == [1.0, 0.5, 1.0]
    Z = schema.encode(np.array([[7.0, 3.5, 2.0]]))  # any finite value: a cell of the grid
    assert np.isfinite(Z).all() and Z[0, 0] == 7.0  # mean 0, scale 1 for a constant column


def test_declared_kinds_are_checked(frame):
    with pytest.raises(ValueError, match=r"column 'count' is declared binary.*holds"):
        TabularSchema.from_data(frame, feature_types={"count": "binary"})
    with pytest.raises(ValueError, match=r"column 'height' is declared quantized.*no grid"):
        TabularSchema.from_data(frame, feature_types={"height": "quantized"})
    with pytest.raises(ValueError, match="'ordinal'"):
        TabularSchema.from_data(frame, feature_types={"count": "ordinal"})
    with pytest.raises(ValueError, match="3 entries"):
        TabularSchema.from_data(frame, feature_types=["binary"] * 3)
    with pytest.raises(ValueError, match="'nope'"):
        TabularSchema.from_data(frame, feature_types={"nope": "binary"})
    with pytest.raises(ValueError, match="categorical_features but declared 'continuous'"):
        TabularSchema.from_data(frame, feature_types={"count": "continuous"},
                                categorical_features=["count"])
    with pytest.raises(ValueError, match="step -1"):
        TabularSchema.from_data(frame, quantization={"count": -1})
    with pytest.raises(ValueError, match=r"column 'city' is declared binary.*non-numeric"):
        TabularSchema.from_data(frame, feature_types={"city": "binary"})
    with pytest.raises(ValueError, match=r"column 'city' holds 'Lima'"):
        TabularSchema.from_data(frame, quantization={"city": 1.0})


def test_zero_one_column_declared_continuous_encodes_half(frame):
    schema = TabularSchema.from_data(frame, feature_types={"flag": "continuous"})
    spec = schema.columns[0]
    Z = schema.encode(frame.assign(flag=0.5).iloc[:3])
    np.testing.assert_allclose(Z[:, 0], (0.5 - spec.mean) / spec.scale, rtol=1e-6)


# ---------------------------------------------------------------- values not seen in fit
def test_unseen_values_are_flagged_not_raised_on_request(frame):
    schema = TabularSchema.from_data(frame)
    new = frame.iloc[:4].copy()
    new.loc[new.index[1], "city"] = "Paris"
    new.loc[new.index[2], "flag"] = 2
    with pytest.raises(ValueError, match=r"column 'flag' is binary.*holds 2\.0 at row 2"):
        schema.encode(new)
    with pytest.raises(ValueError, match="'Paris' at row 1"):
        schema.encode(new.assign(flag=0))
    Z, unknown = schema.encode(new, return_unknown=True)
    expected = np.zeros((4, 4), dtype=bool)
    expected[1, 3] = expected[2, 0] = True
    np.testing.assert_array_equal(unknown, expected)
    assert Z[1, 3] == 0 and Z[2, 0] == 0  # valid codes for the network
    new.loc[new.index[2], "flag"] = 1
    with pytest.raises(ValueError, match="column 'flag' is binary.*2"):
        schema.encode(new.assign(flag=[0, 1, 2, 0]))
    # A quantized or continuous column takes any finite number.
    _, unknown = schema.encode(frame.iloc[:2].assign(count=[3.7, -100.0], height=1e6),
                               return_unknown=True)
    assert not unknown.any()


# ---------------------------------------------------------------- datetimes
@pytest.mark.parametrize("column", [
    pd.date_range("2020-01-01", periods=5),
    pd.date_range("2020-01-01", periods=5, tz="UTC"),
    pd.to_timedelta(np.arange(5), unit="D"),
    [datetime.date(2020, 1, d) for d in range(1, 6)],
])
def test_datetime_columns_are_refused_with_a_conversion_hint(column):
    X = pd.DataFrame({"x": np.arange(5.0), "when": column})
    with pytest.raises(TypeError, match=r"column 'when' holds dates or durations.*total_seconds"):
        TabularSchema.from_data(X)
    assert TabularSchema.from_data(X, categorical_features=["when"]).kinds[1] == "categorical"


# ---------------------------------------------------------------- marginal start, any n
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("family", [
    Mixture(5), Mixture(5, "laplace", step=0.1), Mixture(3, atoms=(1.0,)),
])
def test_marginal_params_work_for_tiny_n(n, family):
    x = np.array([1.0, 0.3, -0.2])[:n]
    theta = family.marginal_params(x, np.ones(n), seed=0)
    assert theta.shape == (family.n_params,) and np.all(np.isfinite(theta))
    lp = family.log_prob(torch.tensor(theta)[None], torch.tensor([x[-1]]))
    assert np.isfinite(lp.item())
    cc = ColumnConditionals([family, Categorical(2)])
    Z = np.column_stack([x, np.zeros(n)])
    assert torch.isfinite(cc.marginal_params(Z)).all()


def test_marginal_log_weights_are_normalised():
    x = np.random.RandomState(0).normal(size=50)
    theta = Mixture(4).marginal_params(x, np.ones(50))
    assert logsumexp(theta[:4]) == pytest.approx(0.0, abs=1e-9)


def test_quantized_columns_with_different_steps_share_one_group():
    fams = [Mixture(2, step=0.1, offset=0.02), Mixture(2), Mixture(2, step=0.7, offset=-0.3),
            Mixture(2, atoms=(0.5,))]
    cc = ColumnConditionals(fams)
    assert len(cc._group_families) == 3  # both grids in one group
    g = torch.Generator().manual_seed(0)
    params = torch.randn(6, cc.n_params, generator=g, dtype=torch.float64)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    x[0, 3] = 0.5
    got = cc.log_prob(params, x)
    for d, fam in enumerate(fams):
        want = fam.log_prob(cc.column_params(params, d), x[:, d])
        np.testing.assert_allclose(got[:, d].numpy(), want.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- wired into the estimators
# Tiny models and few epochs: these tests check the wiring (parameters reach the schema and the
# families, unknown cells score -inf), not the quality of a fit.
TINY = dict(max_iter=3, early_stopping=False, batch_size=64, random_state=0, device="cpu")
TABULAR = {
    "made": lambda **kw: MADEDensity(hidden_layer_sizes=(8,), n_components=2, **TINY, **kw),
    "rnade": lambda **kw: RNADEDensity(hidden_layer_sizes=(8,), n_components=2, **TINY, **kw),
    "transformer": lambda **kw: ARTransformerDensity(d_model=8, n_heads=2, n_layers=1,
                                                     n_components=2, **TINY, **kw),
    "masde": lambda **kw: MASDEDensity(hidden_layer_sizes=(8,), n_components=2, **TINY, **kw),
}
WITH_NADE = {**TABULAR,
             "nade": lambda **kw: NADEDensity(hidden_layer_sizes=(8,), **TINY, **kw)}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(TABULAR))
def test_a_zero_one_column_declared_continuous_scores_a_half(name, frame):
    X = frame[["flag", "height"]]
    est = TABULAR[name](feature_types={"flag": "continuous"}).fit(X)
    assert est.schema_.feature_types[0] == "continuous"
    s = est.score_samples(X.iloc[:3].assign(flag=0.5))
    assert np.isfinite(s).all()
    # Inferred (the default), the same column is binary: 0.5 has probability zero.
    inferred = TABULAR[name]().fit(X)
    assert inferred.schema_.feature_types[0] == "binary"
    assert np.isneginf(inferred.score_samples(X.iloc[:3].assign(flag=0.5))).all()


def _discrete(frame):
    return frame[["flag", "city"]]


@pytest.mark.parametrize("name", list(WITH_NADE))
def test_an_unseen_category_scores_minus_inf_and_changes_nothing(name, frame):
    X = _discrete(frame) if name == "nade" else frame
    est = WITH_NADE[name]().fit(X)
    fixed = X.iloc[:5]
    before = est.score_samples(fixed)
    new = X.iloc[:4].copy()
    new.loc[new.index[1], "city"] = "Paris"
    s = est.score_samples(new)
    assert s[1] == -np.inf and np.isfinite(np.delete(s, 1)).all()
    np.testing.assert_array_equal(np.delete(s, 1), np.delete(before[:4], 1))
    # Per column: the unknown cell is the -inf term, the others are finite; rows still sum.
    cells = est.score_samples_per_feature(new)
    city = list(X.columns).index("city")
    assert cells[1, city] == -np.inf and np.isfinite(np.delete(cells[1], city)).all()
    np.testing.assert_allclose(cells.sum(1), s, rtol=1e-5)
    with pytest.raises(ValueError, match=r"column 'city'.*'Paris' at row 1"):
        est.set_params(handle_unknown="error").score_samples(new)
    est.set_params(handle_unknown="zero_probability")
    np.testing.assert_array_equal(est.score_samples(fixed), before)  # fitted state unchanged


@pytest.mark.filterwarnings("ignore:With 12 calibration rows:UserWarning")
def test_the_detector_flags_an_unseen_category_and_explain_names_its_column(frame):
    det = DensityOutlierDetector(TABULAR["made"](), random_state=0).fit(frame)
    new = frame.iloc[:4].copy()
    new.loc[new.index[2], "city"] = "Paris"
    p = det.pvalues(new)
    assert p[2] == p.min() and p[2] < np.delete(p, 2).min()
    assert det.predict(new)[2] == -1
    assert det.explain(new.iloc[[2]])["feature"].iloc[0] == "city"


@pytest.mark.parametrize("name", list(TABULAR))
def test_a_quantized_column_scores_at_most_one_over_its_step(name):
    """p(x) = P(cell) / r <= 1 / r in the column's units, whatever the network does."""
    rng = np.random.RandomState(0)
    X = np.column_stack([np.round(rng.normal(3.3, 0.15, 300), 1), rng.normal(size=300)])
    est = TABULAR[name](learning_rate_init=0.03).fit(X)
    assert est.schema_.feature_types == ["quantized", "continuous"]
    assert est.schema_.columns[0].step == 0.1
    if name == "made":
        cells = est.score_samples_per_feature(X)
        assert cells[:, 0].max() <= np.log(10.0) + 1e-6
    one = TABULAR[name](learning_rate_init=0.03).fit(X[:, :1])
    assert one.score_samples(X[:, :1]).max() <= np.log(10.0) + 1e-6


def test_min_scale_reaches_the_families_and_spares_quantized_columns():
    rng = np.random.RandomState(0)
    X = np.column_stack([np.round(rng.normal(3.3, 0.15, 400), 2),
                         np.round(rng.gamma(2.0, 1.0, 400), 1)])
    train, test = X[:300], X[300:]
    a = RNADEDensity(hidden_layer_sizes=(8,), n_components=3, min_scale=1e-3, **TINY)
    b = RNADEDensity(hidden_layer_sizes=(8,), n_components=3, min_scale=1e-4, **TINY)
    a.fit(train), b.fit(train)
    assert [f.min_scale for f in a.net_.module_.conditionals.families] == [1e-3, 1e-3]
    assert [f.min_scale for f in b.net_.module_.conditionals.families] == [1e-4, 1e-4]
    assert abs(a.score(test) - b.score(test)) <= 0.05
    # A continuous column (declared) takes the floor: the parameter is not ignored.
    c = RNADEDensity(hidden_layer_sizes=(8,), n_components=3, feature_types="continuous",
                     min_scale=0.5, **TINY).fit(train)
    assert [f.min_scale for f in c.net_.module_.conditionals.families] == [0.5, 0.5]


def test_red_wine_scores_do_not_move_under_jitter_within_half_a_step():
    """The regression behind issue 18: RNADE on red wine scored 8.5 nats better on the rounded
    values than under sub-step jitter (components collapsed onto repeated values)."""
    X = load_rnade_uci("red_wine")
    perm = np.random.RandomState(0).permutation(len(X))
    train, test = X[perm[:800]], X[perm[800:1200]]
    est = RNADEDensity(hidden_layer_sizes=(16,), n_components=3, max_iter=5, batch_size=100,
                       random_state=0, device="cpu").fit(train)
    steps = np.array([c.step for c in est.schema_.columns])
    assert np.all(steps > 0)
    jitter = np.random.RandomState(1).uniform(-0.5, 0.5, test.shape) * steps
    raw, jittered = est.score_samples(test).mean(), est.score_samples(test + jitter).mean()
    assert np.isfinite(raw) and abs(raw - jittered) <= 0.1, (raw, jittered)


@pytest.mark.parametrize("name", list(TABULAR))
def test_an_estimator_names_a_datetime_column(name):
    X = pd.DataFrame({"x": np.arange(20.0), "when": pd.date_range("2020-01-01", periods=20)})
    with pytest.raises(TypeError, match=r"column 'when' holds dates"):
        TABULAR[name]().fit(X)


def test_column_parameters_are_validated_by_name():
    with pytest.raises(ValueError, match="handle_unknown"):
        TABULAR["made"](handle_unknown="ignore").fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="min_scale"):
        TABULAR["rnade"](min_scale=0.0).fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="quantized_samples"):
        TABULAR["transformer"](quantized_samples="round").fit(np.zeros((5, 1)))
