"""QuestionAnsweringModule: start/end logits of every window → answers per question → official SQuAD EM/F1."""

import time

import numpy as np
import torch
from peft import TaskType
from transformers import AutoModelForQuestionAnswering, PreTrainedModel

from ftlit.models.base import TransformerModule
from ftlit.qa.decode import Candidates, best_answers, candidate_answers, decode_candidates
from ftlit.qa.metrics import squad_evaluate

# Logit given to window positions that were never evaluated (e.g. limit_val_batches): finite, so sums stay finite
_UNSEEN = -1e4


def _pad_and_stack(logits: list[torch.Tensor], length: int) -> torch.Tensor:
    """Batches of (B, T) logits with different T → one (N, length) tensor."""
    return torch.cat([torch.nn.functional.pad(t, (0, length - t.shape[1]), value=_UNSEEN) for t in logits])


class QuestionAnsweringModule(TransformerModule):
    """Fine-tunes ``AutoModelForQuestionAnswering`` and scores it by the official SQuAD rules.

    Args:
        n_best: start and end candidates per window, and answers kept per question.
        max_answer_length: longest answer, in tokens.
        null_score_diff_threshold: SQuAD v2.0: answer "" when the null score beats the best span by more than this.
    """

    monitor = "f1"
    task_type = TaskType.QUESTION_ANS

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
        super().__init__(model_name_or_path, learning_rate=learning_rate, warmup_ratio=warmup_ratio, **kwargs)
        self._logits: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._last_eval: dict | None = None

    def build_model(self) -> PreTrainedModel:
        return self.load_model(AutoModelForQuestionAnswering)

    # ---------------------------------------------------------------------------------------------- evaluation
    def _collect(self, batch: dict[str, torch.Tensor]) -> None:
        feature_index = batch.pop("feature_index")
        output = self.model(**batch)
        self._logits.append((feature_index, output.start_logits.float(), output.end_logits.float()))

    def _gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rows of ``tensor`` from every device, concatenated; devices may hold different numbers of rows."""
        if self.trainer.world_size == 1:
            return tensor
        sizes = self.all_gather(torch.tensor(len(tensor), device=self.device)).flatten().tolist()
        padding = [0, 0] * (tensor.ndim - 1) + [0, max(sizes) - len(tensor)]
        gathered = self.all_gather(torch.nn.functional.pad(tensor, padding))
        return torch.cat([gathered[rank, :size] for rank, size in enumerate(sizes)])

    def _gathered_logits(self, num_windows: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Logits of every window in window order, gathered from all devices.

        Batches are padded to different lengths (dynamic padding), so each is padded to ``length`` first. Every
        window is evaluated on exactly one device (the data module's unrepeated sampler); windows never evaluated
        (``limit_val_batches``) keep a very low logit.
        """
        index = torch.cat([i for i, _, _ in self._logits]) if self._logits else torch.empty(0, dtype=torch.long)
        empty = torch.empty(0, length)
        local_starts = _pad_and_stack([t for _, t, _ in self._logits], length) if self._logits else empty
        local_ends = _pad_and_stack([t for _, _, t in self._logits], length) if self._logits else empty
        self._logits.clear()
        index = self._gather_rows(index.to(self.device))
        local_starts = self._gather_rows(local_starts.to(self.device))
        local_ends = self._gather_rows(local_ends.to(self.device))
        starts = torch.full((num_windows, length), _UNSEEN, device=self.device)
        ends = torch.full((num_windows, length), _UNSEEN, device=self.device)
        starts[index], ends[index] = local_starts, local_ends
        return starts.cpu().numpy(), ends.cpu().numpy()

    def _decode(self, split: str) -> tuple[Candidates, list, np.ndarray] | None:
        """Answers of every question of ``split``, on the first device (None on the others)."""
        eval_set = self.trainer.datamodule.eval_sets[split]
        windows = eval_set.windows
        starts, ends = self._gathered_logits(len(windows.example_index), self.trainer.datamodule.max_length)
        if not self.trainer.is_global_zero:
            return None
        length = windows.offsets.shape[1]
        candidates = decode_candidates(
            starts[:, :length], ends[:, :length], windows, len(eval_set.ids),
            n_best=self.hparams.n_best, max_answer_length=self.hparams.max_answer_length,
        )  # fmt: skip
        answers, null_diffs = best_answers(
            candidates, windows, eval_set.contexts, self.trainer.datamodule.version_2,
            self.hparams.null_score_diff_threshold,
        )  # fmt: skip
        return candidates, answers, null_diffs

    def _eval_epoch_start(self) -> None:
        self._logits.clear()
        self._eval_started = time.perf_counter()

    def _eval_epoch_end(self, stage: str, split: str) -> None:
        if self.trainer.sanity_checking:
            self._logits.clear()
            return
        decoded = self._decode(split)  # gathers on every device; only the first one decodes
        scores = self._score(split, *decoded) if decoded else None
        scores = self.trainer.strategy.broadcast(scores, src=0)
        for name, value in scores.items():
            if not name.endswith("total"):
                # the same number on every device; sync_dist keeps Lightning's epoch-level checks satisfied
                self.log(f"{stage}/{name}", float(value), sync_dist=True)

    def _score(self, split: str, candidates: Candidates, answers: list, null_diffs: np.ndarray) -> dict:
        eval_set = self.trainer.datamodule.eval_sets[split]
        version_2 = self.trainer.datamodule.version_2
        predictions = {qid: answer.text for qid, answer in zip(eval_set.ids, answers)}
        span_predictions = null = None
        if version_2:  # the best non-null span of each question and its null-score difference: the threshold search
            spans, _ = best_answers(candidates, eval_set.windows, eval_set.contexts, version_2=False)
            span_predictions = {qid: span.text for qid, span in zip(eval_set.ids, spans)}
            null = dict(zip(eval_set.ids, null_diffs.tolist()))
        scores = squad_evaluate(predictions, eval_set.references, version_2, null, span_predictions)
        elapsed = time.perf_counter() - self._eval_started
        self._last_eval = {"split": split, "candidates": candidates, "answers": answers, "null_diffs": null_diffs,
                           "eval_time_s": elapsed}  # fmt: skip
        return scores

    def on_validation_epoch_start(self) -> None:
        self._eval_epoch_start()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val", "validation")

    def on_test_epoch_start(self) -> None:
        self._eval_epoch_start()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test", "test")

    # ---------------------------------------------------------------------------------------------- outputs
    def summary(self) -> dict:
        summary = self.parameter_counts()
        if self._last_eval is not None:
            eval_set = self.trainer.datamodule.eval_sets[self._last_eval["split"]]
            elapsed = self._last_eval["eval_time_s"]
            summary.update(
                num_examples=len(eval_set.ids),
                num_features=len(eval_set.windows.example_index),
                eval_time_s=round(elapsed, 3),
                ms_per_question=round(1000 * elapsed / len(eval_set.ids), 3),
            )
        return summary

    def output_files(self) -> dict[str, object]:
        """``predictions.json`` in the official ``{id: answer}`` format, ``nbest_predictions.json`` with
        probabilities (softmax over each question's candidates, the null answer among them for v2), and for v2
        ``null_odds.json`` (null score − best span score, the official script's ``--na-prob-file``)."""
        if self._last_eval is None:
            return {}
        eval_set = self.trainer.datamodule.eval_sets[self._last_eval["split"]]
        candidates, answers = self._last_eval["candidates"], self._last_eval["answers"]
        version_2 = self.trainer.datamodule.version_2
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
            files["null_odds.json"] = dict(zip(eval_set.ids, self._last_eval["null_diffs"].tolist()))
        return files

    # ---------------------------------------------------------------------------------------------- predict
    def on_predict_epoch_start(self) -> None:
        self._logits.clear()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def prediction_records(self, predictions: list, batch_indices: list[list[int]]) -> dict[int, dict]:
        """One record per question of the predict file (on the first device): id, answer, offsets and score."""
        decoded = self._decode("predict")
        if decoded is None:
            return {}
        eval_set = self.trainer.datamodule.eval_sets["predict"]
        return {
            i: {"id": qid, "question": question, "answer": a.text, "start": a.start, "end": a.end, "score": a.score}
            for i, (qid, question, a) in enumerate(zip(eval_set.ids, eval_set.questions, decoded[1]))
        }
