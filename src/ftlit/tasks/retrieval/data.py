"""RetrievalDataModule: (query, positive[, hard negatives]) rows or SQuAD-format files → tokenised queries and
passages: training features of one query with its passages, evaluation features of a split's queries and of its
corpus (the split's distinct passages)."""

from collections import Counter
from functools import cached_property

import numpy as np
from datasets import Dataset

from ftlit.data.base import SplitStats, map_rows
from ftlit.data.checks import check_text_types, column, drop_blank_texts
from ftlit.data.pair_files import PairsDataModule
from ftlit.data.pairs import NEGATIVES, POSITIVE, QUERY, check_passages, passage_numbers, row_passages
from ftlit.errors import FtlitError
from ftlit.settings import check_range
from ftlit.tasks.retrieval.batches import PairCollator
from ftlit.tasks.retrieval.contract import RetrievalContract, RetrievalEvalSet


class RetrievalDataModule(PairsDataModule):
    """Query–passage data for a bi-encoder. Training rows: a query and its positive passage, and optionally hard
    negatives. Each validation or test split's distinct passages are the corpus its queries are ranked against.
    A predict file's queries are ranked against all of its passages (its positive and negative columns).

    Args:
        max_length: tokens per passage (≥ 8). max_query_length: tokens per query (≥ 4).
        query_prefix / passage_prefix: text put before every query / passage (E5's ``query: ``), kept in the
            export so that whoever embeds with it adds the same.
        Files, columns and the held-out validation set: see PairsDataModule.
        Batching, subsampling and seed: see TransformerDataModule. Batches are random here by default
            (``group_by_length`` false): grouped by length, a batch's passages would be alike in length only, which
            makes the in-batch negatives easier to tell apart by it.
    """

    def __init__(
        self,
        model_name_or_path: str,
        max_length: int = 256,
        max_query_length: int = 64,
        query_prefix: str = "",
        passage_prefix: str = "",
        group_by_length: bool = False,
        **kwargs,
    ) -> None:
        check_range("--data.max_query_length", max_query_length, minimum=4)
        super().__init__(model_name_or_path, max_length, group_by_length=group_by_length, **kwargs)
        self.max_query_length = max_query_length
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix

    # ------------------------------------------------------------------------------------------------- rows
    def required_columns(self, split: str) -> list[str]:
        return [QUERY, POSITIVE]

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Text columns of text; blank queries skipped or refused (``--data.empty_text``); blank passages refused;
        training rows with equally many hard negatives (a batch stacks them)."""
        checked = {}
        for split, rows in raw.items():
            source = self.source(split)
            check_text_types(rows, [QUERY, POSITIVE], source)
            check_passages(rows, source)
            checked[split] = drop_blank_texts(rows, [QUERY], source, self.empty_text)
        if "train" in checked:
            counts = Counter(len(negatives) for negatives in column(checked["train"], NEGATIVES))
            if self.batch_size == 1 and counts.keys() == {0}:
                raise FtlitError(
                    "--data.batch_size 1 without hard negatives leaves each query only its own passage to choose: "
                    "the loss is always 0. Use a larger batch (its other passages are the negatives)."
                )
            if len(counts) > 1:
                found = ", ".join(f"{n} in {rows} rows" for n, rows in sorted(counts.items()))
                raise FtlitError(
                    f"{self.source('train')}: rows hold different numbers of hard negatives ({found}); every "
                    "training row needs as many (a batch stacks them): trim or fill them to one number."
                )
        return checked

    # ------------------------------------------------------------------------------------------------- features
    def _encode(self, texts: list[str], kind: str) -> list[list[int]]:
        prefix, length = (
            (self.query_prefix, self.max_query_length) if kind == "query" else (self.passage_prefix, self.max_length)
        )
        if not texts:  # (a tokenizer refuses an empty batch)
            return []
        return self.tokenizer([prefix + text for text in texts], truncation=True, max_length=length)["input_ids"]

    def training_features(self, rows: Dataset) -> Dataset:
        passages = row_passages(rows)
        numbers = passage_numbers([text for texts in passages for text in texts])
        rows = rows.add_column("passage_keys", [[numbers[text] for text in texts] for texts in passages])
        return map_rows(
            rows,
            self._tokenize_pairs,
            batched=True,
            remove_columns=[name for name in rows.column_names if name != "passage_keys"],
            desc="Tokenizing pairs",
        )

    def _tokenize_pairs(self, batch: dict[str, list]) -> dict[str, list]:
        negatives = batch[NEGATIVES]
        count = len(negatives[0]) if negatives else 0
        flat = self._encode([text for row in negatives for text in row], "passage")
        return {
            "query_input_ids": self._encode(batch[QUERY], "query"),
            "input_ids": self._encode(batch[POSITIVE], "passage"),
            "negative_input_ids": [flat[i * count : (i + 1) * count] for i in range(len(negatives))],
        }

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, RetrievalEvalSet]:
        positives = column(rows, POSITIVE)
        numbers = passage_numbers([text for texts in row_passages(rows) for text in texts])
        passages = list(numbers)
        # a query given in several rows is one query, relevant to each of their positives
        relevant_to = {}
        for query, positive in zip(column(rows, QUERY), positives):
            relevant_to.setdefault(query, set()).add(numbers[positive])
        queries = list(relevant_to)
        features = Dataset.from_dict({"input_ids": self._encode(queries, "query") + self._encode(passages, "passage")})
        relevant = None if split == "predict" else list(relevant_to.values())
        eval_set = RetrievalEvalSet(split, len(queries), len(features), queries, passages, relevant)
        return features, eval_set

    def build_contract(self, eval_sets: dict[str, RetrievalEvalSet]) -> RetrievalContract:
        return RetrievalContract(
            self.max_length,
            tuple(self.validation_names),
            eval_sets,
            self.max_query_length,
            self.query_prefix,
            self.passage_prefix,
        )

    # ------------------------------------------------------------------------------------------------- batches
    @cached_property
    def collate(self) -> PairCollator:
        """Queries and passages padded each to their own longest (a training batch holds both)."""
        return PairCollator(
            self.tokenizer,
            self.pad_to_multiple_of,
            (self.max_length, self.max_query_length) if self.pad_to_max_length else None,
        )

    # ------------------------------------------------------------------------------------------------- inspect
    def split_stats(self, split: str) -> SplitStats:
        """Query and passage lengths, passages shared by several queries (not negatives of each other)."""
        rows = self.rows[split]
        queries, positives = column(rows, QUERY), column(rows, POSITIVE)
        passages = list(passage_numbers([text for texts in row_passages(rows) for text in texts]))
        lengths = np.array([len(ids) for ids in self.tokenizer([*queries, *passages], verbose=False)["input_ids"]])
        shared = Counter(positives)
        several = {text: n for text, n in shared.items() if n > 1}
        lines = [
            f"{len(queries)} queries, {len(passages)} distinct passages; {len(several)} passages are the positive of "
            f"several queries (at most {max(several.values(), default=1)}), never each other's negatives"
        ]
        return SplitStats(len(rows), lengths, {}, label_lines=lines)
