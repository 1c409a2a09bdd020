"""BM25 over a fixed set of passages (rank_bm25's Okapi variant): the lexical baseline a dense retriever is
measured against, and the second voice of hybrid search."""

import re
from collections.abc import Sequence

import numpy as np

from ftlit.errors import FtlitError
from ftlit.search.ranking import top_k

# Lowercased runs of Unicode word characters: punctuation never glues to a word ("Paris," matches "paris"), any
# script splits the same way, and no stemmer or stop-word list ties the index to one language.
WORD = re.compile(r"\w+")
#: A ranking's position that holds no passage (BM25: the query shares no word with the rest)
UNMATCHED = -1


def words(text: str) -> list[str]:
    """The tokens BM25 matches: ``text``'s lowercased word-character runs."""
    return WORD.findall(text.lower())


def bm25_okapi() -> type:
    """rank_bm25's ``BM25Okapi``; refused, saying what to install, where rank_bm25 is missing (a check that a
    server runs at start, before it embeds a corpus)."""
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        raise FtlitError("BM25 needs rank_bm25: `pip install 'ftlit[retrieval]'`.") from None
    return BM25Okapi


class BM25Index:
    """BM25 (Okapi: k1 1.5, b 0.75) over ``passages``, tokenized by ``words``: rank_bm25's statistics and scores,
    read through an inverted index (each word → the passages holding it and how often)."""

    def __init__(self, passages: Sequence[str]) -> None:
        BM25Okapi = bm25_okapi()
        if not len(passages):
            raise FtlitError("BM25 needs at least one passage to index.")
        self.size = len(passages)
        bm25 = BM25Okapi([words(passage) for passage in passages])
        self.idf: dict[str, float] = bm25.idf
        self.k1 = bm25.k1
        # rank_bm25's length normalisation, written as its get_scores writes it (same floating-point result)
        self.length_norm = bm25.k1 * (1 - bm25.b + bm25.b * np.array(bm25.doc_len) / bm25.avgdl)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for passage, frequencies in enumerate(bm25.doc_freqs):
            for word, count in frequencies.items():
                holders, counts = postings.setdefault(word, ([], []))
                holders.append(passage)
                counts.append(count)
        self.postings = {
            word: (np.array(held), np.array(counts, dtype=np.float64)) for word, (held, counts) in postings.items()
        }

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for ``query`` (``[passages]``; 0 where no word is shared): rank_bm25's
        ``get_scores``, which scans every passage for every query word (0.25 s a query over SQuAD's 19k
        paragraphs), computed on the passages that hold each word alone."""
        scores = np.zeros(self.size)
        for word in words(query):  # a repeated word counts again, as in rank_bm25
            if word not in self.postings:
                continue
            held, counts = self.postings[word]
            scores[held] += self.idf[word] * (counts * (self.k1 + 1) / (counts + self.length_norm[held]))
        return scores

    def search(self, queries: Sequence[str], k: int) -> np.ndarray:
        """Each query's ``k`` best passages, best first (``[queries, min(k, passages)]``; equal scores keep the
        lower index first). A passage that shares no word with the query is not found: the positions past the
        passages it matches hold -1 (``UNMATCHED``)."""
        ranked = np.empty((len(queries), min(k, self.size)), dtype=np.int64)
        for row, query in enumerate(queries):  # one query at a time: a full score matrix would not fit in memory
            scores, matched = self.scores(query), np.zeros(self.size, dtype=bool)
            for word in set(words(query)) & self.postings.keys():
                matched[self.postings[word][0]] = True
            # (a word in most passages can score below 0: rank every matched passage before the unmatched anyway)
            scores[~matched] = -np.inf
            ranked[row] = top_k(scores, k)
            ranked[row, matched.sum() :] = UNMATCHED
        return ranked
