"""Loading the model a task module runs: the Hugging Face model with the task's head (in 4-bit NF4 for QLoRA, with
the attention kernel asked for), or an ONNX export under ONNX Runtime; what of its head did not come trained from
its folder (``NewHead``), and the refusal to evaluate with such a head (``check_trained_head``); and readying it for
training."""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from ftlit._transformers import quiet_load_report
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained, resolve_model_path
from ftlit.registry import tasks
from ftlit.training.checkpoints import verify_weights
from ftlit.training.lora import LoraSettings, apply_lora


@dataclass(frozen=True)
class Head:
    """A task head as a model's config (or a checkpoint) describes it.

    Attributes:
        task: the registered task whose head it is (``classification``, …), or None for a model without the head of
            any (a base or pre-training model, whose head a task adds).
        labels: its label names, in id order (None when unnamed: transformers' ``LABEL_0`` …, or a head without).
        num_labels: its number of outputs per position (None where the task does not fix it).
        problem_type: transformers' ``problem_type`` (``single_label_classification``, ``regression`` …), if set.
    """

    task: str | None
    labels: tuple[str, ...] | None = None
    num_labels: int | None = None
    problem_type: str | None = None

    def __str__(self) -> str:
        if self.task is None:
            return "a model without a task head"
        labels = (
            f" with the labels {list(self.labels[:8])}{' …' if len(self.labels) > 8 else ''}" if self.labels else ""
        )
        return f"a {self.task} model{labels}" + (f" ({self.problem_type})" if self.problem_type else "")

    def differs_from(self, wanted: "Head") -> bool:
        """Whether a model with this head (a folder's, a checkpoint's) would be used as another head than
        ``wanted`` (the task's): another task, another number of labels, other label names or problem type.
        What either side leaves unsaid (no task head, unnamed labels) is no difference."""
        if self.task is None:
            return False
        return any(
            ours is not None and theirs is not None and ours != theirs
            for ours, theirs in (
                (self.task, wanted.task),
                (self.num_labels, wanted.num_labels),
                (self.labels, wanted.labels),
                (self.problem_type, wanted.problem_type),
            )
        )


def task_of_head(auto_class_or_architecture: str) -> str | None:
    """The registered task whose head an architecture (``BertForQuestionAnswering``) or auto class
    (``AutoModelForQuestionAnswering``) is; None for any other (``BertModel``, ``BertForMaskedLM``). A task that
    trains the bare encoder (``AutoModel``: retrieval) has no head: its models are anyone's starting point."""
    for name, entry in tasks().items():
        head = entry.model.auto_class.__name__.removeprefix("AutoModel")
        if head and auto_class_or_architecture.endswith(head):
            return name
    return None


def head_of_config(config: PretrainedConfig) -> Head:
    """The task head a model folder's config describes (its ``architectures``, labels and problem type); a task
    whose head has the architecture of another's names itself in the config (``ftlit_task``: a reranker's one-output
    sequence classifier)."""
    architecture = (getattr(config, "architectures", None) or [""])[0]
    task = getattr(config, "ftlit_task", None) or (task_of_head(architecture) if architecture else None)
    if task is None:
        return Head(None)
    names = tuple(config.id2label[i] for i in range(config.num_labels))
    named = names != tuple(f"LABEL_{i}" for i in range(config.num_labels))
    return Head(task, names if named else None, config.num_labels, getattr(config, "problem_type", None))


def head_of_settings(auto_class: type, head_settings: dict) -> Head:
    """The task head ``auto_class.from_pretrained(..., **head_settings)`` builds."""
    labels = head_settings.get("id2label")
    return Head(
        task_of_head(auto_class.__name__),
        tuple(labels[i] for i in range(len(labels))) if labels else None,
        head_settings.get("num_labels"),
        head_settings.get("problem_type"),
    )


@dataclass
class NewHead:
    """What of a loaded model's task head did not come trained from its folder.

    Attributes:
        wanted: the task's head, as the config asks for it.
        found: the folder's own head.
        weights: the weights initialised randomly (missing from the folder, or of another shape there).
    """

    wanted: Head
    found: Head
    weights: list[str] = field(default_factory=list)

    @property
    def replaced(self) -> bool:
        """Whether the folder holds the head of another task or labels, which this head replaces."""
        return self.found.differs_from(self.wanted)

    def __bool__(self) -> bool:
        return self.replaced or bool(self.weights)

    def settled(self) -> "NewHead":
        """The head once a checkpoint restored it or fit trained it: nothing new about it."""
        return NewHead(self.wanted, self.wanted)

    def announcement(self) -> str:
        """What fit says of the head it trains (transfer learning from another task's model, a new head)."""
        said = [f"The model holds {self.found}; this run trains it as {self.wanted}."] if self.replaced else []
        if self.weights:
            said.append(f"New weights, initialised randomly, that this run trains: {listed(self.weights)}")
        return " ".join(said)


