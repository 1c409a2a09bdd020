"""RerankingModule: a cross-encoder (one score per "[CLS] query [SEP] passage" pair) trained on groups of a query's
positive and hard negatives, judged by the ranking it gives each query's candidates."""

from dataclasses import replace
from typing import Literal

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from ftlit.contract import EvalStage
from ftlit.search.ranking import metric_names, ranking_metrics
from ftlit.tasks.reranking.contract import CandidatesEvalSet, RerankingContract
from ftlit.tasks.reranking.groups import Loss, group_loss, rankings
from ftlit.training.evaluation import EvalResult
from ftlit.training.loading import NewHead
from ftlit.training.module import TransformerModule


class AutoModelForReranking(AutoModelForSequenceClassification):
    """transformers' sequence classifier (a reranker is one with one output) under a name of its own, by which ftlit
    tells a reranker's head from a classifier's (``ftlit.training.loading.task_of_head``); the folders it writes say
    so in their config (``ftlit_task``), and load as any sequence classifier (sentence-transformers' CrossEncoder)."""


#: The prefix of the metrics of the candidates' own order (the retriever's ranking), reported beside the reranker's
RETRIEVER = "retriever_"


class RerankingModule(TransformerModule):
    """Fine-tunes ``AutoModelForSequenceClassification`` with one output (a relevance score per pair); its export
    loads as ``sentence_transformers.CrossEncoder``.

    Args:
        loss: ``listwise``: for each query, the cross-entropy of its positive among the scores of its group (a
            softmax over the positive and its negatives, as sentence-transformers' CrossEncoder training and
            ListNet do); ``pointwise``: binary cross-entropy of each pair's score (positive 1, negatives 0).
        Other arguments: see TransformerModule.
    """

    auto_class = AutoModelForReranking
    task_type = "SEQ_CLS"
    contract: RerankingContract

    def __init__(self, model_name_or_path: str, loss: Literal["listwise", "pointwise"] = "listwise", **kwargs) -> None:
        super().__init__(model_name_or_path, **kwargs)

    @property
    def task_metric(self) -> str:
        return "mrr_at_10"

    @property
    def metric_names(self) -> tuple[str, ...]:
        retriever = tuple(RETRIEVER + name for name in metric_names()) if self.contract.scores_retriever else ()
        return (*metric_names(), *retriever)

    def head_settings(self) -> dict:
        return {"num_labels": 1}

    def load_model(self):
        model = super().load_model()
        found = self.new_head.found
        if found.task == "classification" and found.num_labels == 1 and found.labels is None:
            # one unnamed output, and no ftlit_task: a cross-encoder from elsewhere (sentence-transformers, the Hub)
            self.new_head = NewHead(self.new_head.wanted, replace(found, task="reranking"), self.new_head.weights)
        model.config.ftlit_task = "reranking"  # (in the export's config: see AutoModelForReranking)
        return model

    def inference_settings(self) -> dict:
        # read by the server's reranker: pairs cut where this run cut them
        return {"max_length": self.contract.max_length}

    def _scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One relevance score per pair of the batch (the head's one logit)."""
        return self.model(**batch).logits[:, 0].float()

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        sizes = batch.pop("group_sizes")
        loss: Loss = self.hparams.loss
        return group_loss(self._scores(batch), sizes, loss)

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": self._scores(batch)}

    def _query_scores(self, split: str, feature_index: torch.Tensor, scores: torch.Tensor) -> list[np.ndarray]:
        """Each query's candidates' scores, by position (-inf for a candidate not evaluated, e.g. under
        ``limit_val_batches``)."""
        eval_set: CandidatesEvalSet = self.contract.eval_sets[split]
        per_query = [np.full(count, -np.inf) for count in eval_set.candidate_counts]
        index = feature_index.cpu().numpy()
        for query, position, score in zip(
            eval_set.query_index[index], eval_set.position[index], scores.cpu().numpy().tolist()
        ):
            per_query[query][position] = score
        return per_query

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        eval_set: CandidatesEvalSet = self.contract.eval_sets[split]
        scores = self._query_scores(split, feature_index, outputs["scores"])
        metrics = ranking_metrics(rankings(scores), eval_set.relevant)
        if eval_set.retriever_order:  # the candidates' own order: each scored by minus its position
            retriever = ranking_metrics(rankings([-np.arange(len(row)) for row in scores]), eval_set.relevant)
            metrics |= {RETRIEVER + name: value for name, value in retriever.items()}
        return EvalResult(split, metrics, num_examples=eval_set.num_examples, num_features=eval_set.num_features)

    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """Each input row with its candidates ranked, best first: ``ranking`` holds each candidate's position in
        the row's ``candidates`` (``index``), its text and its score (the head's logit: CrossEncoder's default
        sigmoid of it ranks alike)."""
        eval_set: CandidatesEvalSet = self.contract.eval_sets[split]
        per_query = self._query_scores(split, feature_index, outputs["scores"])
        records = []
        for row, scores, order in zip(eval_set.rows, per_query, rankings(per_query)):
            ranked = [int(i) for i in order if i < len(scores)]  # (not the padding of shorter lists)
            ranking = [{"index": i, "text": row["candidates"][i], "score": float(scores[i])} for i in ranked]
            records.append({**row, "ranking": ranking})
        return records
