"""Evaluation written once: per-feature outputs collected in any batch order come back in feature order."""

import pytest
import torch
from lightning import LightningModule, Trainer

from ftlit.training.evaluation import EvalResult, FeatureOutputs


@pytest.fixture
def module() -> LightningModule:
    module = LightningModule()
    module.trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)  # one device
    return module


def test_outputs_collected_in_any_order_come_back_sorted_by_feature(module):
    outputs = FeatureOutputs()
    logits = torch.tensor([[4.0, 0.0], [1.0, 0.0]])
    outputs.add(torch.tensor([4, 1]), {"logits": logits, "labels": torch.tensor([1, 0])})
    outputs.add(torch.tensor([2]), {"logits": torch.tensor([[2.0, 0.0]]), "labels": torch.tensor([1])})
    index, gathered = outputs.gather(module)
    assert index.tolist() == [1, 2, 4]  # feature 0 and 3 were never evaluated (limit_val_batches)
    assert gathered["logits"][:, 0].tolist() == [1.0, 2.0, 4.0]
    assert gathered["labels"].tolist() == [0, 1, 1]
    assert outputs.gather(module)[0].tolist() == []  # gathering empties the collection


def test_the_eval_section_reports_size_and_time_per_example():
    result = EvalResult("validation", {"f1": 90.0}, num_examples=200, num_features=250, eval_time_s=1.23456)
    assert result.summary() == {"split": "validation", "num_examples": 200, "num_features": 250,
                                "eval_time_s": 1.235, "ms_per_example": 6.173}  # fmt: skip
