"""Collating retrieval features: a training batch holds its queries and its passages (the rows' positives, then
their hard negatives), each padded to its own longest; an evaluation batch, its sequences (queries or passages)."""

import torch
from transformers import PreTrainedTokenizerBase

#: The sequences of a training feature; anything else a feature holds is stacked as it is (feature_index)
_SEQUENCES = ("query_input_ids", "input_ids", "negative_input_ids", "passage_keys")


class PairCollator:
    """Features → a batch: ``input_ids``/``attention_mask`` (the passages: positives in row order, then each row's
    hard negatives), ``query_input_ids``/``query_attention_mask`` and ``passage_keys`` (a number per passage, equal
    for equal texts) for training; ``input_ids``/``attention_mask`` (and ``feature_index``) for evaluation."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        pad_to_multiple_of: int,
        lengths: tuple[int, int] | None = None,
    ) -> None:
        """``lengths``: (passages', queries') lengths to pad every batch to (``--data.pad_to_max_length``); None:
        each to its batch's longest."""
        self.tokenizer, self.pad_to_multiple_of, self.lengths = tokenizer, pad_to_multiple_of, lengths

    def _padded(self, sequences: list[list[int]], queries: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        length = self.lengths[queries] if self.lengths else None
        batch = self.tokenizer.pad(
            {"input_ids": sequences},
            padding="max_length" if length else "longest",
            max_length=length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        return batch["input_ids"], batch["attention_mask"]

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        passages = [feature["input_ids"] for feature in features]
        batch = {}
        if "query_input_ids" in features[0]:
            batch["query_input_ids"], batch["query_attention_mask"] = self._padded(
                [feature["query_input_ids"] for feature in features], queries=True
            )
            passages += [ids for feature in features for ids in feature["negative_input_ids"]]
            keys = [feature["passage_keys"] for feature in features]
            batch["passage_keys"] = torch.tensor([row[0] for row in keys] + [key for row in keys for key in row[1:]])
        batch["input_ids"], batch["attention_mask"] = self._padded(passages)
        for name in features[0].keys() - {*_SEQUENCES, "attention_mask", "token_type_ids"}:
            batch[name] = torch.tensor([feature[name] for feature in features])
        return batch
