"""Which attention kernel a training step runs.

Hugging Face models attend with PyTorch's ``scaled_dot_product_attention`` (``sdpa``) by default. On a CPU under
bfloat16, plain matmul-softmax-matmul (``eager``) attention trains faster:
- With attention dropout (0.1 in BERT, DistilBERT, RoBERTa, MiniLM), PyTorch's CPU flash kernel cannot drop out, and
  sdpa falls back to its reference path, which computes in float32. Eager attention computes in bfloat16. Measured on
  a 2-core Xeon with AMX (torch 2.13, one training step, sdpa → eager): MiniLM 32 × 28 tokens 228 → 213 ms, 32 × 128
  1,050 → 946 ms, 16 × 384 4,788 → 4,368 ms; DistilBERT 32 × 128 1,894 → 1,705 ms, 8 × 384 2,780 → 2,330 ms.
- Without attention dropout, sdpa runs the flash kernel, whose backward pass is slow for short sequences: MiniLM
  32 × 28 242 → 155 ms, 32 × 128 815 → 436 ms, 16 × 192 509 → 474 ms, but 16 × 256 725 against 870 ms.
In float32 the two are level. Evaluation (no backward pass, no dropout) keeps the model's own kernel: there the
flash kernel is as fast or faster at every length.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from transformers import PretrainedConfig, PreTrainedModel

#: Without attention dropout, the longest (padded) batch that trains faster with eager attention on a CPU under bf16
EAGER_MAX_TOKENS = 192


def attention_dropout(config: PretrainedConfig) -> float:
    """The model's dropout on attention probabilities (BERT's and DistilBERT's names for it; 0 where it has none)."""
    for name in ("attention_probs_dropout_prob", "attention_dropout"):
        if isinstance(getattr(config, name, None), int | float):
            return float(getattr(config, name))
    return 0.0


def trains_faster_eager(device_type: str, precision: str, sequence_length: int, dropout: float) -> bool:
    """Whether a training batch of ``sequence_length`` tokens (padded) runs faster with eager attention than with
    sdpa, on ``device_type`` at Lightning ``precision``, with attention ``dropout``."""
    if device_type != "cpu" or not precision.startswith("bf16"):
        return False
    return dropout > 0 or sequence_length <= EAGER_MAX_TOKENS


@contextmanager
def attention_implementation(model: PreTrainedModel, implementation: str) -> Iterator[None]:
    """``model`` attends with ``implementation`` inside the block and with its own again after it. Only the
    forward pass needs to be inside: the backward pass replays the operations the forward recorded."""
    own = model.config._attn_implementation
    model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        model.set_attn_implementation(own)
