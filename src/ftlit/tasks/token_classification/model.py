"""TokenClassificationModule: a tag per subword → a tag per word (from its centre-most window) → entity-level
precision/recall/F1 exactly as conlleval computes them."""

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torchmetrics.classification import MulticlassConfusionMatrix
from transformers import AutoModelForTokenClassification

from ftlit.contract import EvalStage
from ftlit.tasks.token_classification.contract import TokenContract, TokenEvalSet
from ftlit.tasks.token_classification.decode import entity_records
from ftlit.tasks.token_classification.metrics import entity_scores
from ftlit.tasks.token_classification.tags import OUTSIDE, split_tag
from ftlit.training.evaluation import EvalResult
from ftlit.training.module import TransformerModule

UNSEEN = -1  # the prediction of a window that was never evaluated (e.g. under limit_val_batches)


class TokenClassificationModule(TransformerModule):
    """Fine-tunes ``AutoModelForTokenClassification`` for named-entity recognition, scored by entity-level micro F1
    (the checkpoint monitor) as conlleval and seqeval compute it. Arguments: see TransformerModule."""

    auto_class = AutoModelForTokenClassification
    task_type = "TOKEN_CLS"
    task_metric = "f1"
    metric_names = ("f1", "precision", "recall", "accuracy", "loss")
    contract: TokenContract

    def __init__(self, model_name_or_path: str, learning_rate: float = 5e-5, **kwargs) -> None:
        super().__init__(model_name_or_path, learning_rate=learning_rate, **kwargs)

    def head_settings(self) -> dict:
        labels = self.contract.label_names
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }

    def inference_settings(self) -> dict:
        return {"max_length": self.contract.max_length, "doc_stride": self.contract.doc_stride}

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output = self.model(**batch)
        if "labels" in batch:
            self.log_eval_loss(stage, split, output.loss)
        scores, predictions = output.logits.float().softmax(-1).max(-1)
        padding = (0, self.contract.max_length - predictions.shape[1])  # batches are padded to their own lengths
        return {
            "predictions": torch.nn.functional.pad(predictions, padding, value=UNSEEN),
            "scores": torch.nn.functional.pad(scores, padding),
        }

    def _words(self, split: str, feature_index: torch.Tensor, outputs: dict) -> tuple[list, list, list[int]]:
        """Per sentence whose every window was evaluated: its words' tags and scores; and those sentences."""
        eval_set: TokenEvalSet = self.contract.eval_sets[split]
        shape = (eval_set.num_features, self.contract.max_length)
        predictions, scores = np.full(shape, UNSEEN), np.zeros(shape, dtype=np.float32)
        predictions[feature_index.cpu().numpy()] = outputs["predictions"].cpu().numpy()
        scores[feature_index.cpu().numpy()] = outputs["scores"].cpu().numpy()
        names = self.contract.label_names
        tags, word_scores, complete = [], [], []
        for i, (ids, probabilities) in enumerate(
            zip(eval_set.readings.read(predictions), eval_set.readings.read(scores))
        ):
            if (ids == UNSEEN).any():
                continue
            tags.append([names[k] for k in ids])
            word_scores.append(probabilities.tolist())
            complete.append(i)
        return tags, word_scores, complete

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        eval_set: TokenEvalSet = self.contract.eval_sets[split]
        tags, scores, complete = self._words(split, feature_index, outputs)
        gold = [eval_set.tags[i] for i in complete]
        metrics, per_type = entity_scores(gold, tags)
        details = {"gold": gold, "predicted": tags, "scores": scores, "sentences": complete}
        return EvalResult(
            split, metrics, len(complete), eval_set.num_features, report={"per_type": per_type}, details=details
        )

    def figures(self, result: EvalResult, title: str) -> dict[str, Figure]:
        """A confusion matrix of the words' entity types (O included)."""
        types = [OUTSIDE, *sorted({split_tag(name)[1] for name in self.contract.label_names} - {""})]
        if len(types) > 50:  # unreadable, and slow to draw
            rank_zero_info(f"No confusion matrix figure: {len(types)} entity types (at most 50 drawn).")
            return {}
        index = {kind: i for i, kind in enumerate(types)}

        def type_ids(sentences: list[list[str]]) -> torch.Tensor:
            return torch.tensor([index.get(split_tag(tag)[1] or OUTSIDE, 0) for tags in sentences for tag in tags])

        confusion = MulticlassConfusionMatrix(len(types))
        figure, _ = confusion.plot(
            val=confusion(type_ids(result.details["predicted"]), type_ids(result.details["gold"])), labels=types
        )
        return {"entity_type_confusion": figure}

    def result_files(self, result: EvalResult) -> dict[str, object]:
        """``predictions.json``: per evaluated sentence its words, gold tags and predicted tags."""
        eval_set: TokenEvalSet = self.contract.eval_sets[result.split]
        details = result.details
        return {
            "predictions.json": [
                {"words": eval_set.words[i], "tags": gold, "predicted": predicted}
                for i, gold, predicted in zip(details["sentences"], details["gold"], details["predicted"])
            ]
        }

    # ---------------------------------------------------------------------------------------------- predict
    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """One record per input sentence: its words with their tags and scores, and its entities."""
        eval_set: TokenEvalSet = self.contract.eval_sets[split]
        tags, scores, complete = self._words(split, feature_index, outputs)
        return [
            {
                "text": eval_set.texts[i],
                "words": eval_set.words[i],
                "tags": sentence_tags,
                "scores": [round(s, 6) for s in sentence_scores],
                "entities": entity_records(sentence_tags, sentence_scores, eval_set.texts[i], eval_set.char_spans[i]),
            }
            for i, sentence_tags, sentence_scores in zip(complete, tags, scores)
        ]
