"""A reranker (cross-encoder): a sequence-classification export with one output, which scores a (question,
passage) pair read together — the folder ``sentence_transformers.CrossEncoder`` loads, run here with transformers
alone. Higher is more relevant; its scores order passages, they are no probabilities."""

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

from ftlit.deploy.onnx import ONNX_FILE
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained

#: Tokens of a pair read at most (BERT's positions), whatever the tokenizer's own limit says
MAX_LENGTH = 512
BATCH_SIZE = 32
#: The files torch weights are saved in, one of them in a folder transformers loads
WEIGHT_FILES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)


def check_reranker(folder: Path) -> PretrainedConfig:
    """``folder`` holds a sequence-classification model with one output (and no other ftlit task's) and its torch
    weights; read from its config and file names alone, before any weights load. Its config is returned."""
    if not (folder / "config.json").is_file():
        raise FtlitError(f"--reranker {folder}: no config.json there; give a cross-encoder's folder.")
    try:
        config = load_pretrained(AutoConfig.from_pretrained, str(folder), "reranker's config")
    except ValueError as err:  # (a config.json of no known model type)
        raise FtlitError(f"--reranker {folder}: could not read its config.json: {err}") from None
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        kind = "an ONNX export" if (folder / ONNX_FILE).is_file() else "a folder without torch weights"
        raise FtlitError(
            f"--reranker {folder}: {kind}; a reranker runs with torch: give the cross-encoder's folder of "
            f"{' or '.join(WEIGHT_FILES[::2])}."
        )
    task = getattr(config, "ftlit_task", None)
    kinds = config.architectures or []
    if task not in (None, "reranking"):
        found = f"an ftlit {task} model"
    elif any(kind.endswith("ForSequenceClassification") for kind in kinds):
        if config.num_labels == 1:
            return config
        found = f"a classifier with {config.num_labels} outputs"
    else:
        found = f"a {'/'.join(kinds) or 'model of no architecture'}"
    raise FtlitError(
        f"--reranker {folder}: {found}; a reranker is a sequence-classification model with one output "
        "(a cross-encoder)."
    )


class Reranker:
    """A cross-encoder ready to score (question, passage) pairs, each read at most ``max_length`` tokens long: the
    length its export records (``ftlit_inference``), else the tokenizer's limit up to ``MAX_LENGTH``."""

    def __init__(self, folder: Path, device: str | torch.device = "cpu") -> None:
        config = check_reranker(folder)
        self.device = torch.device(device)
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, str(folder), "reranker's tokenizer")
        model = load_pretrained(AutoModelForSequenceClassification.from_pretrained, str(folder), "reranker")
        self.model = model.to(self.device).eval()
        # the length it was trained at, where its export says; else as long as the tokenizer reads
        recorded = (getattr(config, "ftlit_inference", None) or {}).get("max_length")
        self.max_length = recorded or min(self.tokenizer.model_max_length, MAX_LENGTH)

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
