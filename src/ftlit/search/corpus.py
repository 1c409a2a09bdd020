"""A corpus of passages read from a file, and its index: the passages embedded once by a sentence encoder, kept on
disk beside the corpus file for as long as the corpus, the model and its settings stay the same."""

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from ftlit.data.checks import check_text_types, column, duplicates, is_blank, rows_named
from ftlit.data.loading import content_hash, load_local_file
from ftlit.errors import FtlitError
from ftlit.search.encoder import SentenceEncoder
from ftlit.search.fusion import reciprocal_rank_fusion
from ftlit.search.lexical import BM25Index
from ftlit.search.ranking import top_k
from ftlit.settings import check_range

log = logging.getLogger(__name__)

Fusion = Literal["dense", "bm25", "rrf"]
FUSIONS: tuple[str, ...] = get_args(Fusion)
#: How deep each ranking reciprocal rank fusion merges is at least (a passage low in one ranking still counts)
FUSION_DEPTH = 100
#: Bumped whenever what an index holds changes meaning, so that older indexes are rebuilt
INDEX_FORMAT = 1
# queries scored against the whole corpus at a time: [256, passages] float32 stays small
QUERY_CHUNK = 256


@dataclass(frozen=True)
class Corpus:
    """Passages read from a file: their ids (the file's ``id`` column as text, else the row numbers from 0), texts,
    and titles (None without a ``title`` column; "" for a row without one)."""

    ids: list[str]
    texts: list[str]
    titles: list[str] | None

    def passages(self) -> list[str]:
        """What is searched of each passage: its title and text, separated by a space (as BEIR joins them)."""
        if self.titles is None:
            return list(self.texts)
        return [f"{title} {text}" if title else text for title, text in zip(self.titles, self.texts)]


def read_corpus(path: str | Path) -> Corpus:
    """The corpus in ``path`` (JSONL, JSON, Parquet or CSV, optionally gzipped) with a ``text`` column and optional
    ``id`` and ``title`` columns; refused, naming the rows, where a text is missing or an id is missing or repeated."""
    source = f"'{path}'"
    rows = load_local_file(str(path))
    if "text" not in rows.column_names:
        raise FtlitError(
            f"{source} has no 'text' column (its columns: {', '.join(rows.column_names)}): a corpus holds one passage "
            "a row, its text in 'text', optionally its 'id' and 'title'."
        )
    optional = [name for name in ("title",) if name in rows.column_names]
    check_text_types(rows, ["text", *optional], source)
    texts = column(rows, "text")
    blank = [i for i, text in enumerate(texts) if is_blank(text)]
    if blank:
        raise FtlitError(f"{source}: {len(blank)} passage(s) have no text ({rows_named(blank)}).")
    if "id" in rows.column_names:
        raw_ids = column(rows, "id")
        missing = [i for i, value in enumerate(raw_ids) if is_blank(value)]
        if missing:
            raise FtlitError(f"{source}: {len(missing)} passage(s) have no id ({rows_named(missing)}).")
        ids = [str(value) for value in raw_ids]
        repeated = duplicates(ids)
        if repeated:
            at = [i for i, value in enumerate(ids) if value in set(repeated)]
            raise FtlitError(
                f"{source}: {len(repeated)} passage id(s) occur more than once (first: {repeated[:5]}, at "
                f"{rows_named(at)}). Ids must be unique: relevance and results are keyed by them."
            )
    else:
        ids = [str(i) for i in range(len(texts))]
    titles = [title or "" for title in column(rows, "title")] if optional else None
    return Corpus(ids, texts, titles)


