"""SequenceClassificationModule on its own: evaluated with a contract built by hand, no data module involved."""

import numpy as np
import pytest
import torch
from lightning import Trainer
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader

from conftest import with_trained_head
from ftlit.tasks.classification.contract import ClassificationContract, DocumentsEvalSet
from ftlit.tasks.classification.figures import MAX_CONFUSION_LABELS
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.tasks.classification.presets import get_preset
from ftlit.training.evaluation import EvalResult

# Four features of three documents: the third document was cut into two windows
FEATURES = ["a wonderful film", "dreadful", "the plot was long and", "boring and the actor was awful"]
DOCUMENT_INDEX = [0, 1, 2, 2]
LABELS = [1, 0, 0, 0]  # each window carries its document's label


def contract() -> ClassificationContract:
    eval_set = DocumentsEvalSet("validation", num_examples=3, num_features=4, document_index=np.array(DOCUMENT_INDEX))
    return ClassificationContract(max_length=16, validation_splits=("validation",),
                                  eval_sets={"validation": eval_set}, spec=get_preset("custom"),
                                  label_names=("negative", "positive"))  # fmt: skip


def batch(tokenizer, features: list[int]) -> dict[str, torch.Tensor]:
    encoded = tokenizer([FEATURES[i] for i in features], padding=True, return_tensors="pt")
    return {**encoded, "labels": torch.tensor([LABELS[i] for i in features]), "feature_index": torch.tensor(features)}


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_evaluation_scores_documents_from_a_hand_built_contract(tiny_bert, tokenizer, aggregation, tmp_path):
    module = SequenceClassificationModule(with_trained_head(tiny_bert, tmp_path, 2), window_aggregation=aggregation)
    module.accept_contract(contract())
    batches = [batch(tokenizer, [3, 0]), batch(tokenizer, [2, 1])]  # any order: outputs are matched by index
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    scores = trainer.validate(module, dataloaders=DataLoader(batches, batch_size=None), verbose=False)[0]

    module.model.eval()  # (Lightning put it back in training mode)
    with torch.no_grad():
        logits = module.model(**tokenizer(FEATURES, padding=True, return_tensors="pt")).logits
    per_document = [logits[0], logits[1], logits[2:].mean(0) if aggregation == "mean" else logits[2:].max(0).values]
    predicted = [int(row.argmax()) for row in per_document]
    assert scores["val/accuracy"] == pytest.approx(np.mean([p == label for p, label in zip(predicted, [1, 0, 0])]))
    assert module.last_eval.num_examples == 3 and module.last_eval.num_features == 4
    torch.testing.assert_close(module.last_eval.details["logits"], torch.stack(per_document), atol=1e-5, rtol=1e-5)
    assert module.last_eval.details["labels"].tolist() == [1, 0, 0]
    assert module.model.config.id2label == {0: "negative", 1: "positive"}  # the head follows the contract


def multi_label_module(tiny_bert, folder, tokenizer, gold: list[list[float]], threshold: float):
    """A multi-label module over labels a, b, c (window logits aggregated by max) with its contract, and a loader of
    the four features' batches, every window carrying its document's ``gold`` labels."""
    eval_set = DocumentsEvalSet("validation", num_examples=3, num_features=4, document_index=np.array(DOCUMENT_INDEX))
    model = with_trained_head(tiny_bert, folder, 3)
    module = SequenceClassificationModule(model, window_aggregation="max", threshold=threshold)
    module.accept_contract(ClassificationContract(16, ("validation",), {"validation": eval_set}, get_preset("custom"),
                                                  ("a", "b", "c"), "multi_label"))  # fmt: skip
    batches = [{**tokenizer([FEATURES[i] for i in features], padding=True, return_tensors="pt"),
                "labels": torch.tensor([gold[DOCUMENT_INDEX[i]] for i in features]),
                "feature_index": torch.tensor(features)} for features in ([3, 0], [2, 1])]  # fmt: skip
    return module, DataLoader(batches, batch_size=None)


def test_multi_label_windows_are_scored_per_document_from_their_aggregated_logits(tiny_bert, tokenizer, tmp_path):
    gold = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]  # per document; every window carries its document's
    module, batches = multi_label_module(tiny_bert, tmp_path, tokenizer, gold, threshold=0.45)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    scores = trainer.validate(module, dataloaders=batches, verbose=False)[0]

    module.model.eval()
    with torch.no_grad():
        logits = module.model(**tokenizer(FEATURES, padding=True, return_tensors="pt")).logits
    per_document = torch.stack([logits[0], logits[1], logits[2:].max(0).values])
    predicted = (per_document.sigmoid() > 0.45).long()
    exact = np.mean([row == truth for row, truth in zip(predicted.tolist(), [[1, 0, 1], [0, 1, 0], [1, 1, 0]])])
    assert scores["val/subset_accuracy"] == pytest.approx(exact)
    assert module.last_eval.details["labels"].tolist() == gold
    assert module.model.config.thresholds == [0.45] * 3 and module.model.config.problem_type == (
        "multi_label_classification")  # fmt: skip


def test_a_module_without_a_contract_says_how_to_give_it_one(tiny_bert):
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(Exception, match="has no data contract"):
        trainer.validate(SequenceClassificationModule(tiny_bert), dataloaders=DataLoader([], batch_size=None))


def test_figures_skip_the_confusion_matrix_of_a_label_space_too_large_to_draw(tiny_bert):
    labels = tuple(f"class {i}" for i in range(MAX_CONFUSION_LABELS + 1))
    module = SequenceClassificationModule(tiny_bert)
    module.accept_contract(ClassificationContract(16, ("validation",), {}, get_preset("custom"), labels))
    logits, truth = torch.randn(200, len(labels)), torch.randint(len(labels), (200,))
    result = EvalResult("validation", {}, 200, 200, details={"logits": logits, "labels": truth})
    assert set(module.figures(result, "val")) == {"reliability"}
    module.accept_contract(ClassificationContract(16, ("validation",), {}, get_preset("custom"), labels[:3]))
    small = EvalResult("validation", {}, 200, 200, details={"logits": logits[:, :3], "labels": truth % 3})
    assert set(module.figures(small, "val")) == {"reliability", "confusion_matrix"}


def test_labels_without_a_positive_example_are_named_once_and_count_as_zero(tiny_bert, tokenizer, tmp_path):
    gold = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]  # no document has label "c"
    module, batches = multi_label_module(tiny_bert, tmp_path, tokenizer, gold, threshold=0.5)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.warns(UserWarning) as caught:
        scores = trainer.validate(module, dataloaders=batches, verbose=False)[0]
        trainer.validate(module, dataloaders=batches, verbose=False)
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if "no positive example" in m] == [
        "1 of 3 labels have no positive example in validation: c. Their F1 and average precision count as 0 in "
        "macro_f1 and mean_average_precision."
    ]  # once, however often the split is evaluated; and not again in torchmetrics' words
    assert not [m for m in messages if "No positive samples found in target" in m]

    predicted = (module.last_eval.details["logits"].sigmoid() > 0.5).long().numpy()
    expected = f1_score(np.array(gold), predicted, average="macro", zero_division=0)  # c's F1 is 0 in the mean
    assert scores["val/macro_f1"] == pytest.approx(expected)
    assert module.last_eval.report["per_label"]["c"]["support"] == 0
