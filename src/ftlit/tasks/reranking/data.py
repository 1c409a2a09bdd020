"""RerankingDataModule: (query, positive, negatives) rows → groups of (query, passage) pairs for training, and
every query's candidates as pairs for evaluation and prediction."""

import itertools
import logging
from collections.abc import Mapping
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset

from ftlit.data.base import SplitStats, map_rows
from ftlit.data.checks import check_text_types, column, drop_blank_texts, is_blank, rows_named, without_rows
from ftlit.data.pair_files import PairsDataModule
from ftlit.data.pairs import NEGATIVES, POSITIVE, QUERY, check_passages
from ftlit.data.requests import check_fields, text_field, words_field
from ftlit.errors import FtlitError
from ftlit.settings import check_range
from ftlit.tasks.reranking.contract import CandidatesEvalSet, RerankingContract
from ftlit.tasks.reranking.groups import evaluation_candidates, training_group

log = logging.getLogger(__name__)

#: A retriever's ranked list of a query's candidates, best first (evaluation and prediction)
CANDIDATES = "candidates"


class RerankingDataModule(PairsDataModule):
    """Reranking data: each row a query, its positive passage and its negatives (hard ones, as ``ftlit mine``
    writes them), and for evaluation optionally the retriever's ranked ``candidates``. Training rows need
    negatives (a SQuAD-format file has none: mine them first with ``ftlit mine``); a validation or test query's
    candidates are its ``candidates`` (a retriever's ranked list, best first: then the retriever's own metrics are
    reported too, as ``retriever_*``) or, without them, its positive and negatives; a predict row is a ``query``
    and its ``candidates``, which are ranked. ``batch_size`` counts queries (each with its group of passages),
    ``eval_batch_size`` (query, candidate) pairs.

    Args:
        candidates_column: the file's column of each query's candidates ranked by a retriever, best first.
        negatives_per_query: train on each query's first this many negatives (≥ 1, or null: all of them).
        max_length: tokens per (query, passage) pair (≥ 8).
        Files, columns and the held-out validation set: see PairsDataModule.
        Batching, subsampling and seed: see TransformerDataModule.
    """

    column_hint = "Name them with --data.query_column, --data.positive_column and --data.candidates_column."

    def __init__(
        self,
        model_name_or_path: str,
        candidates_column: str = "candidates",
        negatives_per_query: int | None = None,
        max_length: int = 256,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, **kwargs)
        check_range("--data.negatives_per_query", negatives_per_query, minimum=1, allow_none=True)
        self.candidates_column = candidates_column
        self.negatives_per_query = negatives_per_query

    # ------------------------------------------------------------------------------------------------- rows
    def adapt_columns(self, rows: Dataset) -> Dataset:
        candidates = column(rows, self.candidates_column) if self.candidates_column in rows.column_names else None
        paired = super().adapt_columns(rows)
        return paired if candidates is None else paired.add_column(CANDIDATES, candidates)

    def required_columns(self, split: str) -> list[str]:
        return [QUERY, CANDIDATES] if split == "predict" else [QUERY, POSITIVE]

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Texts where texts belong, passages never blank; rows without a query dropped or refused; rows with
        nothing to rank dropped, a split left with none refused."""
        checked = {}
        for split, rows in raw.items():
            source, texts = self.source(split), [QUERY] if split == "predict" else [QUERY, POSITIVE]
            check_text_types(rows, texts, source)
            check_passages(rows, source)
            if CANDIDATES in rows.column_names:
                check_candidates(column(rows, CANDIDATES), source, self.candidates_column)
            rows = drop_blank_texts(rows, texts, source, self.empty_text)
            checked[split] = self._rankable(split, rows)
        return checked

    def _rankable(self, split: str, rows: Dataset) -> Dataset:
        """The rows that have passages to rank: in training negatives to rank the positive against; in evaluation
        and prediction candidates where the file has them, else negatives."""
        what = CANDIDATES if split != "train" and CANDIDATES in rows.column_names else NEGATIVES
        alone = [i for i, passages in enumerate(column(rows, what)) if not passages]
        if not alone:
            return rows
        if len(alone) == len(rows):
            mine = (
                ""
                if split == "predict"
                else " (a SQuAD-format file has none). Mine hard negatives with a retriever first: `ftlit mine "
                "RETRIEVER --pairs FILE --output mined.jsonl`, then use mined.jsonl"
            )
            raise FtlitError(f"{self.source(split)}: no query has {what}, so there is nothing to rank{mine}.")
        log.warning(
            "%s: skipped %d of %d queries without %s (%s).",
            self.source(split),
            len(alone),
            len(rows),
            what,
            rows_named(alone),
        )
        return without_rows(rows, alone)

    def usable_rows(self, split: str, rows: Dataset) -> Dataset:
        if len(rows) == 0:
            raise FtlitError(f"The {split} data ({self.source(split)}) has no queries.")
        return rows

    # ------------------------------------------------------------------------------------------------- features
    def training_features(self, rows: Dataset) -> Dataset:
        settings = {"tokenizer": self.tokenizer, "max_length": self.max_length, "limit": self.negatives_per_query}
        return map_rows(
            rows,
            encode_groups,
            batched=True,
            remove_columns=rows.column_names,
            fn_kwargs=settings,
            desc="Tokenising groups",
        )

    def candidates(self, split: str, rows: Dataset) -> tuple[list[list[str]], list[set[int]] | None]:
        """Each query's candidates, and (unless predicting) the positions of its relevant ones."""
        if split == "predict":
            return column(rows, CANDIDATES), None
        given = column(rows, CANDIDATES) if CANDIDATES in rows.column_names else [None] * len(rows)
        ranked = [evaluation_candidates(*row) for row in zip(column(rows, POSITIVE), column(rows, NEGATIVES), given)]
        return [passages for passages, _ in ranked], [positions for _, positions in ranked]

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, CandidatesEvalSet]:
        lists, relevant = self.candidates(split, rows)
        counts = np.array([len(passages) for passages in lists], dtype=np.int64)
        pairs = Dataset.from_dict({"query": np.repeat(column(rows, QUERY), counts).tolist(), "passage": flat(lists)})
        features = map_rows(
            pairs,
            encode_pairs,
            batched=True,
            remove_columns=pairs.column_names,
            fn_kwargs={"tokenizer": self.tokenizer, "max_length": self.max_length},
            desc="Tokenising pairs",
        )
        eval_set = CandidatesEvalSet(
            split,
            num_examples=len(rows),
            num_features=len(features),
            query_index=np.repeat(np.arange(len(rows)), counts),
            position=np.concatenate([np.arange(n) for n in counts]) if len(counts) else np.zeros(0, np.int64),
            candidate_counts=counts,
            relevant=relevant,
            retriever_order=CANDIDATES in rows.column_names,
            rows=rows.remove_columns(NEGATIVES) if split == "predict" else None,
        )
        return features, eval_set

    def build_contract(self, eval_sets: dict[str, CandidatesEvalSet]) -> RerankingContract:
        return RerankingContract(self.max_length, tuple(self.validation_names), eval_sets)

    # ------------------------------------------------------------------------------------------------- batches
    def feature_lengths(self, features: Dataset) -> np.ndarray:
        """A training group's length is its longest pair's (its batch is padded to that); a pair's its own."""
        ids = pa.chunked_array(features.with_format("arrow")["input_ids"]).combine_chunks()
        if not pa.types.is_list(ids.type.value_type):
            return pc.list_value_length(ids).to_numpy()
        lengths = pc.list_value_length(ids.flatten()).to_numpy()
        sizes = pc.list_value_length(ids).to_numpy()
        return np.maximum.reduceat(lengths, np.cumsum(sizes) - sizes) if len(sizes) else sizes

    @cached_property
    def collate(self):
        """Groups → their pairs padded as one batch, with ``group_sizes`` (pairs per group, in order); pairs → a
        padded batch."""
        pad = super().collate

        def collate(features: list[dict]) -> dict[str, torch.Tensor]:
            if not features or not isinstance(features[0]["input_ids"][0], list):
                return pad(features)
            names = [name for name in features[0] if name != "feature_index"]
            pairs = [dict(zip(names, values)) for one in features for values in zip(*(one[n] for n in names))]
            batch = dict(pad(pairs))
            batch["group_sizes"] = torch.tensor([len(one["input_ids"]) for one in features])
            return batch

        return collate

    def token_sequences(self, features: Dataset) -> list[list[int]]:
        ids = features["input_ids"]
        return [pair for group in ids for pair in group] if ids and isinstance(ids[0][0], list) else ids

    # ------------------------------------------------------------------------------------------------- inspect
    def split_stats(self, split: str) -> SplitStats:
        """Per query, the tokens of its longest (query, passage) pair untruncated; how many passages queries have."""
        rows = self.rows[split]
        if split == "train":
            limit = self.negatives_per_query
            lists = [training_group(p, n, limit) for p, n in zip(column(rows, POSITIVE), column(rows, NEGATIVES))]
        else:
            lists = self.candidates(split, rows)[0]
        counts = np.array([len(passages) for passages in lists])
        queries = np.repeat(column(rows, QUERY), counts).tolist()
        pair_lengths = [len(ids) for ids in self.tokenizer(queries, flat(lists), verbose=False)["input_ids"]]
        lengths = np.maximum.reduceat(pair_lengths, np.cumsum(counts) - counts)
        line = f"passages per query: min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}"
        return SplitStats(len(rows), lengths, {}, label_lines=[line])

    def request_row(self, request: Mapping) -> dict:
        """``{"query": …, "candidates": [...]}``: the candidates are ranked (pairs longer than ``max_length`` are
        truncated, as in training)."""
        check_fields(request, [QUERY, CANDIDATES])
        return {QUERY: text_field(request, QUERY), CANDIDATES: words_field(request, CANDIDATES), NEGATIVES: []}

    def example_request(self) -> dict:
        return {QUERY: "Where is the Eiffel Tower?", CANDIDATES: ["It stands in Paris.", "Rome has the Colosseum."]}


