"""The transformers internals behind ftlit._transformers, each checked against the installed transformers: when a
release moves one, this fails (and pyproject.toml's upper bound on transformers keeps users off untested releases)."""

import importlib.util
import logging
import sys
import textwrap

import pytest
from transformers import BertConfig, BertForSequenceClassification, BertModel, DistilBertConfig, DistilBertModel

from conftest import Collected
from ftlit._transformers import LOAD_REPORT_LOGGER, attention_kernel, can_switch_attention, quiet_load_report


def tiny_bert() -> BertModel:
    return BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))


def test_the_attention_kernel_is_read_as_loaded_and_as_set():
    model = tiny_bert()
    assert attention_kernel(model) == "sdpa"  # the default of a model built or loaded without a choice
    model.set_attn_implementation("eager")
    assert attention_kernel(model) == "eager"


def tiny_distilbert() -> DistilBertModel:
    return DistilBertModel(DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64))


@pytest.mark.parametrize("build", [tiny_bert, tiny_distilbert], ids=["bert", "distilbert"])
def test_models_that_look_their_kernel_up_at_each_call_can_switch(build):
    assert can_switch_attention(build())


def test_a_model_whose_attention_layers_fix_their_kernel_cannot_switch(tmp_path):
    # transformers reads the model's module source: attention layers that never ask its kernel registry
    source = textwrap.dedent("""
        from torch import nn
        from transformers import BertConfig, PreTrainedModel

        class FixedAttention(nn.Module):
            def forward(self, hidden):
                return hidden

        class FixedModel(PreTrainedModel):
            config_class = BertConfig

            def __init__(self, config):
                super().__init__(config)
                self.attention = FixedAttention()
    """)
    (tmp_path / "fixed_attention_model.py").write_text(source)
    spec = importlib.util.spec_from_file_location("fixed_attention_model", tmp_path / "fixed_attention_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert not can_switch_attention(module.FixedModel(BertConfig(hidden_size=32, num_attention_heads=2)))
    finally:
        del sys.modules[spec.name]


def test_the_load_report_comes_through_the_logger_that_quiet_load_report_filters(tmp_path):
    tiny_bert().save_pretrained(tmp_path)
    collected = Collected()
    logging.getLogger(LOAD_REPORT_LOGGER).addHandler(collected)
    try:
        BertForSequenceClassification.from_pretrained(tmp_path)  # a new head: the report lists it as missing
        reported = list(collected.messages)
        collected.messages.clear()
        with quiet_load_report():
            _, info = BertForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    finally:
        logging.getLogger(LOAD_REPORT_LOGGER).removeHandler(collected)
    assert any("LOAD REPORT" in message for message in reported)
    assert not any("LOAD REPORT" in message for message in collected.messages)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]


def test_only_a_load_report_naming_unconverted_weights_still_comes():
    collected = Collected()
    logger = logging.getLogger(LOAD_REPORT_LOGGER)
    logger.addHandler(collected)
    try:
        with quiet_load_report():
            for status in ("MISSING", "UNEXPECTED", "MISMATCH", "CONVERSION"):
                logger.warning(f"BertModel LOAD REPORT from: x\nKey | Status\nclassifier.bias | {status}")
            logger.warning("another warning")
    finally:
        logger.removeHandler(collected)
    assert [message.rsplit("| ", 1)[-1] for message in collected.messages] == ["CONVERSION", "another warning"]
