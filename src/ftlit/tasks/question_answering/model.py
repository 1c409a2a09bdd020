"""QuestionAnsweringModule: start/end logits of every window → answers per question → official SQuAD EM/F1."""

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering

from ftlit.contract import EvalStage
from ftlit.settings import check_range
from ftlit.tasks.question_answering.contract import QAContract, QAEvalSet
from ftlit.tasks.question_answering.decode import Answer, best_answers, candidate_answers, decode_candidates
from ftlit.tasks.question_answering.metrics import ANSWER_KINDS, has_answer, squad_evaluate
from ftlit.training.evaluation import EvalResult
from ftlit.training.module import TransformerModule

# Logit given to window positions that were never evaluated (e.g. limit_val_batches) and to padding: finite, so
# sums stay finite
_UNSEEN = -1e4


class QuestionAnsweringModule(TransformerModule):
    """Fine-tunes ``AutoModelForQuestionAnswering`` and scores it by the official SQuAD rules.

    Args:
        n_best: start and end candidates per window, and answers kept per question (≥ 1).
        max_answer_length: longest answer, in tokens (≥ 1).
        null_score_diff_threshold: SQuAD v2.0: answer "" when the null score beats the best span by more than this
            (any number).
    """

    auto_class = AutoModelForQuestionAnswering
    task_type = "QUESTION_ANS"
    head_modules = ("qa_outputs",)
    task_metric = "f1"
    contract: QAContract

    def __init__(
        self,
        model_name_or_path: str,
        learning_rate: float = 3e-5,
        warmup_ratio: float = 0.1,
        n_best: int = 20,
        max_answer_length: int = 30,
        null_score_diff_threshold: float = 0.0,
        **kwargs,
    ) -> None:
        """Other arguments: see TransformerModule."""
        check_range("--model.n_best", n_best, minimum=1)
        check_range("--model.max_answer_length", max_answer_length, minimum=1)
        super().__init__(model_name_or_path, learning_rate=learning_rate, warmup_ratio=warmup_ratio, **kwargs)

    @property
    def metric_names(self) -> tuple[str, ...]:
        validation = self.contract.eval_sets.get("validation")
        if validation is None:  # nothing validated at this stage (test, predict): any score a validation could give
            kinds = {True, False}
        elif not self.contract.version_2:
            return ("exact_match", "f1")
        else:  # HasAns_/NoAns_ scores exist only for the kinds of question the validation data holds
            kinds = {has_answer(answers) for answers in validation.answers}
        subsets = [
            f"{name}_{score}" for name, answerable in ANSWER_KINDS if answerable in kinds for score in ("exact", "f1")
        ]
        return ("exact_match", "f1", *subsets, "best_exact", "best_f1")

    def inference_settings(self) -> dict:
        contract = self.contract
        return {
            "max_length": contract.max_length,
            "doc_stride": contract.doc_stride,
            "max_query_length": contract.max_query_length,
            "n_best": self.hparams.n_best,
            "max_answer_length": self.hparams.max_answer_length,
            "version_2_with_negative": contract.version_2,
            "null_score_diff_threshold": self.hparams.null_score_diff_threshold,
        }

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # batches are padded to their own lengths (dynamic padding): padded to max_length, they stack
        output = self.model(**batch)
        padding = (0, self.contract.max_length - batch["input_ids"].shape[1])
        return {
            "start_logits": torch.nn.functional.pad(output.start_logits.float(), padding, value=_UNSEEN),
            "end_logits": torch.nn.functional.pad(output.end_logits.float(), padding, value=_UNSEEN),
        }

    def _decode(self, split: str, feature_index: torch.Tensor, outputs: dict) -> tuple:
        """Candidates and the best answer (with its null-score difference) of every question of ``split``."""
        eval_set: QAEvalSet = self.contract.eval_sets[split]
        windows = eval_set.windows
        length = windows.offsets.shape[1]
        logits = []
        for name in ("start_logits", "end_logits"):
            every = torch.full((eval_set.num_features, self.contract.max_length), _UNSEEN, device=feature_index.device)
            every[feature_index] = outputs[name]  # windows never evaluated keep a very low logit
            logits.append(every.cpu().numpy()[:, :length])
        candidates = decode_candidates(
            *logits,
            windows,
            eval_set.num_examples,
            n_best=self.hparams.n_best,
            max_answer_length=self.hparams.max_answer_length,
        )
        answers, null_diffs = best_answers(
            candidates, windows, eval_set.contexts, self.contract.version_2, self.hparams.null_score_diff_threshold
        )
        return candidates, answers, null_diffs

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        eval_set: QAEvalSet = self.contract.eval_sets[split]
        candidates, answers, null_diffs = self._decode(split, feature_index, outputs)
        version_2 = self.contract.version_2
        predictions = {qid: answer.text for qid, answer in zip(eval_set.ids, answers)}
        span_predictions = null = None
        if version_2:  # the best non-null span of each question and its null-score difference: the threshold search
            spans, _ = best_answers(candidates, eval_set.windows, eval_set.contexts, version_2=False)
            span_predictions = {qid: span.text for qid, span in zip(eval_set.ids, spans)}
            null = dict(zip(eval_set.ids, null_diffs.tolist()))
        scores = squad_evaluate(predictions, eval_set.references, version_2, null, span_predictions)
        metrics = {name: value for name, value in scores.items() if not name.endswith("total")}  # counts, not scores
        return EvalResult(
            split,
            metrics,
            eval_set.num_examples,
            eval_set.num_features,
            details={"candidates": candidates, "answers": answers, "null_diffs": null_diffs},
        )

    def result_files(self, result: EvalResult) -> dict[str, object]:
        """``predictions.json`` in the official ``{id: answer}`` format, ``nbest_predictions.json`` with
        probabilities (softmax over each question's candidates, the null answer among them for v2), and for v2
        ``null_odds.json`` (null score − best span score, the official script's ``--na-prob-file``)."""
        eval_set: QAEvalSet = self.contract.eval_sets[result.split]
        candidates, answers = result.details["candidates"], result.details["answers"]
        version_2 = self.contract.version_2
        nbest = {}
        for i, qid in enumerate(eval_set.ids):
            entries = [
                {"text": a.text, "start": a.start, "end": a.end, "score": a.score}
                for a in candidate_answers(candidates, eval_set.windows, eval_set.contexts, i)
            ]
            if version_2:
                entries.append({"text": "", "start": -1, "end": -1, "score": float(candidates.null_scores[i])})
                entries.sort(key=lambda entry: -entry["score"])
            if entries:
                scores = np.array([entry["score"] for entry in entries])
                probabilities = np.exp(scores - scores.max())
                for entry, probability in zip(entries, probabilities / probabilities.sum()):
                    entry["probability"] = float(probability)
            nbest[qid] = entries
        files = {
            "predictions.json": {qid: answer.text for qid, answer in zip(eval_set.ids, answers)},
            "nbest_predictions.json": nbest,
        }
        if version_2:
            files["null_odds.json"] = dict(zip(eval_set.ids, result.details["null_diffs"].tolist()))
        return files

    # ---------------------------------------------------------------------------------------------- predict
    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """One record per question of the predict file: id, answer, offsets and score."""
        eval_set: QAEvalSet = self.contract.eval_sets[split]
        answers: list[Answer] = self._decode(split, feature_index, outputs)[1]
        return [
            {"id": qid, "question": question, "answer": a.text, "start": a.start, "end": a.end, "score": a.score}
            for qid, question, a in zip(eval_set.ids, eval_set.questions, answers)
        ]
