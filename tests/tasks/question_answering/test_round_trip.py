"""Gold answers → windows → perfect logits → decoding, on real SQuAD questions: alignment is exact end to end."""

import numpy as np
import pytest
from datasets import Dataset

from conftest import SHARED_DATA
from ftlit.data.squad_files import load_squad_file
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.decode import best_answers, decode_candidates
from ftlit.tasks.question_answering.features import answer_token_span
from ftlit.tasks.question_answering.metrics import squad_evaluate

SQUAD = SHARED_DATA / "squad/train-v1.1.reconstructed.json.gz"


@pytest.fixture(scope="module")
def real_questions() -> Dataset:
    if not SQUAD.is_file():
        pytest.skip("../shared/data is not beside the project")
    rows = load_squad_file(str(SQUAD))
    return rows.select(range(2000))  # the first articles, whole contexts


def inside_a_token(offsets: np.ndarray, char: int) -> bool:
    return bool(((offsets[:, 0] < char) & (char < offsets[:, 1])).any())


@pytest.mark.slow  # windows over thousands of real questions
@pytest.mark.parametrize(("max_length", "doc_stride"), [(384, 128), (128, 48)])
def test_perfect_logits_recover_every_gold_answer(real_questions, tokenizer, max_length, doc_stride):
    dm = SquadDataModule("unused", dataset=None, max_length=max_length, doc_stride=doc_stride)
    dm.tokenizer = tokenizer
    _, eval_set = dm.evaluation_features("validation", real_questions)
    windows = eval_set.windows
    starts = np.zeros(windows.offsets.shape[:2], np.float32)
    ends = np.zeros_like(starts)
    golds = real_questions["answers"]
    for w, example in enumerate(windows.example_index):
        first = golds[example]["answer_start"][0]
        span = answer_token_span([tuple(o) for o in windows.offsets[w]], first, first + len(golds[example]["text"][0]))
        if span:
            starts[w, span[0]] = ends[w, span[1]] = 10.0
    length = windows.offsets.shape[1]
    candidates = decode_candidates(starts, ends, windows, len(eval_set.ids), max_answer_length=length)
    answers, _ = best_answers(candidates, windows, eval_set.contexts)

    aligned = {}
    for i, (answer, gold) in enumerate(zip(answers, golds)):
        first, text = gold["answer_start"][0], gold["text"][0]
        context_offsets = windows.offsets[windows.example_index == i].reshape(-1, 2)
        if inside_a_token(context_offsets, first) or inside_a_token(context_offsets, first + len(text)):
            # "Armenia" in "Armenians": the smallest token span holding the answer is returned
            assert answer.start <= first and first + len(text) <= answer.end and text in answer.text
        else:
            aligned[eval_set.ids[i]] = answer.text
    assert len(aligned) > 0.99 * len(answers)
    scores = squad_evaluate(aligned, {qid: eval_set.references[qid] for qid in aligned})
    assert scores["exact_match"] == 100.0
    # And straight against the gold text, without normalisation
    assert all(aligned[qid] == eval_set.references[qid][0] for qid in aligned)
