"""Helpers of the skar documentation build (imported by ``docs/conf.py``).

They live in a module, not in ``conf.py``, so that sphinx-gallery can refer to them by their
qualified names: functions defined in ``conf.py`` cannot be pickled into Sphinx's environment
cache, and Sphinx warns (an error under ``-W``) when a configuration value cannot be cached.
"""

from __future__ import annotations

import importlib

#: What each gallery example imports from skar; an example whose names are not all importable
#: is left out of the gallery (see ``missing_examples``).
EXAMPLE_NEEDS: dict[str, list[str]] = {
    "plot_density_contours.py": ["skar.MADEDensity", "skar.RNADEDensity"],
    "plot_learning_curves.py": [
        "skar.MADEDensity", "skar.RNADEDensity", "skar.ARTransformerDensity"],
    "plot_grid_search.py": ["skar.MADEDensity"],
    "plot_image_samples.py": [
        "skar.NADEDensity", "skar.PixelCNNDensity", "sklearn.datasets.load_digits"],
    "plot_anomaly_detection.py": ["skar.MADEDensity", "skar.anomaly.DensityOutlierDetector"],
    "plot_wavenet_sequences.py": ["skar.WaveNetDensity", "skar.datasets.make_windows"],
    "plot_cdf.py": ["skar.CDFDensity"],
    "plot_likelihood_defence.py": [
        "skar.PixelCNNDensity", "skar.PixelRNNDensity", "skar.anomaly.DensityOutlierDetector"],
}


def importable(qualname: str) -> bool:
    """Whether ``module.attr`` imports (any error while importing counts as missing)."""
    module, _, attr = qualname.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), attr)
    except Exception:  # a half-written model may fail in any way while it is imported
        return False


def missing_examples() -> dict[str, list[str]]:
    """Gallery examples whose skar names do not import yet, with the missing names."""
    out = {}
    for example, names in EXAMPLE_NEEDS.items():
        missing = [n for n in names if not importable(n)]
        if missing:
            out[example] = missing
    return out


def reset_torch(gallery_conf, fname, when=None):
    """Run every example with one torch thread.

    Docs are built on shared machines (CI runners, laptops running tests): with several
    threads competing for two cores, small networks train several times slower than with
    one. One thread also makes the reported run times comparable between builds.
    """
    import torch

    torch.set_num_threads(1)
