"""Word/tag rows as the token classification data module reads them: its column names, tag ids named, texts
split into words, documents numbered from ``-DOCSTART-`` rows, and each sentence's document context."""

from datasets import ClassLabel, Dataset, List, Value

from ftlit.data.base import map_rows
from ftlit.data.checks import column
from ftlit.errors import FtlitError
from ftlit.tasks.token_classification.conll_format import DOCSTART
from ftlit.tasks.token_classification.features import split_words


def document_context(sentences: list[list[str]], documents: list, limit: int) -> tuple[list, list]:
    """Per sentence, the last ``limit`` words of the sentences before it in its document and the first ``limit``
    words of those after it (the sentences in file order; ``documents`` gives each one's document)."""
    before, after = [], []
    for i, document in enumerate(documents):
        words: list[str] = []
        j = i - 1
        while j >= 0 and documents[j] == document and len(words) < limit:
            words = sentences[j] + words
            j -= 1
        before.append(words[-limit:])
        words, j = [], i + 1
        while j < len(sentences) and documents[j] == document and len(words) < limit:
            words = words + sentences[j]
            j += 1
        after.append(words[:limit])
    return before, after


def word_tag_rows(rows: Dataset, words_column: str, tags_column: str, tag_names: list[str] | None) -> Dataset:
    """Rows with ftlit's columns (``tokens``, ``ner_tags``): tag ids named (by ``tag_names``, else the dataset's
    ClassLabel); ``text`` rows split into words; ``-DOCSTART-`` rows (the Hub's CoNLL keeps them) turned into
    document numbers."""
    rows = rows.rename_columns(
        {
            theirs: ours
            for ours, theirs in (("tokens", words_column), ("ner_tags", tags_column))
            if theirs != ours and theirs in rows.column_names
        }
    )
    if "tokens" not in rows.column_names and "text" in rows.column_names:
        rows = map_rows(rows, text_as_words, desc="Splitting texts into words")
    elif "text" in rows.column_names and None in column(rows, "tokens"):
        raise FtlitError(
            f"Row {rows['tokens'].index(None) + 1} has a 'text' but no {words_column!r}: a file gives either "
            "a list of words in every row or a text in every row. Put the two kinds in separate files."
        )
    if "ner_tags" in rows.column_names:
        rows = named_tags(rows, tag_names)
    if "tokens" in rows.column_names and "document" not in rows.column_names:
        rows = _documents_from_docstart(rows)
    return rows


def named_tags(rows: Dataset, names: list[str] | None) -> Dataset:
    """Tag ids as their names (``names``, else the dataset's ClassLabel names); names are left as they are."""
    feature = rows.features["ner_tags"]
    if names is None and isinstance(feature, List) and isinstance(feature.feature, ClassLabel):
        names = feature.feature.names
    sample = next((tags for tags in rows["ner_tags"][:1000] if tags), [])
    if not sample or isinstance(sample[0], str):
        return rows
    if names is None:
        raise FtlitError(
            f"The tags are ids ({sample[:5]}), and nothing names them: give --data.tag_names (the tag of id 0, "
            "of id 1, …), e.g. '[O, B-PER, I-PER, …]'."
        )

    def name(batch: dict) -> dict:
        valid = range(len(names))
        wrong = next((t for tags in batch["ner_tags"] for t in tags if type(t) is not int or t not in valid), None)
        if wrong is not None:
            raise FtlitError(
                f"Tag id {wrong!r} is not one of the {len(names)} ids of --data.tag_names (0 to {len(names) - 1})."
            )
        return {"ner_tags": [[names[t] for t in tags] for tags in batch["ner_tags"]]}

    return rows.map(name, batched=True, desc="Naming tags").cast_column("ner_tags", List(Value("string")))


def text_as_words(row: dict) -> dict:
    """A row's ``text`` as its words (``tokens``) and where each lies in the text (``char_spans``)."""
    words, spans = split_words(row["text"] or "")
    return {"tokens": words, "char_spans": [list(span) for span in spans]}


def _documents_from_docstart(rows: Dataset) -> Dataset:
    """Rows that are a lone ``-DOCSTART-`` (as the Hub's CoNLL-2003 keeps them) dropped, the others numbered by
    the document they belong to; data without them is left as it is."""
    markers = [bool(words) and words[0] == DOCSTART for words in column(rows, "tokens")]
    if not any(markers):
        return rows
    documents, document = [], -1
    for marker in markers:
        document += marker
        documents.append(max(document, 0))
    keep = [i for i, marker in enumerate(markers) if not marker]
    return rows.add_column("document", documents).select(keep)
