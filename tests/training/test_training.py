"""The optimizer, schedule and clipping that every task module shares, observed on a real Trainer run."""

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from ftlit.tasks.classification.contract import ClassificationContract
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.tasks.classification.presets import get_preset


class GradNormAfterClipping(SequenceClassificationModule):
    def on_before_optimizer_step(self, optimizer):
        super().on_before_optimizer_step(optimizer)
        norms = [p.grad.norm() for p in self.parameters() if p.grad is not None]
        self.clipped_norms = [*getattr(self, "clipped_norms", []), torch.stack(norms).norm().item()]


class RecordLearningRate(Callback):
    def __init__(self):
        self.rates = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture(scope="module")
def short_run(tiny_bert, sentiment_files):
    module = GradNormAfterClipping(tiny_bert, learning_rate=1e-3, warmup_steps=2, max_grad_norm=0.01)
    dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    rates = RecordLearningRate()
    trainer = Trainer(
        max_steps=5, limit_val_batches=0, logger=False, enable_checkpointing=False, callbacks=[rates],
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return trainer, module, rates.rates


def test_no_weight_decay_on_biases_and_layernorm_weights(short_run):
    trainer, module, _ = short_run
    decayed, not_decayed = trainer.optimizers[0].param_groups
    names = {id(p): name for name, p in module.model.named_parameters()}
    assert decayed["weight_decay"] == 0.01 and not_decayed["weight_decay"] == 0.0
    no_decay_names = {names[id(p)] for p in not_decayed["params"]}
    assert no_decay_names == {n for n in names.values() if n.endswith("bias") or "LayerNorm.weight" in n}
    assert "bert.embeddings.word_embeddings.weight" in {names[id(p)] for p in decayed["params"]}


def test_learning_rate_warms_up_linearly_then_decays_to_zero(short_run):
    _, _, rates = short_run
    expected = [1e-3 * step / 2 for step in range(2)] + [1e-3 * (5 - step) / 3 for step in range(2, 5)]
    assert rates == pytest.approx(expected)


def test_gradients_are_clipped_to_max_grad_norm(short_run):
    _, module, _ = short_run
    assert len(module.clipped_norms) == 5
    assert max(module.clipped_norms) == pytest.approx(0.01, rel=1e-3)


def test_best_checkpoint_by_the_task_metric_a_last_one_to_resume_and_optional_early_stopping(tiny_bert):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    module = SequenceClassificationModule(tiny_bert, early_stopping_patience=2)
    trainer = Trainer(logger=False)
    trainer.state.fn = TrainerFn.FITTING  # (evaluation gets the contract handover only)
    module.trainer = trainer
    callbacks = module.configure_callbacks()
    # the task metric is known once the contract is in: CoLA's is Matthews' correlation
    module.accept_contract(ClassificationContract(128, ("validation",), {}, get_preset("cola"), ("no", "yes")))
    for callback in callbacks:
        callback.setup(trainer, module, "fit")
    best, last = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert best.monitor == "val/matthews_corrcoef" and best.mode == "max" and not best.save_last
    assert last.save_last and last.save_top_k == 0 and last._every_n_train_steps == 500
    (stopping,) = [c for c in callbacks if isinstance(c, EarlyStopping)]
    assert stopping.monitor == "val/matthews_corrcoef" and stopping.patience == 2


def test_gradient_accumulation_halves_the_optimizer_steps_and_the_schedule_follows(tiny_bert, sentiment_files):
    module = SequenceClassificationModule(tiny_bert, learning_rate=1e-3, warmup_ratio=0.25)
    dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"],
                                  batch_size=16)  # fmt: skip
    rates = RecordLearningRate()
    trainer = Trainer(max_epochs=1, limit_train_batches=5, accumulate_grad_batches=2, limit_val_batches=0,
                      logger=False, enable_checkpointing=False, callbacks=[rates], enable_progress_bar=False,
                      enable_model_summary=False)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == trainer.estimated_stepping_batches == 3  # 5 batches: the last one steps alone
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == trainer.global_step and scheduler.get_last_lr()[0] == pytest.approx(0.0)


def test_no_checkpoints_when_the_trainer_has_checkpointing_off(tiny_bert, sentiment_files, tmp_path):
    module = SequenceClassificationModule(tiny_bert)
    dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    trainer = Trainer(max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                      default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert trainer.checkpoint_callback is None and not list(tmp_path.rglob("*.ckpt"))


def test_evaluating_after_fit_keeps_one_set_of_checkpoint_callbacks(tiny_bert, sentiment_files, tmp_path):
    # (with a second set, processes of a multi-device run could keep different ones and wait on each other)
    from lightning.pytorch.callbacks import ModelCheckpoint

    module = SequenceClassificationModule(tiny_bert)
    dm = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    trainer = Trainer(max_steps=2, logger=False, default_root_dir=tmp_path, enable_progress_bar=False,
                      enable_model_summary=False)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    fitted = [callback for callback in trainer.callbacks if isinstance(callback, ModelCheckpoint)]
    trainer.validate(module, datamodule=dm, verbose=False)
    assert [callback for callback in trainer.callbacks if isinstance(callback, ModelCheckpoint)] == fitted
    assert sorted(type(callback).__name__ for callback in fitted) == ["BestCheckpoint", "ModelCheckpoint"]
