"""Tests for skar.datasets: the bundled UCI and binarized MNIST loaders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import Bunch

from skar.datasets import (
    BINARIZED_MNIST_PUBLISHED,
    RNADE_UCI_PUBLISHED,
    load_binarized_mnist,
    load_boston_housing,
    load_ionosphere,
    load_parkinsons,
    load_rnade_uci,
    load_wine_quality,
)

WINE_NAMES = [
    "fixed_acidity",
    "volatile_acidity",
    "citric_acid",
    "residual_sugar",
    "chlorides",
    "free_sulfur_dioxide",
    "total_sulfur_dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]
BOSTON_NAMES = "CRIM ZN INDUS CHAS NOX RM AGE DIS RAD TAX PTRATIO B LSTAT".split()
PARKINSONS_HEADER = (
    "subject#,age,sex,test_time,motor_UPDRS,total_UPDRS,Jitter(%),Jitter(Abs),Jitter:RAP,"
    "Jitter:PPQ5,Jitter:DDP,Shimmer,Shimmer(dB),Shimmer:APQ3,Shimmer:APQ5,Shimmer:APQ11,"
    "Shimmer:DDA,NHR,HNR,RPDE,DFA,PPE"
).split(",")
PARKINSONS_RNADE = [
    "test_time",
    "motor_UPDRS",
    "total_UPDRS",
    "Jitter(%)",
    "Jitter(Abs)",
    "Jitter:PPQ5",
    "Shimmer(dB)",
    "Shimmer:APQ3",
    "Shimmer:APQ5",
    "Shimmer:APQ11",
    "NHR",
    "HNR",
    "RPDE",
    "DFA",
    "PPE",
]

# name -> (loader with fixed arguments, n_samples, raw n_features, RNADE n_features, target name)
UCI = {
    "red_wine": (lambda **kw: load_wine_quality(color="red", **kw), 1599, 11, 11, "quality"),
    "white_wine": (lambda **kw: load_wine_quality(color="white", **kw), 4898, 11, 11, "quality"),
    "parkinsons": (load_parkinsons, 5875, 21, 15, "total_UPDRS"),
    "ionosphere": (load_ionosphere, 351, 34, 32, "class"),
    "boston": (load_boston_housing, 506, 13, 10, "MEDV"),
}


@pytest.mark.parametrize("name", list(UCI))
@pytest.mark.parametrize("preprocess", [False, True])
def test_uci_bunch_shapes_and_dtypes(name, preprocess):
    loader, n, d_raw, d_rnade, target_name = UCI[name]
    bunch = loader(preprocess=preprocess)
    assert isinstance(bunch, Bunch)
    d = d_rnade if preprocess else d_raw
    assert isinstance(bunch.data, np.ndarray)
    assert bunch.data.shape == (n, d)
    assert bunch.data.dtype == np.float64
    assert np.isfinite(bunch.data).all()
    assert bunch.target.shape == (n,)
    assert len(bunch.feature_names) == d
    assert len(set(bunch.feature_names)) == d
    assert bunch.target_names == [target_name]
    assert bunch.frame is None
    assert isinstance(bunch.DESCR, str) and "Citation" in bunch.DESCR
    assert "CC BY 4.0" in bunch.DESCR


@pytest.mark.parametrize("name", list(UCI))
def test_uci_targets(name):
    loader, n, *_ = UCI[name]
    y = loader().target
    if name == "ionosphere":
        assert set(y.tolist()) == {"g", "b"}
        assert (y == "g").sum() == 225
    else:
        assert np.issubdtype(y.dtype, np.number)
        assert np.isfinite(y).all()
    if name.endswith("wine"):
        assert y.dtype == np.int64
        assert y.min() >= 0 and y.max() <= 10


@pytest.mark.parametrize("name", list(UCI))
def test_rnade_uci_matches_preprocessed_loader(name):
    loader, n, _, d_rnade, _ = UCI[name]
    X = load_rnade_uci(name)
    assert isinstance(X, np.ndarray)
    assert X.shape == (n, d_rnade)
    assert X.dtype == np.float64
    assert not np.isnan(X).any()
    np.testing.assert_array_equal(X, loader(preprocess=True).data)
    frame = load_rnade_uci(name, as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.to_numpy(), X)


@pytest.mark.parametrize("name", list(UCI))
def test_rnade_preprocess_leaves_no_highly_correlated_pair(name):
    X = load_rnade_uci(name)
    # No constant column (its correlation would be undefined), then Pearson r by hand.
    std = X.std(axis=0)
    assert (std > 0).all()
    Z = (X - X.mean(axis=0)) / std
    r = Z.T @ Z / X.shape[0]
    off_diagonal = r[~np.eye(X.shape[1], dtype=bool)]
    assert np.abs(off_diagonal).max() <= 0.98


def test_raw_data_has_correlated_pairs_that_preprocess_removes():
    # Sanity check of the test above: the raw parkinsons data does have |r| > 0.98 pairs.
    X = load_parkinsons().data
    r = np.corrcoef(X, rowvar=False)
    np.fill_diagonal(r, 0.0)
    assert np.abs(r).max() > 0.98


@pytest.mark.parametrize("name", list(UCI))
@pytest.mark.parametrize("preprocess", [False, True])
def test_uci_as_frame(name, preprocess):
    loader, n, d_raw, d_rnade, target_name = UCI[name]
    bunch = loader(preprocess=preprocess, as_frame=True)
    d = d_rnade if preprocess else d_raw
    assert isinstance(bunch.data, pd.DataFrame)
    assert bunch.data.shape == (n, d)
    assert list(bunch.data.columns) == bunch.feature_names
    assert (bunch.data.dtypes == np.float64).all()
    assert isinstance(bunch.target, pd.Series)
    assert bunch.target.name == target_name
    assert isinstance(bunch.frame, pd.DataFrame)
    assert bunch.frame.shape[0] == n
    assert target_name in bunch.frame.columns
    assert set(bunch.frame.columns) == set(bunch.feature_names) | {target_name}
    assert not bunch.frame.isna().any().any()
    np.testing.assert_array_equal(bunch.data.to_numpy(), loader(preprocess=preprocess).data)


def test_column_names():
    assert load_wine_quality(as_frame=True).data.columns.tolist() == WINE_NAMES
    assert load_wine_quality(color="white", as_frame=True).data.columns.tolist() == WINE_NAMES
    assert load_boston_housing(as_frame=True).data.columns.tolist() == BOSTON_NAMES
    assert load_ionosphere(as_frame=True).data.columns.tolist() == [
        f"a{i:02d}" for i in range(1, 35)
    ]
    assert load_parkinsons(as_frame=True).data.columns.tolist() == [
        c for c in PARKINSONS_HEADER if c != "total_UPDRS"
    ]


def test_rnade_columns():
    assert load_rnade_uci("parkinsons", as_frame=True).columns.tolist() == PARKINSONS_RNADE
    assert load_rnade_uci("red_wine", as_frame=True).columns.tolist() == WINE_NAMES
    assert load_rnade_uci("ionosphere", as_frame=True).columns.tolist() == [
        f"a{i:02d}" for i in range(3, 35)
    ]
    assert load_rnade_uci("boston", as_frame=True).columns.tolist() == [
        "CRIM", "INDUS", "NOX", "RM", "AGE", "DIS", "PTRATIO", "B", "LSTAT", "MEDV",
    ]  # fmt: skip


def test_rnade_boston_and_parkinsons_keep_their_targets():
    boston = load_boston_housing(preprocess=True, as_frame=True)
    np.testing.assert_array_equal(boston.data["MEDV"], boston.target)
    park = load_parkinsons(preprocess=True, as_frame=True)
    np.testing.assert_array_equal(park.data["total_UPDRS"], park.target)


def test_known_values():
    # First rows of the files, parsed correctly (scientific notation, whitespace separation).
    park = load_parkinsons(as_frame=True).data
    assert park["Jitter(Abs)"].iloc[0] == pytest.approx(3.38e-5)
    assert park["subject#"].iloc[0] == 1.0
    boston = load_boston_housing()
    np.testing.assert_allclose(boston.data[0, :3], [0.00632, 18.0, 2.31])
    assert boston.target[0] == pytest.approx(24.0)
    wine = load_wine_quality()
    np.testing.assert_allclose(wine.data[0, :2], [7.4, 0.7])
    assert wine.target[0] == 5
    iono = load_ionosphere()
    assert iono.data[0, 0] == 1.0 and iono.target[0] == "g"
    assert (iono.data[:, 1] == 0).all()


@pytest.mark.parametrize("name", list(UCI))
def test_return_X_y(name):
    loader, n, d_raw, _, target_name = UCI[name]
    X, y = loader(return_X_y=True)
    bunch = loader()
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)
    Xf, yf = loader(return_X_y=True, as_frame=True)
    assert isinstance(Xf, pd.DataFrame) and Xf.shape == (n, d_raw)
    assert isinstance(yf, pd.Series) and yf.name == target_name


@pytest.mark.parametrize("split, n", [("train", 50000), ("valid", 10000), ("test", 10000)])
def test_binarized_mnist(split, n):
    X = load_binarized_mnist(split=split)
    assert isinstance(X, np.ndarray)
    assert X.shape == (n, 784)
    assert X.dtype == np.uint8
    assert set(np.unique(X).tolist()) == {0, 1}
    assert X.flags.c_contiguous
    # Plausible MNIST: about 13% of the pixels are on, and the corners are always off.
    assert 0.10 < X.mean() < 0.16
    assert X.reshape(n, 28, 28)[:, 0, 0].sum() == 0


def test_binarized_mnist_default_is_train():
    np.testing.assert_array_equal(
        load_binarized_mnist()[:100], load_binarized_mnist(split="train")[:100]
    )


def test_published_numbers():
    assert set(RNADE_UCI_PUBLISHED) == set(UCI)
    for name, table in RNADE_UCI_PUBLISHED.items():
        assert {"Gaussian", "MFA", "FVBN", "RNADE-MoG", "RNADE-MoL"} <= set(table), name
        assert all(v < 0 for v in table.values())
    assert RNADE_UCI_PUBLISHED["red_wine"]["EoNADE"] == -8.76
    assert RNADE_UCI_PUBLISHED["white_wine"]["EoNADE"] == -9.67
    assert RNADE_UCI_PUBLISHED["boston"]["RNADE-MoG"] == -0.64
    assert BINARIZED_MNIST_PUBLISHED["NADE"] == 88.86


@pytest.mark.parametrize(
    "call, bad",
    [
        (lambda: load_wine_quality(color="rose"), "rose"),
        (lambda: load_wine_quality(color="Red"), "Red"),
        (lambda: load_binarized_mnist(split="validation"), "validation"),
        (lambda: load_rnade_uci("housing"), "housing"),
        (lambda: load_rnade_uci("red wine"), "red wine"),
    ],
)
def test_bad_arguments_raise_value_error(call, bad):
    with pytest.raises(ValueError, match=repr(bad)):
        call()


def test_bad_argument_message_lists_allowed_values():
    with pytest.raises(ValueError, match="'red'.*'white'"):
        load_wine_quality(color="rose")
    with pytest.raises(ValueError, match="'train'.*'valid'.*'test'"):
        load_binarized_mnist(split="validation")
    with pytest.raises(ValueError, match="'red_wine'.*'boston'"):
        load_rnade_uci("housing")
