"""LoRA through peft: settings, target-module detection, and a model whose task head stays fully trainable."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from transformers import PreTrainedModel

from ftlit.errors import FtlitError
from ftlit.settings import check_range

if TYPE_CHECKING:
    from peft import PeftModel

# Attention projections by naming family: DistilBERT, then BERT/RoBERTa/MiniLM/ELECTRA/…
ATTENTION_PROJECTIONS = (("q_lin", "k_lin", "v_lin"), ("query", "key", "value"))


@dataclass
class LoraSettings:
    """``model.peft`` in a config.

    Attributes:
        method: only ``lora`` for now.
        r: rank of the update matrices (≥ 1).
        alpha: scaling numerator (the update is scaled by alpha / r) (> 0).
        dropout: dropout on the LoRA input (≥ 0 and < 1).
        target_modules: module names to adapt; default: the attention query/key/value projections.
        bias: ``none``, ``all`` or ``lora_only``: which biases train.
        merge: export a plain model with the adapters merged (default), or the adapter folder.
    """

    method: Literal["lora"] = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] | None = None
    bias: Literal["none", "all", "lora_only"] = "none"
    merge: bool = True

    def __post_init__(self) -> None:
        check_range("--model.peft.r", self.r, minimum=1)
        check_range("--model.peft.alpha", self.alpha, minimum=0, include_minimum=False)
        check_range("--model.peft.dropout", self.dropout, minimum=0, maximum=1, include_maximum=False)


def _leaf_names(model: torch.nn.Module) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}


def target_modules(model: torch.nn.Module, requested: list[str] | None) -> list[str]:
    """The requested module names, checked; by default the attention projections of the architecture."""
    present = _leaf_names(model)
    if requested is None:
        for family in ATTENTION_PROJECTIONS:
            if set(family) <= present:
                return list(family)
        raise FtlitError(
            f"Could not find attention projections to adapt in {type(model).__name__}; set "
            f"--model.peft.target_modules to some of its linear modules: {sorted(present)}."
        )
    unknown = sorted(set(requested) - present)
    if unknown:
        raise FtlitError(
            f"LoRA target module(s) {unknown} do not exist in {type(model).__name__}. Its linear modules are: "
            f"{sorted(present)}."
        )
    return list(requested)


def apply_lora(
    model: PreTrainedModel, settings: LoraSettings, task_type: str, head_modules: tuple[str, ...]
) -> "PeftModel":
    """Wrap ``model`` with LoRA adapters; the task head (those of ``head_modules`` the model has: a fresh
    fine-tuning initialises them) trains in full rather than staying frozen at random weights. ``task_type`` is
    peft's name for the task (a ``peft.TaskType`` value)."""
    from peft import LoraConfig, get_peft_model  # imported on use: peft slows the start of every command

    heads = [name for name in head_modules if isinstance(getattr(model, name, None), torch.nn.Module)]
    config = LoraConfig(
        task_type=task_type,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_modules(model, settings.target_modules),
        bias=settings.bias,
        modules_to_save=heads,
    )
    return get_peft_model(model, config)


def trainable_state(state_dict: dict, model: torch.nn.Module) -> dict:
    """A LoRA run's checkpoint ``state_dict`` less the frozen base (its keys under ``model.``): the adapters, the
    head and the module's own buffers; the base comes back from ``model_name_or_path``."""
    trainable = {f"model.{name}" for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in state_dict.items() if k in trainable or not k.startswith("model.")}