def listed(names: list[str], shown: int = 4) -> str:
    """Names for a message: the first ``shown`` and how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def check_trained_head(source: str, head: NewHead) -> None:
    """Refuse to evaluate, predict, serve or export with a model whose head is not trained for the task: a folder
    holding another task's head or other labels, or lacking the head (its weights initialised randomly). Called once
    a checkpoint could have restored the head (then ``head`` is settled), before any batch; any feature that loads
    a second model (a teacher) checks it here too."""
    if head.replaced:
        raise FtlitError(
            f"{source} is {head.found}, but the config asks for {head.wanted}: give a model trained for this task "
            "with these labels (its run's export/), or the config it was trained with."
        )
    if head.weights:
        raise FtlitError(
            f"{source} lacks {listed(head.weights)}: they would be initialised randomly, so the results would come "
            "from an untrained head. Give a model trained for this task (an export), or --ckpt_path a checkpoint of "
            "it."
        )


class HeadCheckpoints:
    """A task module's checkpoints keep to the head they were saved with: each records it (``ftlit_head``), and
    one of another head is refused before its weights load (``check_checkpoint_head``)."""

    #: what of the head the model's folder did not hold trained (set by ``load_model``)
    new_head: NewHead | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ftlit_head"] = asdict(self.new_head.wanted)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.new_head is not None:  # (the model is built: the head it wants is known)
            check_checkpoint_head(self.trainer.ckpt_path, checkpoint, self.new_head.wanted, self.state_dict())


def check_checkpoint_head(path: str, checkpoint: dict, wanted: Head, state: dict) -> None:
    """Refuse a checkpoint whose head is not the one the config builds (``wanted``; ``state``: the module's
    ``state_dict``), before its weights are loaded: the head it records (``ftlit_head``), and for checkpoints
    older than that record, the shape of every weight both have."""
    recorded = checkpoint.get("ftlit_head")
    if recorded is not None:
        head = Head(**{**recorded, "labels": tuple(recorded["labels"]) if recorded.get("labels") else None})
        if head.differs_from(wanted):
            raise FtlitError(
                f"--ckpt_path {path} is a checkpoint of {head}, but the config asks for {wanted}: give a checkpoint "
                "of this task with these labels, or the config it was trained with."
            )
    for name, tensor in checkpoint.get("state_dict", {}).items():
        if name in state and tuple(tensor.shape) != tuple(state[name].shape):
            raise FtlitError(
                f"--ckpt_path {path} holds {name} of shape {list(tensor.shape)}, where the config's model has "
                f"{list(state[name].shape)} ({wanted}): give a checkpoint of this task with these labels, or the "
                "config it was trained with."
            )


def load_model(
    auto_class: type,
    model_name_or_path: str,
    head_settings: dict,
    engine: Literal["torch", "onnxruntime"] = "torch",
    quantization: Literal["4bit"] | None = None,
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, NewHead]:
    """``auto_class.from_pretrained(model_name_or_path, **head_settings)``, in 4-bit when ``quantization`` asks,
    attending with ``attn_implementation`` when given; or (``engine`` onnxruntime) the ONNX export in that folder.
    With it, what of its head the folder did not hold trained (``NewHead``): whether to use it is the caller's
    (fit trains it; an evaluation refuses it, ``check_trained_head``, unless a checkpoint restores it)."""
    wanted = head_of_settings(auto_class, head_settings)
    if engine == "onnxruntime":
        from ftlit.deploy.onnx import OnnxRuntimeModel

        model = OnnxRuntimeModel(model_name_or_path)
        return model, NewHead(wanted, head_of_config(model.config))
    verify_weights(Path(resolve_model_path(model_name_or_path)))
    found = head_of_config(load_pretrained(AutoConfig.from_pretrained, model_name_or_path, "model config"))
    # a head of other labels is loaded anew, not refused: fit may train it (transfer), the others refuse it
    kwargs = {**head_settings, "ignore_mismatched_sizes": True}
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
    mismatched = [name for name, *_shapes in info["mismatched_keys"]]
    return model, NewHead(wanted, found, sorted({*info["missing_keys"], *mismatched}))


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
