"""Real sequence data bundled with skar, and the helper that cuts a series into windows.

A sequence model in skar reads one sequence per row, ``X`` of shape ``(n_windows, window)``;
:func:`make_windows` turns one long series into such rows. :func:`load_sunspots` is the monthly
mean sunspot number 1749-2009 (3,126 months), a classic real, long, non-Gaussian series. The
file ships inside the package (``skar/datasets/data``); nothing is downloaded.
"""

from __future__ import annotations

from importlib.resources import files
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_sunspots", "make_windows"]

_PACKAGE = "skar.datasets"

_SUNSPOTS_CITATION = (
    "Monthly mean (international, Wolf/Zurich version 1) sunspot numbers, SIDC / World Data "
    "Center SILSO, Royal Observatory of Belgium, Brussels, as distributed by NOAA's National "
    "Geophysical Data Center (NGDC), http://www.ngdc.noaa.gov/stp/solar/solarda3.html; file "
    "copied unmodified from the statsmodels 0.15.0 distribution "
    "(statsmodels/datasets/sunspots/src/sunspots_monthly.dat)."
)

_SUNSPOTS_LICENCE = (
    "Public domain (U.S. Government work distributed by NOAA/NGDC; statsmodels ships it with "
    "the note 'This data is public domain.')."
)


def make_windows(series: object, window: int, stride: int = 1) -> np.ndarray:
    """Cut a 1-D series into (overlapping) windows, one window per row.

    Row ``i`` is ``series[i * stride : i * stride + window]``; a tail shorter than ``window``
    is dropped.

    Parameters
    ----------
    series : array-like of shape (n_steps,)
        The series, in time order.
    window : int
        Length of every window (the ``n_features`` of the result), ``1 <= window <= n_steps``.
    stride : int, default=1
        Steps between the starts of consecutive windows; ``stride=window`` gives
        non-overlapping windows.

    Returns
    -------
    ndarray of shape (1 + (n_steps - window) // stride, window)
        A copy (writable, C-contiguous), in the series' dtype (float64 for lists).

    Examples
    --------
    >>> from skar.datasets import make_windows
    >>> make_windows([0, 1, 2, 3, 4], window=3, stride=2)
    array([[0, 1, 2],
           [2, 3, 4]])
    """
    x = np.asarray(series)
    if x.ndim != 1:
        raise ValueError(
            f"series must be 1-D (one series in time order); got an array of shape {x.shape}"
        )
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if window > x.shape[0]:
        raise ValueError(
            f"window={window} is longer than the series ({x.shape[0]} steps); "
            "pass a shorter window"
        )
    # (n_steps - window + 1, window) view, then every stride-th row, copied.
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    return np.ascontiguousarray(view[::stride])


def _parse_sunspots() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse the NGDC table: one line per year, ``year`` then up to 12 monthly means."""
    text = (files(_PACKAGE) / "data" / "sunspots_monthly.dat").read_text(encoding="ascii")
    years, months, values = [], [], []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or not (parts[0].isdigit() and len(parts[0]) == 4):
            continue  # title, header, rulers, blank lines and the footnotes
        year = int(parts[0])
        for m, v in enumerate(parts[1:], start=1):
            years.append(year)
            months.append(m)
            values.append(float(v))
    return np.array(years), np.array(months), np.array(values)


def load_sunspots(*, return_X_y: bool = False) -> Bunch | tuple[np.ndarray, None]:
    """Load the monthly mean sunspot number, January 1749 to June 2009 (3,126 months).

    A long, real, non-negative and strongly non-Gaussian series with the ~11-year
    (~132-month) solar cycle. Cut it into rows with :func:`make_windows`; split it in time
    (earlier windows to train, later ones to test) so overlapping windows do not leak.

    =================  ============================
    Steps              3,126 (monthly)
    Range              0.0 - 253.8 (sunspot number)
    Missing            none (February 1824 was interpolated by the data centre)
    =================  ============================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(series, None)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (ndarray of shape (3126,), float64: the monthly means in time order),
        ``year`` and ``month`` (int arrays of the same shape), ``feature_names``
        (``["sunspots"]``), ``DESCR``, ``citation`` and ``licence``.
    (series, None) : tuple
        When ``return_X_y`` is True.

    Notes
    -----
    Version 1 of the international sunspot number (before the 2015 recalibration of SILSO),
    as distributed by NOAA's NGDC; provenance in ``skar/datasets/data/README.md``.

    Examples
    --------
    >>> from skar.datasets import load_sunspots, make_windows
    >>> series = load_sunspots().data
    >>> series.shape
    (3126,)
    >>> make_windows(series, window=64, stride=32).shape
    (96, 64)
    """
    years, months, values = _parse_sunspots()
    if return_X_y:
        return values, None
    return Bunch(
        data=values,
        year=years,
        month=months,
        feature_names=["sunspots"],
        DESCR=load_sunspots.__doc__,
        citation=_SUNSPOTS_CITATION,
        licence=_SUNSPOTS_LICENCE,
    )
