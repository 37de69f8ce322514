"""Multi-GPU, multi-node and mixed-precision training through Hugging Face Accelerate.

skar writes no training loop, and no distributed one either: skorch's
:class:`skorch.hf.AccelerateMixin` hands the module, optimizer and data loaders to an
:class:`accelerate.Accelerator`, which wraps them for DistributedDataParallel, mixed precision
or gradient accumulation as ``accelerate launch`` configured it. This module plugs that net into
skar's estimators through one mixin:

>>> from skar import MADEDensity
>>> from skar.accelerate import AcceleratedDensityMixin
>>> class AcceleratedMADEDensity(AcceleratedDensityMixin, MADEDensity):
...     '''MADEDensity trained through Accelerate.'''
>>> est = AcceleratedMADEDensity(hidden_layer_sizes=(64,), accelerator=None)
>>> sorted(est.get_params())[:3]
['accelerator', 'activation', 'alpha']

Write the subclass at the top level of a module (as above) so that it pickles. Every
parameter of the estimator keeps its meaning except ``device``, which is ignored: the
accelerator places the model (``accelerate launch`` gives each process its GPU). The extra
parameter ``accelerator`` is an :class:`accelerate.Accelerator`, or ``None`` to create
``Accelerator()`` in ``fit`` from the launch configuration.

A mixin rather than an ``accelerator=`` parameter on every estimator because (1) the
default path stays exactly the plain skorch net, with no import of ``accelerate``; (2) the
optional dependency lives in one file; (3) it is skorch's own idiom
(``class AcceleratedNet(AccelerateMixin, NeuralNet)``), one line for every skar model, the
ones written later included.

Training requires the ``accelerate`` extra (``pip install 'skar[accelerate]'``); this module
imports without it, and without touching CUDA.
"""

from __future__ import annotations

from typing import Any

import torch
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin

from .training import _DensityNet, _silent, build_net

__all__ = ["AcceleratedDensityMixin", "AcceleratedDensityNet"]


class AcceleratedDensityNet(AccelerateMixin, _DensityNet):
    """skar's density net trained by :class:`skorch.hf.AccelerateMixin`.

    Two changes to the mixin, both found by training on two processes: the criterion (which
    has no parameters) is not handed to ``accelerator.prepare``, and in validation the
    predictions and the row weights of every process are gathered together
    (``gather_for_metrics``) before the weighted mean NLL is taken, so every process computes
    the same validation loss and early stopping stops at the same epoch everywhere.
    """

    def _initialize_accelerator(self) -> AcceleratedDensityNet:
        # skorch prepares every criterion that is a torch module; skar's criterion has no
        # parameters, and DistributedDataParallel refuses a module without any (found with
        # two processes: ``RuntimeError: DistributedDataParallel is not needed when a module
        # doesn't have any parameter that requires a gradient``). Prepare the rest only.
        criteria = self._criteria
        self._criteria = []
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def _bare_module(self) -> torch.nn.Module:
        # DistributedDataParallel's state-dict keys carry a ``module.`` prefix.
        return self.accelerator.unwrap_model(self.module_)

    def _before_refit(self) -> None:
        # ``initialize`` prepares the module only once (skorch's flag); the refit's
        # ``initialize`` puts the bare module back, which must be wrapped again, or each
        # process would train its own copy.
        self._unwrap_accelerator()

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        self._set_training(False)
        Xi, _ = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            w = Xi.get("sample_weight") if isinstance(Xi, dict) else None
            if w is None:
                w = torch.ones_like(y_pred)
            # Gather predictions and row weights in one call, so both lose the same padding.
            y_pred, w = self.accelerator.gather_for_metrics((y_pred, w.to(y_pred.device)))
            loss = self.criterion_(y_pred, w)
        return {"loss": loss, "y_pred": y_pred}


class AcceleratedDensityMixin:
    """Train a skar estimator through Hugging Face Accelerate (put it first in the bases).

    Parameters
    ----------
    accelerator : accelerate.Accelerator or None, default=None
        The accelerator that prepares the model, optimizer and data loaders. ``None``
        creates ``Accelerator()`` at ``fit``, configured by ``accelerate launch`` (or its
        environment variables); pass ``Accelerator(cpu=True)`` to force the CPU,
        ``Accelerator(mixed_precision="bf16")`` for mixed precision.
    **params
        The parameters of the estimator it is mixed into.

    Notes
    -----
    Launched on ``N`` processes, every process runs the script and the fit: each process
    trains on its shard of every epoch (DistributedDataParallel keeps the weights equal),
    validation losses are computed on the gathered predictions, so early stopping stops at
    the same epoch everywhere, and every process ends with the same fitted estimator. Score,
    sample and save on the main process (``est.net_.accelerator.is_main_process``).

    After ``fit`` the network is unwrapped (no DDP wrapper, full precision) and sits on the
    accelerator's device; ``score_samples`` and ``sample`` run there in the current process
    only, and the fitted estimator pickles like any other.
    """

    def __init__(self, *, accelerator: Any = None, **params: Any) -> None:
        self.accelerator = accelerator
        super().__init__(**params)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        # scikit-learn reads the parameters off ``cls.__init__``, here ``**params``: take them
        # from the estimator class that follows this mixin in the MRO.
        mro = cls.__mro__
        estimator_cls = mro[mro.index(AcceleratedDensityMixin) + 1]
        return sorted({"accelerator", *estimator_cls._get_param_names()})

    def _make_net(self, module: Any, **options: Any) -> Any:
        accelerator = self.accelerator
        if accelerator is None:
            try:
                from accelerate import Accelerator
            except ImportError as exc:
                raise ImportError(
                    f"{type(self).__name__} trains through Hugging Face Accelerate, which is "
                    "not installed: pip install 'skar[accelerate]'"
                ) from exc
            accelerator = Accelerator()
        elif not hasattr(accelerator, "prepare"):
            raise ValueError(
                "accelerator must be an accelerate.Accelerator or None; got "
                f"{type(accelerator).__name__}"
            )
        options["device"] = None  # the accelerator places the model and the batches
        return build_net(
            module,
            net_cls=AcceleratedDensityNet,
            accelerator=accelerator,
            # Unwrapped after fit (below), not at the end of training: early stopping then
            # restores its best weights into the module they were copied from.
            unwrap_after_train=False,
            # skorch's epoch table goes to the accelerator's print (main process only), which
            # would print it whatever ``verbose`` says: keep skar's meaning of ``verbose``.
            callbacks__print_log__sink="auto" if options["verbose"] >= 2 else _silent,
            **options,
        )

    def _fit(self, X: Any, sample_weight: Any, y: Any = None) -> None:
        super()._fit(X, sample_weight, y)
        net = self.net_
        net._unwrap_accelerator()
        net.module_.eval()
        # A learning-rate schedule patches the step of the optimizer it drives with a
        # closure (torch's ``_wrapped_by_lr_sched``); a plain optimizer drops it when pickled,
        # accelerate's wrapper does not, and the closure does not pickle. Training is over:
        # the class's own ``step`` serves a later fit (whose schedule patches it again).
        for optimizer in [net.optimizer_, *getattr(net.accelerator, "_optimizers", [])]:
            step = vars(optimizer).get("step")
            if getattr(step, "_wrapped_by_lr_sched", False):
                del optimizer.step
        # Scoring and sampling move batches to ``net_.device``: where the accelerator put it.
        net.device = str(net.accelerator.device)
