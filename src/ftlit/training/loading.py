"""Loading the model a task module runs: the Hugging Face model with the task's head (in 4-bit NF4 for QLoRA, with
the attention kernel asked for), or an ONNX export under ONNX Runtime; and readying it for training."""

from typing import Literal

import torch
from transformers import PreTrainedModel

from ftlit._transformers import quiet_load_report
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained
from ftlit.training.lora import LoraSettings, apply_lora


def load_model(
    auto_class: type,
    model_name_or_path: str,
    head_settings: dict,
    engine: Literal["torch", "onnxruntime"] = "torch",
    quantization: Literal["4bit"] | None = None,
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, list[str]]:
    """``auto_class.from_pretrained(model_name_or_path, **head_settings)``, in 4-bit when ``quantization`` asks,
    attending with ``attn_implementation`` when given; or (``engine`` onnxruntime) the ONNX export in that folder.
    With it, the names of the weights the folder did not hold (initialised randomly: a new task head)."""
    if engine == "onnxruntime":
        from ftlit.deploy.onnx import OnnxRuntimeModel

        return OnnxRuntimeModel(model_name_or_path), []
    kwargs = dict(head_settings)
    if quantization == "4bit":
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError:
            raise FtlitError("--model.quantization 4bit needs bitsandbytes: `pip install bitsandbytes`.") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        with quiet_load_report():  # (what matters of it is said once the stage is known: model_callbacks.NewWeights)
            model, info = load_pretrained(
                auto_class.from_pretrained, model_name_or_path, "model", output_loading_info=True, **kwargs
            )
    except (ValueError, ImportError) as err:  # an unknown kernel, or one whose package is missing
        if not attn_implementation:
            raise
        raise FtlitError(
            f"Could not load the model with --model.attn_implementation {attn_implementation}: {err}"
        ) from None
    if quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, sorted(info["missing_keys"])


def ready_for_training(
    model: PreTrainedModel,
    lora: LoraSettings | None,
    task_type: str,
    head_modules: tuple[str, ...],
    gradient_checkpointing: bool,
    compile: bool,
) -> torch.nn.Module:
    """``model`` as it trains: with gradient checkpointing, wrapped with LoRA adapters (the task's
    ``head_modules`` train in full), in training mode
    (``from_pretrained`` returns it in eval mode and Lightning keeps module modes as they are), compiled."""
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora is not None:
        model = apply_lora(model, lora, task_type, head_modules)
    model = model.train()
    if compile:
        model.compile()  # in place: parameter names, checkpoints and the export are unchanged
    return model


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """The model's parameters, all and trainable (results.json's ``model`` section)."""
    params = list(model.parameters())
    return {
        "total_params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
    }


def trainable_summary(model: torch.nn.Module, lora: bool) -> str:
    """The line fit logs of what trains: with ``lora``, how many parameters are adapters and how many the head's."""
    counts = parameter_counts(model)
    trainable, total = counts["trainable_params"], counts["total_params"]
    adapters = sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "lora_" in name)
    detail = f" ({adapters:,} LoRA + {trainable - adapters:,} task head)" if lora else ""
    return f"Trainable parameters: {trainable:,}{detail} of {total:,} ({100 * trainable / total:.2f} %)"
