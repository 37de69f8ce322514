"""Columns <-> tensors: kinds, round trips, the Jacobian of scaling, and errors that name things."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skar.schema import OneHotInputs, TabularSchema


@pytest.fixture
def frame():
    rng = np.random.RandomState(0)
    return pd.DataFrame(
        {
            "height": rng.normal(170, 10, 50),
            "colour": pd.Categorical(rng.choice(["red", "blue", "green"], 50)),
            "city": rng.choice(["Oslo", "Lima"], 50),
            "member": rng.rand(50) < 0.4,
            "flag": rng.randint(0, 2, 50),
            "count": rng.randint(0, 9, 50),
        }
    )


def test_kinds_are_inferred_from_dtypes_and_values(frame):
    schema = TabularSchema.from_data(frame)
    assert schema.kinds == [
        "continuous", "categorical", "categorical", "binary", "binary", "continuous"
    ]
    assert schema.input_sizes == [1, 3, 2, 1, 1, 1]


def test_categorical_features_by_name_position_and_mask(frame):
    for cf in (["count"], [5], [False] * 5 + [True]):
        assert TabularSchema.from_data(frame, categorical_features=cf).kinds[5] == "categorical"
    with pytest.raises(ValueError, match="'nope'"):
        TabularSchema.from_data(frame, categorical_features=["nope"])
    with pytest.raises(ValueError, match="position 9"):
        TabularSchema.from_data(frame, categorical_features=[9])


def test_log_jacobian_is_minus_sum_log_std(frame):
    schema = TabularSchema.from_data(frame)
    want = -np.log(frame["height"].std(ddof=0)) - np.log(frame["count"].std(ddof=0))
    assert schema.log_jacobian == pytest.approx(want, rel=1e-12)


def test_encode_decode_round_trip_keeps_values_and_dtypes(frame):
    schema = TabularSchema.from_data(frame)
    back = schema.decode(schema.encode(frame))
    assert list(back.columns) == list(frame.columns)
    for c in ("colour", "city", "member", "flag"):
        assert back[c].tolist() == frame[c].tolist()
        assert back[c].dtype == frame[c].dtype
    np.testing.assert_allclose(back["height"], frame["height"], rtol=1e-6)
    assert back["colour"].cat.categories.tolist() == ["blue", "green", "red"]


def test_numpy_round_trip_keeps_integer_dtype_for_discrete_columns():
    X = np.random.RandomState(0).randint(0, 2, (20, 3)).astype(np.uint8)
    schema = TabularSchema.from_data(X)
    back = schema.decode(schema.encode(X))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, X)


@pytest.mark.parametrize(
    "value,exc,pattern",
    [
        (np.nan, ValueError, r"column 'height' holds NaN at row 3"),
        (np.inf, ValueError, r"column 'height' holds \+inf at row 3"),
        (-np.inf, ValueError, r"column 'height' holds -inf at row 3"),
        ("tall", ValueError, r"column 'height' holds 'tall' at row 3"),
    ],
)
def test_bad_continuous_values_name_column_row_and_value(frame, value, exc, pattern):
    schema = TabularSchema.from_data(frame)
    bad = frame.astype({"height": object})
    bad.loc[3, "height"] = value
    with pytest.raises(exc, match=pattern):
        schema.encode(bad)


def test_unseen_category_and_non_binary_values_are_named(frame):
    schema = TabularSchema.from_data(frame)
    bad = frame.copy()
    bad["city"] = bad["city"].astype(object)
    bad.loc[2, "city"] = "Paris"
    with pytest.raises(ValueError, match=r"column 'city' holds the category 'Paris' at row 2"):
        schema.encode(bad)
    bad = frame.copy()
    bad["flag"] = bad["flag"].astype(float)
    bad.loc[4, "flag"] = 0.5
    with pytest.raises(ValueError, match=r"column 'flag' is binary .* holds 0.5 at row 4"):
        schema.encode(bad)


def test_missing_category_in_fit_is_named(frame):
    bad = frame.copy()
    bad["city"] = bad["city"].astype(object)
    bad.loc[1, "city"] = None
    with pytest.raises(ValueError, match=r"column 'city' holds a missing value"):
        TabularSchema.from_data(bad)


def test_one_hot_inputs_layout():
    enc = OneHotInputs([1, 3, 1, 2], ["continuous", "categorical", "binary", "categorical"])
    x = torch.tensor([[0.5, 2.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 1.0]])
    want = torch.tensor(
        [[0.5, 0, 0, 1, 1.0, 1, 0], [-1.0, 1, 0, 0, 0.0, 0, 1]], dtype=torch.float32
    )
    torch.testing.assert_close(enc(x), want)
    assert enc.column_of_unit.tolist() == [0, 1, 1, 1, 2, 3, 3]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=30),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=3, max_size=30),
)
def test_round_trip_of_arbitrary_frames(values, labels):
    n = min(len(values), len(labels))
    df = pd.DataFrame({"v": values[:n], "c": labels[:n]})
    schema = TabularSchema.from_data(df)
    back = schema.decode(schema.encode(df))
    assert back["c"].tolist() == df["c"].tolist()
    if schema.kinds[0] == "continuous":
        atol = 1e-6 * schema.columns[0].scale  # float32 inside, relative to the column's spread
        np.testing.assert_allclose(back["v"], df["v"], rtol=1e-5, atol=atol)
    else:
        np.testing.assert_array_equal(back["v"], df["v"])
