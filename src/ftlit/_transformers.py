"""The few transformers internals ftlit relies on, in one place: each has a test (tests/test_transformers_internals.py)
that fails when a transformers release moves it, and ``pyproject.toml`` bounds transformers to the major version they
were checked against.

(ftlit's pipelines override ``Pipeline._sanitize_parameters`` and ``_forward``: those are transformers' documented
hooks for writing a pipeline, not internals.)"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from transformers import PreTrainedModel

#: The logger transformers' ``from_pretrained`` prints its load report through (modeling_utils' module logger)
LOAD_REPORT_LOGGER = "transformers.modeling_utils"


def attention_kernel(model: PreTrainedModel) -> str:
    """The attention implementation ``model`` runs now (``sdpa``, ``eager`` …): its config's
    ``_attn_implementation``, which ``set_attn_implementation`` changes (transformers has no public reader)."""
    return model.config._attn_implementation


def can_switch_attention(model: PreTrainedModel) -> bool:
    """Whether ``model``'s attention kernel can be changed once it is loaded (``set_attn_implementation``): its
    attention layers look their kernel up at every call."""
    return model._can_set_attn_implementation()


class _NoLoadReport(logging.Filter):
    """Drops the load report's table of missing, mismatched and unexpected weights: ftlit says what matters of it
    (the new head, or a head of another task) itself. A report naming weights that could not be converted still
    comes (transformers' errors about them point at it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return "LOAD REPORT" not in message or "CONVERSION" in message


@contextmanager
def quiet_load_report() -> Iterator[None]:
    """Inside the block, ``from_pretrained`` prints no load report (its table of the weights a folder lacks or has
    in excess, as a warning); its other messages still come. The caller asks for ``output_loading_info`` and says
    what matters of it: a table of "MISSING" weights is misleading where a checkpoint restores them next."""
    logger, quiet = logging.getLogger(LOAD_REPORT_LOGGER), _NoLoadReport()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
