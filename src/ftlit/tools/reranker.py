"""A reranker (cross-encoder): a sequence-classification export with one output, which scores a (question,
passage) pair read together — the folder ``sentence_transformers.CrossEncoder`` loads, run here with transformers
alone. Higher is more relevant; its scores order passages, they are no probabilities."""

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from ftlit.errors import FtlitError

#: Tokens of a pair read at most (BERT's positions), whatever the tokenizer's own limit says
MAX_LENGTH = 512
BATCH_SIZE = 32


def check_reranker(folder: Path) -> None:
    """``folder`` holds a sequence-classification model with one output; read from its config alone, before any
    weights load."""
    if not (folder / "config.json").is_file():
        raise FtlitError(f"--reranker {folder}: no config.json there; give a cross-encoder's folder.")
    config = AutoConfig.from_pretrained(folder)
    kinds = config.architectures or []
    if any(kind.endswith("ForSequenceClassification") for kind in kinds):
        if config.num_labels == 1:
            return
        found = f"a classifier with {config.num_labels} outputs"
    else:
        found = f"a {'/'.join(kinds) or 'model of no architecture'}"
    raise FtlitError(
        f"--reranker {folder}: {found}; a reranker is a sequence-classification model with one output "
        "(a cross-encoder)."
    )


class Reranker:
    """A cross-encoder ready to score (question, passage) pairs."""

    def __init__(self, folder: Path, device: str | torch.device = "cpu") -> None:
        check_reranker(folder)
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self.device).eval()
        self.max_length = min(self.tokenizer.model_max_length, MAX_LENGTH)

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        """The score of each passage for ``question``, in the passages' order."""
        found = []
        with torch.inference_mode():
            for start in range(0, len(passages), BATCH_SIZE):
                chunk = list(passages[start : start + BATCH_SIZE])
                inputs = self.tokenizer(
                    [question] * len(chunk),
                    chunk,
                    truncation=True,  # (the longer of the two is cut first: the passage, unless a question is longer)
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                found.extend(self.model(**inputs).logits[:, 0].float().tolist())
        return found
