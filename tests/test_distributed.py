"""Beyond one process: Dask and Ray for search and scoring, Accelerate for training, memory.

The Dask tests run a real ``distributed.LocalCluster`` of two worker *processes*, so every
estimator, fitted or not, crosses a process boundary through distributed's serialisation
(pickle/cloudpickle). They need the ``dask`` extra, the Accelerate tests the ``accelerate``
extra, the Ray test ``ray``; each is skipped, saying which package is missing, only where it is
not installed.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from skar import MADEDensity
from skar.accelerate import AcceleratedDensityMixin

TINY = dict(max_iter=3, early_stopping=False, random_state=0)
GRID = {"hidden_layer_sizes": [(4,), (8,)], "learning_rate_init": [1e-3, 1e-2]}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.normal(size=(200, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def frame(data):
    df = pd.DataFrame(data, columns=["a", "b", "c"])
    df["kind"] = pd.Categorical(np.where(data[:, 0] > 0, "hi", "lo"))
    return df


@pytest.fixture(scope="module")
def sequential(data):
    """The reference: the same search, run in this process."""
    return GridSearchCV(MADEDensity(**TINY), GRID, cv=2).fit(data)


# ----------------------------------------------------------------------------- no CUDA state
def test_import_and_fit_do_not_initialise_cuda():
    """Workers may have no GPU, or several processes may share one: importing skar (and its
    Accelerate module), building and fitting on the CPU must not create a CUDA context."""
    code = textwrap.dedent(
        """
        import numpy as np, pickle, torch
        import skar
        from skar.models.made import MADEDensity
        assert not torch.cuda.is_initialized(), "import skar initialised CUDA"
        est = MADEDensity(max_iter=1, device="cpu", random_state=0)
        est = pickle.loads(pickle.dumps(est.fit(np.random.RandomState(0).normal(size=(50, 2)))))
        est.score_samples(np.zeros((3, 2))); est.sample(2)
        assert not torch.cuda.is_initialized(), "a CPU fit initialised CUDA"
        import skar.accelerate  # imports without the accelerate extra too
        assert not torch.cuda.is_initialized(), "import skar.accelerate initialised CUDA"
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_fit_leaves_the_global_rng_alone(data):
    """Workers reuse processes: a fit must not draw from, or reseed, the global RNGs."""
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    MADEDensity(**TINY).fit(data)
    np.testing.assert_array_equal(torch.rand(3), expected_torch)
    np.testing.assert_array_equal(np.random.rand(3), expected_np)


# ----------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip(
        "distributed", reason="the dask extra is not installed (pip install skar[dask])"
    )
    from distributed import Client, LocalCluster

    # Two worker processes (not threads): what reaches a worker has been serialised.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        yield client


def test_grid_search_on_a_dask_cluster_matches_the_sequential_one(dask_client, data, sequential):
    with joblib.parallel_backend("dask"):
        distributed_search = GridSearchCV(MADEDensity(**TINY), GRID, cv=2).fit(data)
    # The fits really ran on the workers.
    assert len(dask_client.scheduler_info()["workers"]) == 2
    assert distributed_search.best_params_ == sequential.best_params_
    np.testing.assert_allclose(
        distributed_search.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        distributed_search.best_estimator_.score_samples(data),
        sequential.best_estimator_.score_samples(data),
        rtol=1e-6,
    )


def test_estimators_fitted_or_not_survive_the_trip_to_a_worker(dask_client, data, sequential):
    fitted = sequential.best_estimator_

    def fit_and_score(est, X):
        return est.fit(X).score_samples(X)

    def score(est, X):
        return est.score_samples(X), est.sample(4, random_state=1)

    unfitted = clone(fitted)
    remote = dask_client.submit(fit_and_score, unfitted, data, pure=False).result()
    np.testing.assert_allclose(remote, fitted.score_samples(data), rtol=1e-6)
    # A fitted estimator is shipped, used there and returned unchanged.
    remote_scores, remote_draw = dask_client.submit(score, fitted, data, pure=False).result()
    np.testing.assert_array_equal(remote_scores, fitted.score_samples(data))
    np.testing.assert_array_equal(remote_draw, fitted.sample(4, random_state=1))
    back = dask_client.submit(lambda est: est, fitted, pure=False).result()
    np.testing.assert_array_equal(back.score_samples(data), fitted.score_samples(data))


