"""The few transformers internals ftlit relies on, in one place: each has a test (tests/test_transformers_internals.py)
that fails when a transformers release moves it, and ``pyproject.toml`` bounds transformers to the major version they
were checked against.

(ftlit's pipelines override ``Pipeline._sanitize_parameters`` and ``_forward``: those are transformers' documented
hooks for writing a pipeline, not internals.)"""

from transformers import PreTrainedModel


def attention_kernel(model: PreTrainedModel) -> str:
    """The attention implementation ``model`` runs now (``sdpa``, ``eager`` …): its config's
    ``_attn_implementation``, which ``set_attn_implementation`` changes (transformers has no public reader)."""
    return model.config._attn_implementation


def can_switch_attention(model: PreTrainedModel) -> bool:
    """Whether ``model``'s attention kernel can be changed once it is loaded (``set_attn_implementation``): its
    attention layers look their kernel up at every call."""
    return model._can_set_attn_implementation()
