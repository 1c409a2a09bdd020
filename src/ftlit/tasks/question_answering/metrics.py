"""SQuAD metrics, line for line the rules of the official v1.1 and v2.0 evaluation scripts.

EM and F1 of a question are the maximum over its gold answers, averaged over all questions and reported as
percentages. v2.0: an unanswerable question's only gold answer is the empty string; HasAns/NoAns scores are the
same averages over answerable/unanswerable questions; the best no-answer threshold is searched as the official
script's ``find_best_thresh`` does.
"""

import collections
import re
import string

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop the articles a/an/the, collapse whitespace (official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, empty_agrees: bool = True) -> float:
    """Token-overlap F1 of the normalised answers.

    Two answers that normalise to nothing agree under v2.0 (``empty_agrees``, its no-answer rule); v1.1 scores
    them 0.
    """
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if empty_agrees and (not predicted_tokens or not gold_tokens):
        return float(predicted_tokens == gold_tokens)
    common = collections.Counter(predicted_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answer_texts: list[str]) -> list[str]:
    """The answers a prediction is compared with: non-empty after normalisation, else the empty answer."""
    return [text for text in answer_texts if normalize_answer(text)] or [""]


#: The v2.0 subsets the official script scores apart, by whether a question has an answer
ANSWER_KINDS = (("HasAns", True), ("NoAns", False))


def has_answer(answer_texts: list[str]) -> bool:
    """Whether the official v2.0 script counts a question as answerable: a gold answer survives normalisation."""
    return bool(gold_answers(answer_texts)[0])


def question_scores(
    predictions: dict[str, str], references: dict[str, list[str]], version_2: bool
) -> tuple[dict, dict]:
    """Per question: best EM and best F1 over its gold answers (a missing prediction scores 0)."""
    exact, f1 = {}, {}
    for qid, answers in references.items():
        golds = gold_answers(answers) if version_2 else answers
        prediction = predictions.get(qid)
        if prediction is None:
            exact[qid], f1[qid] = 0, 0.0
            continue
        exact[qid] = max(exact_match(prediction, gold) for gold in golds)
        f1[qid] = max(f1_score(prediction, gold, empty_agrees=version_2) for gold in golds)
    return exact, f1


def _mean_percent(values: dict, qids: list[str]) -> float:
    return 100.0 * sum(values[q] for q in qids) / len(qids)


def best_threshold(
    predictions: dict[str, str], scores: dict[str, float], na_scores: dict[str, float], has_answer: dict[str, bool]
) -> tuple[float, float]:
    """The official ``find_best_thresh``: answer questions in ascending no-answer score, keep the best prefix.

    ``predictions`` are the best non-null answers; ``na_scores`` rank how likely each question is unanswerable
    (here: null score minus best span score). Returns (best score in %, threshold).
    """
    current = best = sum(1 for qid in scores if not has_answer[qid])
    threshold = 0.0
    for qid in sorted(na_scores, key=na_scores.get):
        if qid not in scores:
            continue
        current += scores[qid] if has_answer[qid] else (-1 if predictions[qid] else 0)
        if current > best:
            best, threshold = current, na_scores[qid]
    return 100.0 * best / len(scores), threshold


def squad_evaluate(
    predictions: dict[str, str],
    references: dict[str, list[str]],
    version_2: bool = False,
    null_diffs: dict[str, float] | None = None,
    span_predictions: dict[str, str] | None = None,
) -> dict[str, float]:
    """``exact_match``, ``f1`` and ``total`` by the v1.1 script, or by the v2.0 script (``version_2``).

    v2.0 adds ``HasAns_*``/``NoAns_*`` and, given each question's null-score difference and best non-null answer,
    ``best_exact``/``best_f1`` with their thresholds (what the official script reports for these as ``na_probs``).
    """
    exact, f1 = question_scores(predictions, references, version_2)
    qids = list(references)
    results = {"exact_match": _mean_percent(exact, qids), "f1": _mean_percent(f1, qids), "total": len(qids)}
    if not version_2:
        return results
    answerable_ids = {qid: has_answer(answers) for qid, answers in references.items()}
    for name, answerable in ANSWER_KINDS:
        subset = [qid for qid in qids if answerable_ids[qid] == answerable]
        if subset:
            results[f"{name}_exact"] = _mean_percent(exact, subset)
            results[f"{name}_f1"] = _mean_percent(f1, subset)
            results[f"{name}_total"] = len(subset)
    if null_diffs is not None and span_predictions is not None:
        span_exact, span_f1 = question_scores(span_predictions, references, version_2)
        for name, scores in (("exact", span_exact), ("f1", span_f1)):
            best, threshold = best_threshold(span_predictions, scores, null_diffs, answerable_ids)
            results[f"best_{name}"], results[f"best_{name}_thresh"] = best, threshold
    return results