def score_partition(part, est):
    """The documented recipe: one partition in, a Series of log densities out."""
    return pd.Series(est.score_samples(part), index=part.index, name="log_density")


def test_scoring_a_dask_dataframe_with_map_partitions(dask_client, frame):
    dd = pytest.importorskip(
        "dask.dataframe", reason="dask[dataframe] is not installed (pip install skar[dask])"
    )
    est = MADEDensity(**TINY).fit(frame)
    ddf = dd.from_pandas(frame, npartitions=4)
    # Ship the fitted estimator to the workers once, not with every partition's task.
    [remote_est] = dask_client.scatter([est], broadcast=True)
    scores = ddf.map_partitions(score_partition, remote_est, meta=("log_density", "f8"))
    result = scores.compute()
    assert scores.npartitions == 4
    pd.testing.assert_index_equal(result.index, frame.index)
    np.testing.assert_allclose(result.to_numpy(), est.score_samples(frame), rtol=1e-6)


# ----------------------------------------------------------------------------- Ray
def test_grid_search_on_ray_matches_the_sequential_one(data, sequential):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    from ray.util.joblib import register_ray

    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with joblib.parallel_backend("ray"):
            ray_search = GridSearchCV(MADEDensity(**TINY), GRID, cv=2).fit(data)
    finally:
        ray.shutdown()
    assert ray_search.best_params_ == sequential.best_params_
    np.testing.assert_allclose(
        ray_search.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-6,
    )


# ----------------------------------------------------------------------------- memory
class _LargestTensor(TorchDispatchMode):
    """Records the size of the largest tensor any torch operation creates."""

    def __init__(self):
        super().__init__()
        self.nbytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.nbytes = max(self.nbytes, t.numel() * t.element_size())
        return out


