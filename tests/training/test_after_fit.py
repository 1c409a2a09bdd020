"""What fit does once training is over: the best weights scored for results.json and exported — evaluated again
only where fit's last validation did not already score exactly those weights."""

import json

import pytest
import torch
from lightning import Trainer
from safetensors.torch import load_file

from conftest import TASKS
from ftlit.cli import main
from ftlit.training.checkpoints import live_weights_were_scored


@pytest.mark.parametrize(
    ("last_validation_step", "final_step", "best_step", "scored"),
    [
        (30, 30, 30, True),  # the last validation made the best checkpoint, at the end
        (30, 30, -1, True),  # no best checkpoint (checkpointing off): the final weights, validated at the end
        (30, 30, 15, False),  # the best checkpoint is an earlier one: its weights must be loaded and scored
        (30, 30, None, False),  # a resumed run: the best checkpoint's step is unknown
        (15, 30, -1, False),  # trained on after the last validation
        (None, 30, -1, False),  # never validated
    ],
)
def test_fit_evaluates_again_unless_its_last_validation_scored_the_exported_weights(
    last_validation_step, final_step, best_step, scored
):
    assert live_weights_were_scored(last_validation_step, final_step, best_step) is scored


@pytest.fixture
def validations(monkeypatch) -> list:
    """The ckpt_path of each Trainer.validate call (the CLI's evaluation after fit), calling through."""
    calls = []
    validate = Trainer.validate

    def recording(self, *args, **kwargs):
        calls.append(kwargs.get("ckpt_path"))
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "validate", recording)
    return calls


def fit(model: str, files: dict, output_dir, *extra: str) -> dict:
    main(["fit", *TASKS["classification"], "--model.model_name_or_path", model,
          "--data.train_file", str(files["train"]), "--data.validation_file", str(files["dev"]),
          "--data.batch_size", "16", "--model.learning_rate", "3e-3", "--trainer.enable_progress_bar", "false",
          "--trainer.limit_train_batches", "3",  # epochs of 3 steps
          "--trainer.default_root_dir", str(output_dir), "--output_dir", str(output_dir), *extra])  # fmt: skip
    return json.loads((output_dir / "results.json").read_text())


def exported_weights(output_dir) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "export" / "model.safetensors")


def best_checkpoint_weights(results: dict) -> dict[str, torch.Tensor]:
    state = torch.load(results["train"]["best_checkpoint"], weights_only=True)["state_dict"]
    return {name.removeprefix("model."): tensor for name, tensor in state.items() if name.startswith("model.")}


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_best_checkpoint_made_by_the_last_validation_is_exported_without_evaluating_it_again(
    tiny_bert, sentiment_files, tmp_path, validations
):
    results = fit(tiny_bert, sentiment_files, tmp_path, "--trainer.max_epochs", "1")
    assert validations == []
    (last,) = results["train"]["history"]
    assert results["metrics"]["accuracy"] == pytest.approx(last["val/accuracy"], abs=1e-6)
    assert results["eval"]["num_examples"] == 120  # the result files come from that validation
    exported, best = exported_weights(tmp_path), best_checkpoint_weights(results)
    assert all(torch.equal(exported[name], best[name]) for name in exported)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_weights_trained_on_after_the_last_validation_are_replaced_by_the_best_checkpoint_scored_again(
    tiny_bert, sentiment_files, tmp_path, validations
):
    # epochs of 3 steps: stopped in the middle of the second epoch, after one validation (step 3)
    results = fit(tiny_bert, sentiment_files, tmp_path, "--trainer.max_epochs", "2", "--trainer.max_steps", "5")
    assert validations == [results["train"]["best_checkpoint"]]
    assert [entry["step"] for entry in results["train"]["history"]] == [3]
    assert "step3" in results["train"]["best_checkpoint"]
    exported, best = exported_weights(tmp_path), best_checkpoint_weights(results)
    assert all(torch.equal(exported[name], best[name]) for name in exported)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_with_checkpointing_off_the_final_weights_validated_at_the_end_are_not_evaluated_again(
    tiny_bert, sentiment_files, tmp_path, validations
):
    results = fit(tiny_bert, sentiment_files, tmp_path, "--trainer.max_epochs", "1",
                  "--trainer.enable_checkpointing", "false")  # fmt: skip
    assert validations == [] and results["train"]["best_checkpoint"] is None
    assert results["metrics"]["accuracy"] == pytest.approx(results["train"]["history"][-1]["val/accuracy"], abs=1e-6)


@pytest.mark.slow  # two CLI runs of 2 epochs
def test_best_weights_keeps_the_best_checkpoints_weights_alone_and_exports_them(
    tiny_bert, sentiment_files, tmp_path, validations
):
    results = fit(tiny_bert, sentiment_files, tmp_path, "--trainer.max_epochs", "2", "--model.checkpoints",
                  "best_weights")  # fmt: skip
    kept = sorted(path.name for path in (tmp_path / "lightning_logs").rglob("*.ckpt"))
    assert len(kept) == 1 and kept[0].startswith("best-")  # no last.ckpt
    checkpoint = torch.load(results["train"]["best_checkpoint"], weights_only=True)
    assert "optimizer_states" not in checkpoint and "state_dict" in checkpoint
    exported, best = exported_weights(tmp_path), best_checkpoint_weights(results)
    assert all(torch.equal(exported[name], best[name]) for name in exported)
    resumable = fit(tiny_bert, sentiment_files, tmp_path / "resumable", "--trainer.max_epochs", "2")
    assert "optimizer_states" in torch.load(resumable["train"]["best_checkpoint"], weights_only=True)
    assert any((tmp_path / "resumable" / "lightning_logs").rglob("last.ckpt"))
