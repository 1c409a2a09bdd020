"""LoRA: what trains, what stays frozen, what checkpoints hold, and that exports behave like the adapted model."""

import json

import pytest
import torch
from lightning import Callback, Trainer
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, DistilBertConfig, DistilBertModel

from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.model import QuestionAnsweringModule
from ftlit.training.lora import LoraSettings, target_modules


def test_attention_projections_are_found_for_each_architecture(tiny_bert):
    bert = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    distilbert = DistilBertModel(DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32))
    assert target_modules(bert, None) == ["query", "key", "value"]
    assert target_modules(distilbert, None) == ["q_lin", "k_lin", "v_lin"]
    assert target_modules(bert, ["query", "dense"]) == ["query", "dense"]
    with pytest.raises(FtlitError, match=r"\['q_lin'\] do not exist in BertForSequenceClassification.*'key', 'query'"):
        target_modules(bert, ["q_lin"])


class Snapshot(Callback):
    """Parameters as they are when training starts."""

    def on_train_start(self, trainer, pl_module):
        self.weights = {name: p.detach().clone() for name, p in pl_module.model.named_parameters()}


def short_fit(module, datamodule, **trainer_kwargs):
    snapshot = Snapshot()
    trainer = Trainer(max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False, callbacks=[snapshot],
                      enable_progress_bar=False, enable_model_summary=False, **trainer_kwargs)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    return snapshot.weights


@pytest.fixture(scope="module")
def lora_classifier(tiny_bert, sentiment_files):
    module = SequenceClassificationModule(tiny_bert, learning_rate=1e-2, peft=LoraSettings(r=4, alpha=8))
    dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    before = short_fit(module, dm)
    return module, dm, before


def test_trainable_parameters_are_the_lora_formula_plus_the_head(lora_classifier):
    module, _, _ = lora_classifier
    hidden, layers, r, labels = 32, 2, 4, 2
    lora = layers * 3 * r * (hidden + hidden)  # A (r × in) and B (out × r) on query, key, value
    head = hidden * labels + labels
    assert module.describe_model()["trainable_params"] == lora + head == 1602


def test_head_and_adapters_train_while_the_base_stays_frozen(lora_classifier):
    module, _, before = lora_classifier
    after = dict(module.model.named_parameters())
    changed = {name for name in before if not torch.equal(before[name], after[name].detach())}
    heads = {n for n in changed if "modules_to_save" in n}
    assert heads == {n for n in before if "modules_to_save" in n}  # the fresh head is not left at random weights
    assert {n for n in changed if "lora_B" in n} == {n for n in before if "lora_B" in n}
    assert changed == {n for n, p in after.items() if p.requires_grad}  # and nothing frozen moved


def test_merged_export_gives_the_adapted_model_logits(lora_classifier, tmp_path, tokenizer):
    module, dm, _ = lora_classifier
    module.export(tmp_path / "merged", dm.tokenizer)
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    batch = tokenizer(["a wonderful film", "the plot is dreadful"], padding=True, return_tensors="pt")
    module.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, module.model(**batch).logits, atol=1e-5, rtol=1e-4)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["id2label"] == {"0": "negative",
                                                                                         "1": "positive"}  # fmt: skip


def test_unmerged_export_is_an_adapter_folder_for_peft(lora_classifier, tmp_path, tiny_bert, tokenizer):
    module, dm, _ = lora_classifier
    module.lora.merge = False
    try:
        module.export(tmp_path / "adapter", dm.tokenizer)
    finally:
        module.lora.merge = True
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    batch = tokenizer(["superb acting"], return_tensors="pt")
    module.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, module.model(**batch).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_lora_checkpoints_are_small_and_resume(tiny_bert, sentiment_files, tmp_path):
    def fit(epochs: int, *extra: str) -> dict:
        main(["fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
              "--model.peft.r", "4", "--model.learning_rate", "1e-2", "--data", "ftlit.ClassificationDataModule",
              "--data.train_file", str(sentiment_files["train"]), "--data.validation_file", str(sentiment_files["dev"]),
              "--data.text_fields", "[text]", "--trainer.max_epochs", str(epochs), "--trainer.limit_train_batches", "2",
              "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path), "--output_dir",
              str(tmp_path), *extra])  # fmt: skip
        return json.loads((tmp_path / "results.json").read_text())

    first = fit(1)
    last = next(tmp_path.glob("lightning_logs/version_0/checkpoints/last.ckpt"))
    checkpoint = torch.load(last, weights_only=True)
    assert set(checkpoint["state_dict"]) == {f"model.{n}" for n in (
        "base_model.model.classifier.modules_to_save.default.weight",
        "base_model.model.classifier.modules_to_save.default.bias",
    )} | {k for k in checkpoint["state_dict"] if "lora_" in k}  # fmt: skip
    assert checkpoint["optimizer_states"] and checkpoint["lr_schedulers"]  # resumable
    full_weights = 4 * first["model"]["total_params"]  # bytes of a full fp32 state dict
    assert last.stat().st_size < 0.05 * full_weights
    steps_per_epoch = checkpoint["global_step"]
    fit(2, "--ckpt_path", str(last), "--overwrite", "true")  # one more epoch, continuing from the first
    resumed = torch.load(next(tmp_path.glob("lightning_logs/version_1/checkpoints/last.ckpt")), weights_only=True)
    assert resumed["global_step"] == 2 * steps_per_epoch and resumed["epoch"] == 2  # saved at the end of epoch 2


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4)])
@pytest.mark.parametrize("task", ["classification", "qa"])
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_gradient_checkpointing_trains_with_and_without_lora(tiny_bert, sentiment_files, squad_files, lora, task):
    if task == "classification":
        module = SequenceClassificationModule(tiny_bert, learning_rate=1e-2, peft=lora, gradient_checkpointing=True)
        dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    else:
        module = QuestionAnsweringModule(tiny_bert, learning_rate=1e-2, peft=lora, gradient_checkpointing=True)
        dm = SquadDataModule(tiny_bert, dataset=None, train_file=str(squad_files["train"]), max_length=64,
                             doc_stride=16, max_query_length=16)  # fmt: skip
    before = short_fit(module, dm)
    base = module.model.get_base_model() if lora else module.model
    assert base.is_gradient_checkpointing
    after = dict(module.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before if after[n].requires_grad)
    assert all(torch.isfinite(p).all() for p in after.values())


def test_qlora_without_cuda_stops_before_any_work(tiny_bert):
    with pytest.raises(FtlitError, match="quantization 4bit \\(QLoRA\\) needs a CUDA GPU"):
        QuestionAnsweringModule(tiny_bert, peft=LoraSettings(), quantization="4bit")


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_recipe_r2_counts_221184_lora_parameters_on_distilbert():
    from peft import TaskType
    from transformers import DistilBertForQuestionAnswering

    from ftlit.training.lora import apply_lora

    model = apply_lora(DistilBertForQuestionAnswering(DistilBertConfig()), LoraSettings(r=8, alpha=32),
                       TaskType.QUESTION_ANS, QuestionAnsweringModule.head_modules)  # fmt: skip
    trainable = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert sum(n for name, n in trainable.items() if "lora_" in name) == 221_184
    assert sum(n for name, n in trainable.items() if "qa_outputs" in name) == 768 * 2 + 2
