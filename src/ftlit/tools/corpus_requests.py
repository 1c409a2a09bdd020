"""The requests of ``ftlit serve`` over a corpus and the shape of its answers: ``{"query": …, "k": …}`` for
``/search``, ``{"question": …, "k": …}`` for ``/answer``, each problem named by its field (as
:mod:`ftlit.data.requests` names a prediction request's); a passage answered as ``{"id", "text", "title"?}``."""

from collections.abc import Mapping, Sequence

from ftlit.data.requests import check_fields, text_field
from ftlit.errors import RequestError
from ftlit.search.corpus import Corpus

#: The most passages one query may ask for: beyond, a request would hold a worker on a corpus-sized answer
MAX_K = 100


def query_row(request: Mapping, field: str, default_k: int) -> dict:
    """``{field: text, "k": …}`` read into ``{"query": text, "k": k}``; ``k`` is ``default_k`` when left out."""
    check_fields(request, [field, "k"])
    return {"query": text_field(request, field), "k": k_field(request, default_k)}


def k_field(request: Mapping, default: int) -> int:
    """``request["k"]``: a whole number from 1 to :data:`MAX_K`, or ``default`` when absent (or null)."""
    k = request.get("k")
    if k is None:
        return default
    if isinstance(k, bool) or not isinstance(k, int):  # (True is an int to Python, not to a client)
        raise RequestError("k", f"must be a whole number, not {type(k).__name__}.")
    if not 1 <= k <= MAX_K:
        raise RequestError("k", f"must be from 1 to {MAX_K}, not {k}.")
    return k


def passage_record(corpus: Corpus, position: int) -> dict:
    """The passage at ``position`` in ``corpus`` as answered: its id and text, and its title when it has one."""
    record = {"id": corpus.ids[position], "text": corpus.texts[position]}
    if corpus.titles is not None and corpus.titles[position]:
        record["title"] = corpus.titles[position]
    return record


def ranked_results(corpus: Corpus, hits: Sequence[tuple[int, float]]) -> list[dict]:
    """``/search``'s results: each hit (a passage's position in ``corpus``, its score), best first, as its passage
    with its score and rank (1 for the best)."""
    return [
        {**passage_record(corpus, position), "score": float(score), "rank": rank}
        for rank, (position, score) in enumerate(hits, start=1)
    ]
