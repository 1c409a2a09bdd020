"""Entity-level scores exactly as ``conlleval`` computes them (seqeval's default mode): an entity counts as found
when a predicted entity has the same type and the same first and last word; micro precision/recall/F1 over all
entities, the same per type, and the accuracy of the word tags."""

from collections import Counter
from collections.abc import Sequence

from ftlit.tasks.token_classification.tags import entities


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return precision, recall, _f1(precision, recall)


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> tuple[dict, dict]:
    """(metrics, per-type table) of predicted tag sequences against gold ones, sentence by sentence.

    metrics: ``precision``, ``recall``, ``f1`` (micro, over entities), ``accuracy`` (of the word tags) and
    ``f1_<TYPE>`` per entity type; the table: per type, precision/recall/F1 and the gold count (support).
    """
    correct, found, expected = Counter(), Counter(), Counter()
    right_tags = total_tags = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"A sentence has {len(gold_tags)} gold tags but {len(predicted_tags)} predicted ones.")
        gold_entities, predicted_entities = set(entities(gold_tags)), set(entities(predicted_tags))
        expected.update(kind for kind, _, _ in gold_entities)
        found.update(kind for kind, _, _ in predicted_entities)
        correct.update(kind for kind, _, _ in gold_entities & predicted_entities)
        right_tags += sum(g == p for g, p in zip(gold_tags, predicted_tags))
        total_tags += len(gold_tags)
    precision, recall, f1 = _prf(sum(correct.values()), sum(found.values()), sum(expected.values()))
    metrics = {"precision": precision, "recall": recall, "f1": f1, "accuracy": right_tags / max(total_tags, 1)}
    table = {}
    for kind in sorted(set(expected) | set(found)):
        p, r, f = _prf(correct[kind], found[kind], expected[kind])
        table[kind] = {"precision": round(p, 6), "recall": round(r, 6), "f1": round(f, 6), "support": expected[kind]}
        metrics[f"f1_{kind}"] = f
    return metrics, table
