"""Loaders for the UCI data sets of the RNADE paper (Uria, Murray & Larochelle, 2013).

The files ship inside the package (``skar/datasets/data``) and are read with
:mod:`importlib.resources`; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = [
    "RNADE_UCI_PUBLISHED",
    "load_boston_housing",
    "load_ionosphere",
    "load_parkinsons",
    "load_rnade_uci",
    "load_wine_quality",
]

_PACKAGE = "skar.datasets"

_UCI_LICENCE = (
    "UCI Machine Learning Repository (https://archive.ics.uci.edu), licensed under Creative "
    "Commons Attribution 4.0 International (CC BY 4.0). The bundled file is unmodified."
)

_RNADE_CITATION = (
    "B. Uria, I. Murray & H. Larochelle. RNADE: The real-valued neural autoregressive "
    "density-estimator. Advances in Neural Information Processing Systems 26 (NIPS), 2013."
)

#: Published mean test log-likelihoods per datapoint (nats, higher is better) on the
#: RNADE-preprocessed, z-scored UCI data sets: RNADE paper (Uria, Murray & Larochelle, NIPS 2013),
#: Table 1, and for the wines EoNADE (Uria, Murray & Larochelle, ICML 2014).
#: Keys are the names accepted by :func:`load_rnade_uci`.
RNADE_UCI_PUBLISHED: dict[str, dict[str, float]] = {
    "red_wine": {
        "Gaussian": -13.18,
        "MFA": -10.19,
        "FVBN": -11.03,
        "RNADE-MoG": -9.36,
        "RNADE-MoL": -9.46,
        "EoNADE": -8.76,
    },
    "white_wine": {
        "Gaussian": -13.20,
        "MFA": -10.73,
        "FVBN": -10.52,
        "RNADE-MoG": -10.23,
        "RNADE-MoL": -10.38,
        "EoNADE": -9.67,
    },
    "parkinsons": {
        "Gaussian": -10.85,
        "MFA": -1.99,
        "FVBN": -0.71,
        "RNADE-MoG": -0.90,
        "RNADE-MoL": -2.63,
    },
    "ionosphere": {
        "Gaussian": -41.24,
        "MFA": -17.55,
        "FVBN": -26.55,
        "RNADE-MoG": -2.50,
        "RNADE-MoL": -5.87,
    },
    "boston": {
        "Gaussian": -11.37,
        "MFA": -4.54,
        "FVBN": -3.41,
        "RNADE-MoG": -0.64,
        "RNADE-MoL": -4.04,
    },
}

WINE_FEATURE_NAMES: list[str] = [
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

BOSTON_COLUMNS: list[str] = [
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
    "MEDV",
]

IONOSPHERE_FEATURE_NAMES: list[str] = [f"a{i:02d}" for i in range(1, 35)]

# Columns dropped by the RNADE protocol (discrete attributes, one of each |r| > 0.98 pair, and
# the wine / ionosphere labels).
_PARKINSONS_RNADE_DROP = [
    "subject#",
    "age",
    "sex",
    "Jitter:RAP",
    "Jitter:DDP",
    "Shimmer",
    "Shimmer:DDA",
]
_BOSTON_RNADE_DROP = ["ZN", "CHAS", "RAD", "TAX"]
_IONOSPHERE_RNADE_DROP = ["a01", "a02", "class"]

_WINE_CITATION = (
    "P. Cortez, A. Cerdeira, F. Almeida, T. Matos & J. Reis. Modeling wine preferences by data "
    "mining from physicochemical properties. Decision Support Systems 47(4):547-553, 2009."
)
_PARKINSONS_CITATION = (
    "A. Tsanas, M. A. Little, P. E. McSharry & L. O. Ramig. Accurate telemonitoring of "
    "Parkinson's disease progression by non-invasive speech tests. IEEE Transactions on "
    "Biomedical Engineering 57(4):884-893, 2010."
)
_IONOSPHERE_CITATION = (
    "V. G. Sigillito, S. P. Wing, L. V. Hutton & K. B. Baker. Classification of radar returns "
    "from the ionosphere using neural networks. Johns Hopkins APL Technical Digest 10:262-266, "
    "1989."
)
_BOSTON_CITATION = (
    "D. Harrison & D. L. Rubinfeld. Hedonic prices and the demand for clean air. Journal of "
    "Environmental Economics and Management 5:81-102, 1978."
)


def _data_file(name: str) -> Traversable:
    """Return the bundled data file ``name`` as an :mod:`importlib.resources` traversable."""
    return files(_PACKAGE) / "data" / name


def _read_text(name: str) -> str:
    with _data_file(name).open("r", encoding="utf-8") as f:
        return f.read()


def _read_csv(name: str, **kwargs) -> pd.DataFrame:
    with _data_file(name).open("r", encoding="utf-8") as f:
        return pd.read_csv(f, **kwargs)


def _check_choice(param: str, value: object, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"Unknown {param} {value!r}; expected one of {', '.join(map(repr, allowed))}."
        )


def _descr(title: str, summary: str, names_file: str, citation: str) -> str:
    rule = "=" * len(title)
    return (
        f"{title}\n{rule}\n\n{summary.strip()}\n\n"
        f"UCI description ({names_file})\n{'-' * (len(names_file) + 18)}\n\n"
        f"{_read_text(names_file).strip()}\n\n"
        f"Citation\n--------\n\n{citation}\n\n"
        f"RNADE protocol: {_RNADE_CITATION}\n\n"
        f"Licence\n-------\n\n{_UCI_LICENCE}\n"
    )


def _make_bunch(
    df: pd.DataFrame,
    *,
    target_col: str,
    rnade_drop: Sequence[str],
    preprocess: bool,
    return_X_y: bool,
    as_frame: bool,
    descr: str,
) -> Bunch | tuple:
    """Split a raw table into data / target and package it the scikit-learn way."""
    if preprocess:
        feature_names = [c for c in df.columns if c not in rnade_drop]
    else:
        feature_names = [c for c in df.columns if c != target_col]
    data_frame = df[feature_names].astype(np.float64)
    target_series = df[target_col].copy()

    if as_frame:
        data: np.ndarray | pd.DataFrame = data_frame
        target: np.ndarray | pd.Series = target_series
        extra = [] if target_col in feature_names else [target_series]
        frame: pd.DataFrame | None = pd.concat([data_frame, *extra], axis=1)
    else:
        data = data_frame.to_numpy(dtype=np.float64)
        if isinstance(target_series.dtype, pd.CategoricalDtype):
            target = target_series.astype(str).to_numpy(dtype=object)
        else:
            target = target_series.to_numpy()
        frame = None

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=feature_names,
        target_names=[target_col],
        DESCR=descr,
    )


def load_wine_quality(
    *,
    color: str = "red",
    preprocess: bool = False,
    return_X_y: bool = False,
    as_frame: bool = False,
) -> Bunch | tuple:
    """Load the Wine Quality data set (Cortez et al., 2009), red or white vinho verde.

    =================  ==============================
    Samples            1599 (red), 4898 (white)
    Features           11, real-valued
    Target             ``quality``, integer 3 to 9
    =================  ==============================

    Parameters
    ----------
    color : {"red", "white"}, default="red"
        Which of the two data sets to load.
    preprocess : bool, default=False
        If True, apply the RNADE paper's protocol (Uria, Murray & Larochelle, 2013): discrete
        attributes and one attribute of every pair with Pearson ``|r| > 0.98`` are dropped. For the
        wines this only drops ``quality``, which ``data`` never contains, so ``data`` is the same
        11 physicochemical columns either way. The z-scoring of the protocol is *not* applied:
        it must be done with the mean and standard deviation of each training fold.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame`, ``target`` a :class:`pandas.Series`
        and ``frame`` a DataFrame holding both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (ndarray of shape (n_samples, 11), float64, or DataFrame),
        ``target`` (ndarray of shape (n_samples,), int64, or Series), ``frame`` (DataFrame or
        None), ``feature_names`` (``fixed_acidity``, ..., ``alcohol``), ``target_names``
        (``["quality"]``) and ``DESCR`` (UCI's description and the citation).
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    ValueError
        If ``color`` is not ``"red"`` or ``"white"``.

    Notes
    -----
    From the UCI Machine Learning Repository (CC BY 4.0). Cite: P. Cortez, A. Cerdeira,
    F. Almeida, T. Matos & J. Reis, Modeling wine preferences by data mining from
    physicochemical properties, Decision Support Systems 47(4):547-553, 2009.

    Examples
    --------
    >>> from skar.datasets import load_wine_quality
    >>> wine = load_wine_quality(color="white")
    >>> wine.data.shape, wine.target.shape
    ((4898, 11), (4898,))
    >>> wine.feature_names[:3]
    ['fixed_acidity', 'volatile_acidity', 'citric_acid']
    >>> X, y = load_wine_quality(return_X_y=True, as_frame=True)
    >>> X.shape, y.name
    ((1599, 11), 'quality')
    """
    _check_choice("color", color, ("red", "white"))
    df = _read_csv(f"winequality-{color}.csv", header=None, names=[*WINE_FEATURE_NAMES, "quality"])
    n = len(df)
    summary = (
        f"Wine Quality data set, {color} vinho verde: {n} samples, 11 physicochemical features "
        "(data) and the sensory quality score (target, integer 0 to 10). With "
        "preprocess=True (RNADE protocol) data is the same 11 features; z-scoring is left to "
        "the caller."
    )
    return _make_bunch(
        df,
        target_col="quality",
        rnade_drop=["quality"],
        preprocess=preprocess,
        return_X_y=return_X_y,
        as_frame=as_frame,
        descr=_descr(f"Wine Quality ({color})", summary, "winequality.names", _WINE_CITATION),
    )


def load_parkinsons(
    *,
    preprocess: bool = False,
    return_X_y: bool = False,
    as_frame: bool = False,
) -> Bunch | tuple:
    """Load the Parkinson's telemonitoring data set (Tsanas et al., 2010).

    =================  =========================================================
    Samples            5875 voice recordings of 42 patients
    Columns            22: subject#, age, sex, test_time, motor_UPDRS,
                       total_UPDRS and 16 voice measures
    Target             ``total_UPDRS`` (real-valued)
    =================  =========================================================

    Parameters
    ----------
    preprocess : bool, default=False
        If False, ``data`` holds the 21 columns other than ``total_UPDRS``, in file order
        (``motor_UPDRS`` is among them: drop it for a regression on the voice measures, it is
        strongly correlated with the target).

        If True, ``data`` holds the 15 columns kept by the RNADE paper's protocol (Uria, Murray
        & Larochelle, 2013): the discrete ``subject#``, ``age`` and ``sex`` are dropped, and
        ``Jitter:RAP``, ``Jitter:DDP``, ``Shimmer`` and ``Shimmer:DDA``, which breaks every
        pair of columns with Pearson ``|r| > 0.98``. What stays is ``test_time``, ``motor_UPDRS``,
        ``total_UPDRS``, ``Jitter(%)``, ``Jitter(Abs)``, ``Jitter:PPQ5``, ``Shimmer(dB)``,
        ``Shimmer:APQ3``, ``Shimmer:APQ5``, ``Shimmer:APQ11``, ``NHR``, ``HNR``, ``RPDE``,
        ``DFA`` and ``PPE``: the density is over the UPDRS scores too, so ``total_UPDRS`` is
        both in ``data`` and in ``target``. The z-scoring of the protocol is *not* applied: it
        must be done with the mean and standard deviation of each training fold.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame` (columns named as in the file's
        header), ``target`` a :class:`pandas.Series` and ``frame`` a DataFrame holding both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (ndarray of shape (5875, 21) or (5875, 15), float64, or DataFrame),
        ``target`` (ndarray of shape (5875,), float64, or Series), ``frame``, ``feature_names``,
        ``target_names`` (``["total_UPDRS"]``) and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    From the UCI Machine Learning Repository (CC BY 4.0). Cite: A. Tsanas, M. A. Little,
    P. E. McSharry & L. O. Ramig, Accurate telemonitoring of Parkinson's disease progression by
    non-invasive speech tests, IEEE Transactions on Biomedical Engineering 57(4), 2010.

    Examples
    --------
    >>> from skar.datasets import load_parkinsons
    >>> park = load_parkinsons()
    >>> park.data.shape, park.target_names
    ((5875, 21), ['total_UPDRS'])
    >>> X = load_parkinsons(preprocess=True, as_frame=True).data
    >>> X.shape
    (5875, 15)
    >>> list(X.columns[:3])
    ['test_time', 'motor_UPDRS', 'total_UPDRS']
    """
    df = _read_csv("parkinsons_updrs.data")
    summary = (
        "Parkinson's telemonitoring data set: 5875 voice recordings of 42 early-stage "
        "Parkinson's patients; subject#, age, sex, test_time, motor_UPDRS, total_UPDRS and 16 "
        "voice measures. target is total_UPDRS; data holds the other 21 columns (motor_UPDRS "
        "included). With preprocess=True (RNADE protocol) data holds 15 columns: subject#, "
        "age, sex, Jitter:RAP, Jitter:DDP, Shimmer and Shimmer:DDA are dropped, test_time, "
        "motor_UPDRS and total_UPDRS stay; z-scoring is left to the caller."
    )
    return _make_bunch(
        df,
        target_col="total_UPDRS",
        rnade_drop=_PARKINSONS_RNADE_DROP,
        preprocess=preprocess,
        return_X_y=return_X_y,
        as_frame=as_frame,
        descr=_descr(
            "Parkinson's Telemonitoring", summary, "parkinsons_updrs.names", _PARKINSONS_CITATION
        ),
    )


def load_ionosphere(
    *,
    preprocess: bool = False,
    return_X_y: bool = False,
    as_frame: bool = False,
) -> Bunch | tuple:
    """Load the Johns Hopkins Ionosphere radar data set (Sigillito et al., 1989).

    =================  ==============================================
    Samples            351 (225 ``"g"``, 126 ``"b"``)
    Features           34, named ``a01`` to ``a34``
    Target             ``class``: ``"g"`` (good) or ``"b"`` (bad)
    =================  ==============================================

    Parameters
    ----------
    preprocess : bool, default=False
        If True, apply the RNADE paper's protocol (Uria, Murray & Larochelle, 2013): drop the
        binary first attribute ``a01`` and the constant (always 0) second attribute ``a02``,
        leaving the 32 columns ``a03`` to ``a34``. The z-scoring of the protocol is *not*
        applied: it must be done with the mean and standard deviation of each training fold.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame`, ``target`` a categorical
        :class:`pandas.Series` and ``frame`` a DataFrame holding both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (ndarray of shape (351, 34) or (351, 32), float64, or DataFrame),
        ``target`` (object ndarray of shape (351,) holding the strings ``"g"`` / ``"b"``, or
        Series), ``frame``, ``feature_names``, ``target_names`` (``["class"]``) and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    From the UCI Machine Learning Repository (CC BY 4.0). Cite: V. G. Sigillito, S. P. Wing,
    L. V. Hutton & K. B. Baker, Classification of radar returns from the ionosphere using
    neural networks, Johns Hopkins APL Technical Digest 10:262-266, 1989.

    Examples
    --------
    >>> from skar.datasets import load_ionosphere
    >>> X, y = load_ionosphere(return_X_y=True)
    >>> X.shape, sorted(set(y))
    ((351, 34), ['b', 'g'])
    >>> load_ionosphere(preprocess=True).data.shape
    (351, 32)
    """
    df = _read_csv("ionosphere.csv", header=None, names=[*IONOSPHERE_FEATURE_NAMES, "class"])
    df["class"] = pd.Categorical(df["class"], categories=["b", "g"])
    summary = (
        "Ionosphere radar returns: 351 samples, 34 continuous attributes a01..a34 (data) and "
        "the class 'g' (good) or 'b' (bad) (target). a01 is binary and a02 is constant 0. With "
        "preprocess=True (RNADE protocol) data holds a03..a34 (32 columns); z-scoring is left "
        "to the caller."
    )
    return _make_bunch(
        df,
        target_col="class",
        rnade_drop=_IONOSPHERE_RNADE_DROP,
        preprocess=preprocess,
        return_X_y=return_X_y,
        as_frame=as_frame,
        descr=_descr("Ionosphere", summary, "ionosphere.names", _IONOSPHERE_CITATION),
    )


def load_boston_housing(
    *,
    preprocess: bool = False,
    return_X_y: bool = False,
    as_frame: bool = False,
) -> Bunch | tuple:
    """Load the Boston housing data set (Harrison & Rubinfeld, 1978).

    =================  ==============================================
    Samples            506 census tracts
    Features           13: CRIM ZN INDUS CHAS NOX RM AGE DIS RAD TAX
                       PTRATIO B LSTAT
    Target             ``MEDV``, median home value in $1000's
    =================  ==============================================

    Parameters
    ----------
    preprocess : bool, default=False
        If True, apply the RNADE paper's protocol (Uria, Murray & Larochelle, 2013): drop the
        discrete ``ZN``, ``CHAS``, ``RAD`` and ``TAX``, leaving the 10 columns ``CRIM``,
        ``INDUS``, ``NOX``, ``RM``, ``AGE``, ``DIS``, ``PTRATIO``, ``B``, ``LSTAT`` and
        ``MEDV``: the density is over ``MEDV`` too, so it is both in ``data`` and in
        ``target``. The z-scoring of the protocol is *not* applied: it must be done with the
        mean and standard deviation of each training fold.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame`, ``target`` a :class:`pandas.Series`
        and ``frame`` a DataFrame holding both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (ndarray of shape (506, 13) or (506, 10), float64, or DataFrame),
        ``target`` (ndarray of shape (506,), float64, or Series), ``frame``, ``feature_names``,
        ``target_names`` (``["MEDV"]``) and ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Notes
    -----
    From the UCI Machine Learning Repository (CC BY 4.0). Cite: D. Harrison & D. L. Rubinfeld,
    Hedonic prices and the demand for clean air, Journal of Environmental Economics and
    Management 5:81-102, 1978.

    The attribute ``B`` is computed from the proportion of Black residents by town, and the
    data set has known ethical problems; scikit-learn removed its Boston loader in version 1.2
    for this reason. It is provided here only as one of the density-estimation benchmarks of
    the RNADE paper, so that published numbers can be reproduced; do not use it to model
    house prices.

    Examples
    --------
    >>> from skar.datasets import load_boston_housing
    >>> boston = load_boston_housing(as_frame=True)
    >>> boston.data.shape
    (506, 13)
    >>> list(load_boston_housing(preprocess=True, as_frame=True).data.columns)
    ['CRIM', 'INDUS', 'NOX', 'RM', 'AGE', 'DIS', 'PTRATIO', 'B', 'LSTAT', 'MEDV']
    """
    df = _read_csv("housing.data", sep=r"\s+", header=None, names=BOSTON_COLUMNS)
    summary = (
        "Boston housing: 506 census tracts, 13 attributes (data) and MEDV, the median value "
        "of owner-occupied homes in $1000's (target). The attribute B is computed from the "
        "proportion of Black residents; the data set has known ethical problems and is "
        "provided only to reproduce the RNADE density-estimation benchmark. With "
        "preprocess=True (RNADE protocol) the discrete ZN, CHAS, RAD and TAX are dropped and "
        "data holds 10 columns, MEDV included; z-scoring is left to the caller."
    )
    return _make_bunch(
        df,
        target_col="MEDV",
        rnade_drop=_BOSTON_RNADE_DROP,
        preprocess=preprocess,
        return_X_y=return_X_y,
        as_frame=as_frame,
        descr=_descr("Boston Housing", summary, "housing.names", _BOSTON_CITATION),
    )


def _red(**kw) -> Bunch | tuple:
    return load_wine_quality(color="red", **kw)


def _white(**kw) -> Bunch | tuple:
    return load_wine_quality(color="white", **kw)


_RNADE_LOADERS: dict[str, Callable[..., Bunch | tuple]] = {
    "red_wine": _red,
    "white_wine": _white,
    "parkinsons": load_parkinsons,
    "ionosphere": load_ionosphere,
    "boston": load_boston_housing,
}


def load_rnade_uci(name: str, *, as_frame: bool = False) -> np.ndarray | pd.DataFrame:
    """Load one of the RNADE paper's UCI data sets as the matrix the paper modelled.

    This is ``loader(preprocess=True).data`` for the matching loader: discrete attributes and
    one attribute of every pair with Pearson ``|r| > 0.98`` are dropped (Uria, Murray & Larochelle,
    2013). The paper's z-scoring is *not* applied: standardize each training fold with its own
    mean and standard deviation (the paper used 10 folds of 90% train / 10% test and reported
    the mean test log-likelihood per datapoint on the z-scored data, see
    :data:`RNADE_UCI_PUBLISHED`).

    Parameters
    ----------
    name : {"red_wine", "white_wine", "parkinsons", "ionosphere", "boston"}
        The data set.
    as_frame : bool, default=False
        If True, return a :class:`pandas.DataFrame` with named columns.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64, or DataFrame
        Shapes: red_wine (1599, 11), white_wine (4898, 11), parkinsons (5875, 15),
        ionosphere (351, 32), boston (506, 10).

    Raises
    ------
    ValueError
        If ``name`` is not one of the five names.

    See Also
    --------
    load_wine_quality, load_parkinsons, load_ionosphere, load_boston_housing

    Examples
    --------
    >>> from skar.datasets import RNADE_UCI_PUBLISHED, load_rnade_uci
    >>> X = load_rnade_uci("parkinsons")
    >>> X.shape, X.dtype
    ((5875, 15), dtype('float64'))
    >>> RNADE_UCI_PUBLISHED["parkinsons"]["RNADE-MoG"]
    -0.9
    """
    _check_choice("name", name, tuple(_RNADE_LOADERS))
    return _RNADE_LOADERS[name](preprocess=True, as_frame=as_frame).data
