"""Switching a model's attention kernel for a block of code: training batches attend eagerly where that is
measured faster than the model's own sdpa (ftlit.machine decides where, and says why), and evaluation keeps the
model's own kernel."""

from collections.abc import Iterator
from contextlib import contextmanager

from transformers import PretrainedConfig, PreTrainedModel

from ftlit._transformers import attention_kernel


def attention_dropout(config: PretrainedConfig) -> float:
    """The model's dropout on attention probabilities (BERT's and DistilBERT's names for it; 0 where it has none)."""
    for name in ("attention_probs_dropout_prob", "attention_dropout"):
        if isinstance(getattr(config, name, None), int | float):
            return float(getattr(config, name))
    return 0.0


@contextmanager
def attention_implementation(model: PreTrainedModel, implementation: str) -> Iterator[None]:
    """``model`` attends with ``implementation`` inside the block and with its own again after it. Only the
    forward pass needs to be inside: the backward pass replays the operations the forward recorded."""
    own = attention_kernel(model)
    model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        model.set_attn_implementation(own)