def flat(lists: list[list[str]]) -> list[str]:
    """The passages of every list, in order."""
    return list(itertools.chain.from_iterable(lists))


def check_candidates(values: list, source: str, name: str) -> None:
    """Every row's candidates are a list of passages, none blank (a row may have none: it is skipped)."""
    bad = [
        i
        for i, value in enumerate(values)
        if value is not None and not (isinstance(value, list) and not any(map(is_blank_passage, value)))
    ]
    if bad:
        raise FtlitError(
            f"{source}: column {name!r} must hold lists of passages, none of them empty, but {rows_named(bad)} hold "
            f"{', '.join(repr(values[i])[:60] for i in bad[:3])}."
        )


def is_blank_passage(value: object) -> bool:
    return not isinstance(value, str) or is_blank(value)


def encode_pairs(batch: dict, tokenizer, max_length: int) -> dict:
    """(query, passage) pairs → "[CLS] query [SEP] passage [SEP]" token ids, truncated to ``max_length``."""
    encoding = tokenizer(batch["query"], batch["passage"], truncation=True, max_length=max_length)
    return {name: encoding[name] for name in tokenizer.model_input_names}


def encode_groups(batch: dict, tokenizer, max_length: int, limit: int | None) -> dict:
    """Rows → one feature per query holding the pairs of its training group (positive first), each input a list
    of per-pair sequences."""
    groups = [training_group(p, n, limit) for p, n in zip(batch["positive"], batch["negatives"])]
    queries = [q for q, group in zip(batch["query"], groups) for _ in group]
    pairs = encode_pairs({"query": queries, "passage": flat(groups)}, tokenizer, max_length)
    ends = np.cumsum([len(group) for group in groups])
    return {name: [ids[end - len(g) : end] for g, end in zip(groups, ends)] for name, ids in pairs.items()}
