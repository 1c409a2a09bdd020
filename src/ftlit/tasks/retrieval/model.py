"""RetrievalModule: a bi-encoder (one encoder, shared by queries and passages) trained with in-batch negatives and
scored by ranking each query's split corpus: recall@1/5/20, MRR@10, nDCG@10."""

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from ftlit.contract import EvalStage
from ftlit.pretrained import load_pretrained
from ftlit.search.encoder import check_encoder, write_sentence_transformers_files
from ftlit.search.pooling import pool
from ftlit.search.ranking import RECALL_CUTOFFS, metric_names, ranking_metrics, top_k
from ftlit.settings import check_range
from ftlit.tasks.retrieval.contract import RetrievalContract, RetrievalEvalSet
from ftlit.tasks.retrieval.loss import in_batch_negatives_loss
from ftlit.training.evaluation import EvalResult
from ftlit.training.module import TransformerModule

#: Passages listed per query in rankings.json and predictions
LISTED = 10


class RetrievalModule(TransformerModule):
    """Fine-tunes an encoder (``AutoModel``) into an embedding model for search.

    Args:
        pooling: token states → one embedding: ``mean`` of the attended tokens (sentence-transformers' models,
            MiniLM) or the ``cls`` token's (BGE, DPR).
        normalize: embeddings of unit length, so similarity is the cosine (false: the dot product).
        scale: similarities are multiplied by this before the softmax over a batch's passages (> 0; 20 suits
            cosine similarities, as sentence-transformers' MultipleNegativesRankingLoss sets it; about 1 suits
            unnormalised dot products).
        symmetric_loss: also learn to find each positive passage's query among the batch's queries (the two
            terms averaged: sentence-transformers' MultipleNegativesSymmetricRankingLoss).
        Other arguments: see TransformerModule.
    """

    auto_class = AutoModel
    task_type = "FEATURE_EXTRACTION"
    head_modules = ()  # the encoder is the whole model: under LoRA, only adapters train
    task_metric = "mrr_at_10"
    contract: RetrievalContract

    def __init__(
        self,
        model_name_or_path: str,
        learning_rate: float = 2e-5,
        warmup_ratio: float = 0.1,
        pooling: Literal["mean", "cls"] = "mean",
        normalize: bool = True,
        scale: float = 20.0,
        symmetric_loss: bool = False,
        **kwargs,
    ) -> None:
        check_range("--model.scale", scale, minimum=0, include_minimum=False)
        super().__init__(model_name_or_path, learning_rate=learning_rate, warmup_ratio=warmup_ratio, **kwargs)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return metric_names()

    def load_model(self) -> PreTrainedModel:
        name = self.hparams.model_name_or_path
        check_encoder(load_pretrained(AutoConfig.from_pretrained, name, "model config"), name)
        model = super().load_model()
        # the pooler (BERT's next-sentence head) is never used: pooling reads the token states
        self.new_head.weights = [name for name in self.new_head.weights if not name.startswith("pooler.")]
        return model

    def inference_settings(self) -> dict:
        contract = self.contract
        return {
            "pooling": self.hparams.pooling,
            "normalize": self.hparams.normalize,
            "max_length": contract.max_length,
            "max_query_length": contract.max_query_length,
            "query_prefix": contract.query_prefix,
            "passage_prefix": contract.passage_prefix,
        }

    def export(self, directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
        """A Hugging Face encoder folder that is also a sentence-transformers model (its modules, pooling,
        normalisation, length and prefixes), so ``SentenceTransformer(directory)`` embeds as this run does."""
        super().export(directory, tokenizer)
        contract = self.contract
        write_sentence_transformers_files(
            directory,
            pooling=self.hparams.pooling,
            normalize=self.hparams.normalize,
            max_seq_length=contract.max_length,
            query_prefix=contract.query_prefix,
            passage_prefix=contract.passage_prefix,
            similarity="cosine" if self.hparams.normalize else "dot",
        )

    # ---------------------------------------------------------------------------------------------- training
    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One embedding per sequence, pooled (and normalised) as the export's sentence-transformers modules do."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.hparams.pooling, self.hparams.normalize)

    def on_before_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict:
        batch = super().on_before_batch_transfer(batch, dataloader_idx)
        if self.trainer.training:  # a training example is a query with its passages
            queries = batch["query_attention_mask"]
            counts = self.train_batch_counts
            counts["samples"] = queries.shape[0]
            counts["tokens"] += int(queries.sum())
            counts["padded"] += queries.numel()
        return batch

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        queries = self.embed(batch["query_input_ids"], batch["query_attention_mask"])
        passages = self.embed(batch["input_ids"], batch["attention_mask"])
        hp = self.hparams
        # in fp32: a softmax over scaled similarities loses the positive's margin in bf16
        return in_batch_negatives_loss(
            queries.float(), passages.float(), batch["passage_keys"], hp.scale, hp.symmetric_loss
        )

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed(batch["input_ids"], batch["attention_mask"]).float()}

    def _rankings(self, split: str, feature_index: torch.Tensor, outputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """Each query's best passages of the split's corpus (indices, best first) and their similarities."""
        eval_set: RetrievalEvalSet = self.contract.eval_sets[split]
        embeddings = outputs["embedding"]
        every = torch.zeros(eval_set.num_features, embeddings.shape[1], device=embeddings.device)
        every[feature_index] = embeddings  # features never evaluated (limit_val_batches) score 0 with every query
        queries, passages = every[: eval_set.num_examples], every[eval_set.num_examples :]
        scores = (queries @ passages.T).cpu().numpy()
        ranked = top_k(scores, max(RECALL_CUTOFFS))
        return ranked, np.take_along_axis(scores, ranked, axis=1)

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        eval_set: RetrievalEvalSet = self.contract.eval_sets[split]
        ranked, scores = self._rankings(split, feature_index, outputs)
        metrics = ranking_metrics(ranked, eval_set.relevant)
        details = {"ranked": ranked, "scores": scores}
        return EvalResult(split, metrics, eval_set.num_examples, eval_set.num_features, details=details)

    def result_files(self, result: EvalResult) -> dict[str, object]:
        """``rankings.json``: each query's relevant passages and its best ones, with their similarities (passages
        by their index in the split's corpus, ``passages`` listing it)."""
        eval_set: RetrievalEvalSet = self.contract.eval_sets[result.split]
        ranked, scores = result.details["ranked"], result.details["scores"]
        queries = [
            {
                "query": query,
                "relevant": sorted(relevant),
                "ranked": ids[:LISTED].tolist(),
                "scores": s[:LISTED].tolist(),
            }
            for query, relevant, ids, s in zip(eval_set.queries, eval_set.relevant, ranked, scores)
        ]
        return {"rankings.json": {"passages": eval_set.passages, "queries": queries}}

    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """Each query's best passages among all of the predict file's, with their similarities."""
        eval_set: RetrievalEvalSet = self.contract.eval_sets[split]
        ranked, scores = self._rankings(split, feature_index, outputs)
        return [
            {
                "query": query,
                "results": [
                    {"passage": eval_set.passages[i], "score": float(s)} for i, s in zip(ids[:LISTED], row[:LISTED])
                ],
            }
            for query, ids, row in zip(eval_set.queries, ranked, scores)
        ]
