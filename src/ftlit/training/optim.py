"""The optimizer and learning-rate schedule a module trains with: parameter groups, the optimizer (AdamW by
default, fused where ftlit.machine says so) and ftlit's default schedule (linear warmup, then a linear or cosine
decay over the run's optimizer steps)."""

import math
import re
import sys
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from ftlit.errors import FtlitError


def parameter_groups(parameters: list[torch.nn.Parameter], learning_rate: float, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: weight matrices with ``weight_decay``, and the 1-D biases and LayerNorm
    weights without it (decaying those only hurts). ``lr`` and ``weight_decay`` are set on the groups, so they hold
    for any optimizer."""
    trainable = [p for p in parameters if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "lr": learning_rate, "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "lr": learning_rate, "weight_decay": 0.0},
    ]


def optimizer_and_schedule(
    parameters: list[torch.nn.Parameter],
    *,
    learning_rate: float,
    weight_decay: float,
    adam_epsilon: float,
    warmup_ratio: float,
    warmup_steps: int | None,
    total_steps: int,
    fused: bool,
    monitor: str,
    optimizer: Callable[..., Optimizer] | None = None,
    lr_scheduler: Callable | None = None,
) -> dict:
    """What ``configure_optimizers`` returns: ``optimizer`` (default AdamW with ``adam_epsilon``) over the parameter
    groups, fused when ``fused`` and it has the option; ``lr_scheduler`` (default: linear warmup and decay), given the
    run's step counts where it asks for them, stepped after every optimizer step, or on ``monitor`` (a validation
    metric) at each epoch end for ReduceLROnPlateau."""
    groups = parameter_groups(parameters, learning_rate, weight_decay)
    if optimizer is None:
        built = torch.optim.AdamW(groups, lr=learning_rate, eps=adam_epsilon, fused=fused)
    elif fused and fusable(getattr(optimizer, "keywords", {})):
        built = optimizer(groups, fused=True)  # an optimizer with a fused kernel (Adam, SGD, …)
    else:
        built = optimizer(groups)
    warmup = warmup_steps if warmup_steps is not None else math.ceil(warmup_ratio * total_steps)
    scheduler = schedule(lr_scheduler, built, total_steps, warmup)
    if isinstance(scheduler, ReduceLROnPlateau):  # stepped on the task metric
        return {
            "optimizer": built,
            "lr_scheduler": {"scheduler": scheduler, "monitor": f"val/{monitor}", "interval": "epoch"},
        }
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def schedule(lr_scheduler: Callable | None, optimizer: Optimizer, total_steps: int, warmup_steps: int):
    """``lr_scheduler`` (default: linear warmup and decay) on ``optimizer``, given the run's step counts where it
    asks for them and was not given them."""
    steps = {"num_training_steps": total_steps, "num_warmup_steps": warmup_steps}
    if lr_scheduler is None:
        return WarmupDecay(optimizer, "linear", **steps)
    given = getattr(lr_scheduler, "keywords", {})
    return lr_scheduler(optimizer, **{k: v for k, v in steps.items() if given.get(k, 0) is None})


def checked_optimizer(
    optimizer: Callable[..., Optimizer] | None, lr_scheduler: Callable | None, monitor_mode: Literal["min", "max"]
) -> tuple[Callable[..., Optimizer] | None, Callable | None]:
    """``--model.optimizer`` and ``--model.lr_scheduler`` checked when the module is made, before any data is read:
    both are built once on a stand-in parameter, so that a value they refuse (SGD's ``momentum -1``) is refused
    now, naming its option. A plateau schedule left at its default ``mode`` (min) follows the main metric's
    direction (``monitor_mode``): on accuracy it would cut the learning rate while the model improves."""
    probe = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2, 2))])
    # (a module loaded from a checkpoint outside the CLI gets the config's class paths: nothing it trains with)
    if callable(optimizer):
        try:
            probe = optimizer(parameter_groups([torch.nn.Parameter(torch.zeros(2, 2))], 1e-3, 0.0))
        except (ValueError, TypeError, RuntimeError) as err:
            raise refused("--model.optimizer", optimizer, err) from err
    if not callable(lr_scheduler):
        return optimizer, lr_scheduler
    plateau = issubclass(given_class(lr_scheduler) or object, ReduceLROnPlateau)
    if plateau and getattr(lr_scheduler, "keywords", {}).get("mode", "min") == "min":
        lr_scheduler = partial(lr_scheduler, mode=monitor_mode)
    try:
        schedule(lr_scheduler, probe, total_steps=10, warmup_steps=1)
    except (ValueError, TypeError, RuntimeError) as err:
        raise refused("--model.lr_scheduler", lr_scheduler, err) from err
    return optimizer, lr_scheduler


def refused(option: str, given: Callable, err: Exception) -> FtlitError:
    """What an optimizer or schedule class refused, naming the options whose names its message mentions."""
    cls = given_class(given)
    name = public_path(cls) if cls is not None else repr(given)
    keywords = getattr(given, "keywords", {})
    text = str(err).rstrip(".")
    named = [k for k in keywords if re.search(rf"\b{re.escape(k.rstrip('s'))}s?\b", text, re.IGNORECASE)]
    values = ", ".join(f"{option}.{k} {keywords[k]!r}" for k in named) or "its settings"
    return FtlitError(f"{option} {name} refused {values}: {text}. `ftlit fit {option}.help {name}` lists its options.")


def given_class(given: Callable) -> type | None:
    """The class an optimizer or schedule option makes: jsonargparse gives a ``functools.partial`` of its
    instantiator with the class among the arguments (or of the class itself); None for another callable."""
    candidates = [given, getattr(given, "func", None), *getattr(given, "args", ())]
    return next((c for c in candidates if isinstance(c, type)), None)


def public_path(cls: type) -> str:
    """The shortest import path of ``cls`` (``torch.optim.SGD``, not ``torch.optim.sgd.SGD``)."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if getattr(module, cls.__qualname__, None) is cls:
            return f"{'.'.join(parts[:end])}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def fusable(settings: dict) -> bool:
    """Whether an optimizer configured with ``settings`` (its init arguments) takes ``fused=True``: it has the
    option, left unset, and neither ``foreach`` nor ``differentiable``, which exclude it."""
    return (
        "fused" in settings
        and settings["fused"] is None
        and not settings.get("foreach")
        and not settings.get("differentiable")
    )


class WarmupDecay(LambdaLR):
    """The learning rate rises linearly from 0 over ``num_warmup_steps``, then falls to 0 at
    ``num_training_steps``: linearly, along a half cosine, or not at all (``constant``). The formulas are those of
    transformers' ``get_{linear,cosine,constant}_schedule_with_warmup``.

    ftlit fills in both step counts from the run (``--model.warmup_ratio`` / ``warmup_steps`` and the trainer's
    total optimizer steps) when they are not given, so a config needs only
    ``--model.lr_scheduler ftlit.training.optim.WarmupDecay --model.lr_scheduler.shape cosine``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        shape: Literal["linear", "cosine", "constant"] = "linear",
        num_warmup_steps: int | None = None,
        num_training_steps: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        if num_warmup_steps is None or num_training_steps is None:
            raise ValueError("WarmupDecay needs num_warmup_steps and num_training_steps (ftlit gives both).")
        self.shape = shape
        self.num_warmup_steps = num_warmup_steps
        self.num_training_steps = num_training_steps
        super().__init__(optimizer, self.factor, last_epoch)

    def state_dict(self) -> dict:
        # The step counts are the run's, given anew when it resumes (with a longer run, a longer schedule)
        return {k: v for k, v in super().state_dict().items() if k not in ("num_warmup_steps", "num_training_steps")}

    def factor(self, step: int) -> float:
        """The learning rate at ``step``, as a fraction of the peak."""
        warmup, total = self.num_warmup_steps, self.num_training_steps
        if step < warmup:
            return float(step) / float(max(1, warmup))
        if self.shape == "constant":
            return 1.0
        if self.shape == "linear":
            return max(0.0, float(total - step) / float(max(1, total - warmup)))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
