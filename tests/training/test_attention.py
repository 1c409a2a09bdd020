"""The attention kernel: training on a CPU under bf16 attends eagerly (measured faster there), evaluation and every
other device or precision keep the model's own kernel, and a kernel the user names is used throughout."""

import pytest
from lightning import Callback, Trainer
from transformers import BertConfig, BertModel, DistilBertConfig, PretrainedConfig

from ftlit.errors import FtlitError
from ftlit.machine import EAGER_MAX_TOKENS, trains_faster_eager
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.training.attention import attention_dropout, attention_implementation
from ftlit.training.lora import LoraSettings


@pytest.mark.parametrize(
    ("device", "precision", "length", "dropout", "eager"),
    [
        ("cpu", "bf16-mixed", 28, 0.1, True),
        ("cpu", "bf16-mixed", 384, 0.1, True),  # with dropout, sdpa computes in float32: eager wins at any length
        ("cpu", "bf16-true", EAGER_MAX_TOKENS, 0.0, True),  # without dropout the flash kernel is slow only when short
        ("cpu", "bf16-mixed", EAGER_MAX_TOKENS + 1, 0.0, False),
        ("cpu", "32-true", 28, 0.1, False),  # in float32 the two are level: the model's own stays
        ("cuda", "bf16-mixed", 28, 0.1, False),
    ],
)
def test_eager_attention_only_where_it_trains_faster(device, precision, length, dropout, eager):
    assert trains_faster_eager(device, precision, length, dropout) is eager


@pytest.mark.parametrize(
    ("config", "dropout"),
    [
        (BertConfig(attention_probs_dropout_prob=0.15), 0.15),
        (DistilBertConfig(attention_dropout=0.2), 0.2),
        (PretrainedConfig(), 0.0),  # none known: treated as none, so long batches keep the flash kernel
    ],
)
def test_attention_dropout_is_read_under_each_family_name(config, dropout):
    assert attention_dropout(config) == dropout


def test_the_model_attends_with_its_own_kernel_again_after_the_block_even_when_it_fails():
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    with pytest.raises(RuntimeError), attention_implementation(model, "eager"):
        assert model.config._attn_implementation == "eager"
        raise RuntimeError
    assert model.config._attn_implementation == "sdpa"


class RecordAttention(Callback):
    """The attention kernel that ran in every self-attention layer, by stage (train, sanity_check, validate): eager
    attention returns its attention probabilities, SDPA none."""

    def __init__(self):
        self.seen: set[tuple[str, str]] = set()

    def on_fit_start(self, trainer, pl_module):
        def record(module, args, outputs):
            self.seen.add((trainer.state.stage.value, "sdpa" if outputs[1] is None else "eager"))

        for module in pl_module.model.modules():
            if type(module).__name__ == "BertSelfAttention":
                module.register_forward_hook(record)


def fit(tiny_bert, sentiment_files, precision: str, **model_settings) -> tuple[set, SequenceClassificationModule]:
    module = SequenceClassificationModule(tiny_bert, **model_settings)
    data = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]),
                                    validation_file=str(sentiment_files["dev"]), text_fields=["text"])  # fmt: skip
    recorder = RecordAttention()
    trainer = Trainer(max_steps=3, val_check_interval=2, limit_val_batches=2, num_sanity_val_steps=1,
                      precision=precision, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[recorder])  # fmt: skip
    trainer.fit(module, datamodule=data)
    return recorder.seen, module


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4)], ids=["full", "lora"])
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_training_on_cpu_in_bf16_attends_eagerly_and_evaluation_keeps_the_fused_kernel(tiny_bert, sentiment_files,
                                                                                        lora):  # fmt: skip
    seen, module = fit(tiny_bert, sentiment_files, "bf16-mixed", peft=lora)
    assert seen == {("train", "eager"), ("sanity_check", "sdpa"), ("validate", "sdpa")}
    assert module.model.config._attn_implementation == "sdpa"  # what the export and later evaluations run


@pytest.mark.parametrize(("precision", "settings"), [("32-true", {}), ("bf16-mixed", {"gradient_checkpointing": True})],
                         ids=["float32", "gradient checkpointing"])  # fmt: skip
def test_training_keeps_the_models_kernel_in_float32_and_under_gradient_checkpointing(tiny_bert, sentiment_files,
                                                                                      precision, settings):  # fmt: skip
    # (gradient checkpointing recomputes the forward pass in the backward, which must find the same operations)
    seen, _ = fit(tiny_bert, sentiment_files, precision, **settings)
    assert seen == {("train", "sdpa"), ("sanity_check", "sdpa"), ("validate", "sdpa")}


def test_a_kernel_the_user_names_runs_in_training_and_evaluation(tiny_bert, sentiment_files):
    seen, _ = fit(tiny_bert, sentiment_files, "bf16-mixed", attn_implementation="sdpa")
    assert seen == {("train", "sdpa"), ("sanity_check", "sdpa"), ("validate", "sdpa")}
    seen, _ = fit(tiny_bert, sentiment_files, "32-true", attn_implementation="eager")
    assert seen == {("train", "eager"), ("sanity_check", "eager"), ("validate", "eager")}


def test_an_unknown_kernel_is_refused_by_its_setting_before_training(tiny_bert, sentiment_files):
    with pytest.raises(FtlitError, match=r"with --model.attn_implementation bogus: .*not supported"):
        fit(tiny_bert, sentiment_files, "32-true", attn_implementation="bogus")