def test_score_samples_memory_is_bounded_by_the_batch(data):
    est = MADEDensity(hidden_layer_sizes=(32,), **{**TINY, "max_iter": 1}).fit(data)
    bs = est._inference_batch_size
    rng = np.random.RandomState(1)
    largest, numpy_peak = {}, {}
    for n in (4 * bs, 32 * bs):
        X = rng.normal(size=(n, data.shape[1]))
        with _LargestTensor() as mode:
            est.score_samples(X)
        largest[n] = mode.nbytes
        tracemalloc.start()
        try:
            est.score_samples(X)
            numpy_peak[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # Host memory (numpy, seen by tracemalloc) beyond the input: the encoded copy
        # (float32 per column) and three float64 vectors of n (batch results, their
        # concatenation, the output), plus a constant.
        assert numpy_peak[n] <= n * (4 * data.shape[1] + 3 * 8) + 256 * 1024, numpy_peak
    # Torch's intermediates (activations, conditional parameters) come one batch at a time:
    # the largest tensor does not grow with n_samples.
    assert largest[4 * bs] == largest[32 * bs] > 0
    assert largest[32 * bs] < 32 * bs * data.shape[1] * 4  # < the encoded rows of all of X


# ----------------------------------------------------------------------------- Accelerate
try:
    import accelerate  # noqa: F401
except ImportError:  # the accelerate extra is absent
    HAVE_ACCELERATE = False
else:
    HAVE_ACCELERATE = True


class AcceleratedMADEDensity(AcceleratedDensityMixin, MADEDensity):
    """The documented subclass (at module level, so it pickles)."""


needs_accelerate = pytest.mark.skipif(
    not HAVE_ACCELERATE,
    reason="the accelerate extra is not installed (pip install skar[accelerate])",
)


@pytest.fixture
def cpu_accelerator():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    yield Accelerator(cpu=True)
    # Accelerate keeps process-wide singletons; leave none behind for other tests.
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@needs_accelerate
def test_accelerated_fit_on_cpu_matches_the_plain_fit(cpu_accelerator, data):
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    acc = AcceleratedMADEDensity(accelerator=cpu_accelerator, **params).fit(data)
    plain = MADEDensity(**params).fit(data)
    assert type(acc.net_).__name__ == "AcceleratedDensityNet"
    assert acc.net_.device == "cpu"
    # One CPU process: the same seeded batches, the same Adam steps.
    np.testing.assert_allclose(acc.score_samples(data), plain.score_samples(data), rtol=1e-6)
    pd.testing.assert_frame_equal(
        acc.history_.drop(columns="duration"), plain.history_.drop(columns="duration"),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(acc.sample(5, random_state=1), acc.sample(5, random_state=1))
    # The scikit-learn face: parameters, clone and pickle.
    assert acc.get_params()["accelerator"] is cpu_accelerator
    assert set(acc.get_params()) == set(plain.get_params()) | {"accelerator"}
    assert clone(acc).get_params().keys() == acc.get_params().keys()
    back = pickle.loads(pickle.dumps(acc))
    np.testing.assert_array_equal(back.score_samples(data), acc.score_samples(data))


@needs_accelerate
def test_accelerated_fit_with_sample_weight_and_early_stopping(cpu_accelerator, data):
    w = np.random.RandomState(2).uniform(0.5, 1.5, size=len(data))
    params = dict(hidden_layer_sizes=(8,), max_iter=40, n_iter_no_change=2,
                  learning_rate_init=0.05, random_state=0)
    acc = AcceleratedMADEDensity(accelerator=cpu_accelerator, **params).fit(data, sample_weight=w)
    plain = MADEDensity(**params).fit(data, sample_weight=w)
    assert acc.n_iter_ == plain.n_iter_
    np.testing.assert_allclose(acc.score_samples(data), plain.score_samples(data), rtol=1e-6)


@needs_accelerate
def test_accelerator_must_be_an_accelerator(data):
    with pytest.raises(ValueError, match="accelerator must be an accelerate.Accelerator"):
        AcceleratedMADEDensity(accelerator="cuda", **TINY).fit(data)


DDP_SCRIPT = """
import json
import sys
import numpy as np, torch
sys.path.insert(0, {tests!r})
from test_distributed import AcceleratedMADEDensity

torch.set_num_threads(1)
X = np.random.RandomState(0).normal(size=(600, 3))
X[:, 1] += X[:, 0]; X[:, 2] += X[:, 0] * X[:, 1]  # dependent: the marginal start is not the end
w = np.random.RandomState(1).uniform(0.5, 1.5, size=600)
est = AcceleratedMADEDensity(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.03,
                             n_iter_no_change=2, random_state=0).fit(X, sample_weight=w)
acc = est.net_.accelerator
checksum = sum(float(v.double().sum()) for v in est.net_.module_.state_dict().values())
# One file per process: the processes share torchrun's stdout, whose lines can interleave.
with open(f"result_{{acc.process_index}}.json", "w") as f:
    json.dump([acc.process_index, acc.num_processes, est.n_iter_, checksum,
               float(est.score_samples(X).sum())], f)
"""


@needs_accelerate
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None
                    and shutil.which("torchrun") is None, reason="torchrun is not on the PATH")
def test_two_cpu_processes_train_one_model(tmp_path):
    """DistributedDataParallel on two CPU processes (gloo), launched as ``accelerate launch``
    would on two GPUs: both processes stop at the same epoch with the same weights."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results = [json.loads((tmp_path / f"result_{rank}.json").read_text()) for rank in (0, 1)]
    assert [r[:2] for r in results] == [[0, 2], [1, 2]]
    assert results[0][2:] == results[1][2:]  # epochs, weights and scores agree exactly
    assert 1 < results[0][2] < 200  # early stopping chose the epochs (the refit's count)