def model_files(folder: Path) -> list[tuple[str, int, int]]:
    """The files directly in ``folder`` (weights, config, tokenizer) by name, size and modification time: what
    stands for the model in a fingerprint without reading gigabytes of weights."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())


def write_atomically(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then renamed onto it: a reader never sees half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CorpusIndex:
    """The passages of the corpus file ``path`` embedded by ``encoder``, kept in ``<path>.ftlit-index/`` as
    ``<fingerprint>.npy`` (with a ``.json`` saying what it holds) and read back while the fingerprint matches: it
    covers the corpus file's content, the model folder's files (name, size, modification time) and the encoder's
    settings (pooling, normalisation, max length, prefixes). An index folder holds one file pair per corpus/model
    combination seen; deleting it costs one re-embedding. Where the folder cannot be written, the embeddings are
    kept in memory only."""

    def __init__(self, path: str | Path, encoder: SentenceEncoder, batch_size: int = 64, progress: bool = True) -> None:
        self.path, self.encoder = Path(path), encoder
        self.corpus = read_corpus(self.path)
        self.passages = self.corpus.passages()
        self.fingerprint = self.compute_fingerprint()
        self.folder = self.path.with_name(self.path.name + ".ftlit-index")
        stored = self.folder / f"{self.fingerprint}.npy"
        self.reused = stored.is_file() and self.load(stored)
        if not self.reused:
            log.info("Embedding the %d passages of '%s' with '%s'.", len(self.passages), path, encoder.folder)
            self.embeddings = encoder.encode(self.passages, "passage", batch_size=batch_size, progress=progress)
            self.store(stored)

    def settings(self) -> dict:
        """The encoder's settings as JSON values."""
        settings = asdict(self.encoder.settings)
        return {**settings, "model_folder": str(settings["model_folder"])}

    def compute_fingerprint(self) -> str:
        """A hash of all that decides the embeddings (see the class)."""
        described = {
            "format": INDEX_FORMAT,
            "corpus": content_hash(str(self.path)),
            "model": model_files(self.encoder.settings.model_folder),
            "settings": self.settings(),
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]

    def load(self, stored: Path) -> bool:
        """Read the stored embeddings; False (to rebuild) where they do not fit the corpus and model."""
        try:
            embeddings = np.load(stored, mmap_mode="r")
        except (OSError, ValueError) as err:
            log.warning("Could not read the stored embeddings '%s' (%s): embedding the corpus anew.", stored, err)
            return False
        if embeddings.shape != (len(self.passages), self.encoder.dimension):
            return False
        self.embeddings = embeddings
        return True

    def store(self, stored: Path) -> None:
        """Keep the embeddings in ``stored``, and what they are in a JSON file beside it."""
        about = {
            "corpus": str(self.path),
            "passages": len(self.passages),
            "model": str(self.encoder.folder),
            "dimension": self.encoder.dimension,
            "settings": self.settings(),
        }
        try:
            self.folder.mkdir(exist_ok=True)
            write_atomically(stored, lambda file: np.save(file, self.embeddings))
            write_atomically(stored.with_suffix(".json"), lambda file: file.write(json.dumps(about, indent=2).encode()))
        except OSError as err:
            log.warning(
                "Could not keep the embeddings in '%s' (%s): they will be computed again next time.", self.folder, err
            )

    def search(self, query_embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's ``k`` best passages by the encoder's similarity with its embedding, best first: the passage
        indices and their scores, each ``[queries, min(k, passages)]``; equal scores keep the lower index first."""
        return dense_search(self.encoder.comparable(query_embeddings), self.searched, k)

    @cached_property
    def searched(self) -> np.ndarray:
        """The passage embeddings a search multiplies by: the stored ones, ``comparable`` by the encoder."""
        return self.encoder.comparable(self.embeddings)

    @cached_property
    def bm25(self) -> BM25Index:
        """BM25 over the same passages, built on first use."""
        return BM25Index(self.passages)

    def search_texts(self, queries: Sequence[str], k: int, fusion: Fusion = "dense") -> np.ndarray:
        """Each query's ``k`` best passage indices, best first (``[queries, min(k, passages)]``), found by the
        encoder (``dense``), by BM25 (``bm25``), or by both merged by reciprocal rank fusion (``rrf``, each
        ranking ``FUSION_DEPTH`` deep at least). BM25 finds only passages that share a word with the query: with
        ``bm25`` or ``rrf``, a row's positions past what was found hold -1."""
        if fusion not in FUSIONS:
            raise FtlitError(f"Unknown search {fusion!r}; the searches are {', '.join(FUSIONS)}.")
        depth = k if fusion != "rrf" else max(k, FUSION_DEPTH)
        rankings = []
        if fusion in ("dense", "rrf"):
            rankings.append(self.search(self.encoder.encode(queries, "query"), depth)[0])
        if fusion in ("bm25", "rrf"):
            rankings.append(self.bm25.search(queries, depth))
        return rankings[0] if len(rankings) == 1 else reciprocal_rank_fusion(rankings, depth=k)


def dense_search(queries: np.ndarray, passages: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` best passages by the dot product of their embeddings (``[queries, dim]``, ``[passages,
    dim]``), best first: the passage indices and their scores, each ``[queries, min(k, passages)]``; equal scores
    keep the lower index first."""
    check_range("k", k, minimum=1)
    depth = min(k, len(passages))
    indices = np.empty((len(queries), depth), dtype=np.int64)
    scores = np.empty((len(queries), depth), dtype=np.float32)
    for start in range(0, len(queries), QUERY_CHUNK):
        rows = slice(start, start + QUERY_CHUNK)
        chunk = queries[rows] @ passages.T
        indices[rows] = top_k(chunk, k)
        scores[rows] = np.take_along_axis(chunk, indices[rows], axis=1)
    return indices, scores
