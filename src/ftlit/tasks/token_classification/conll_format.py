"""CoNLL files: one word per line with its columns (``word POS chunk NER`` in CoNLL-2003), blank lines between
sentences, ``-DOCSTART-`` lines between documents; gzip allowed."""

from datasets import Dataset

from ftlit.data.loading import check_data_file, first_undecodable_line, open_text
from ftlit.errors import FtlitError

#: The word that marks a document boundary (its line, and the Hub's one-word sentences of it, are not sentences)
DOCSTART = "-DOCSTART-"
#: File endings read as CoNLL (``.gz`` looked through)
CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".bio", ".tsv")


def is_conll_file(path: str) -> bool:
    return path.lower().removesuffix(".gz").endswith(CONLL_SUFFIXES)


def read_conll(path: str, tag_column: int = -1) -> Dataset:
    """A CoNLL file's sentences: ``tokens`` (the first column), ``ner_tags`` (column ``tag_column``, default the
    last), ``document`` (counted from 0 at each ``-DOCSTART-``) and ``line`` (the line of the sentence's first word,
    from 1, for messages)."""
    check_data_file(path, ", ".join(CONLL_SUFFIXES))
    columns: dict[str, list] = {"tokens": [], "ner_tags": [], "document": [], "line": []}
    words: list[str] = []
    tags: list[str] = []
    document, first_line = 0, 0

    def close_sentence() -> None:
        if words:
            for name, value in zip(columns, (list(words), list(tags), document, first_line)):
                columns[name].append(value)
            words.clear()
            tags.clear()

    try:
        with open_text(path) as file:
            for number, line in enumerate(file, start=1):
                fields = line.split()
                if not fields:
                    close_sentence()
                elif fields[0] == DOCSTART:
                    close_sentence()
                    document += bool(columns["tokens"])  # the first document starts at 0
                else:
                    if len(fields) < 2 or not -len(fields) <= tag_column < len(fields) or tag_column == 0:
                        raise FtlitError(
                            f"'{path}', line {number}: {line.strip()!r} has {len(fields)} column(s), but the tag is "
                            f"read from column {tag_column} (--data.tag_column; the word is column 0). CoNLL lines "
                            "are 'word ... tag', separated by spaces or tabs."
                        )
                    if not words:
                        first_line = number
                    words.append(fields[0])
                    tags.append(fields[tag_column])
            close_sentence()
    except UnicodeDecodeError:
        line, column = first_undecodable_line(path) or (0, 0)
        raise FtlitError(f"'{path}' is not UTF-8 text: line {line}, column {column}. Convert it to UTF-8.") from None
    except (OSError, EOFError) as err:
        raise FtlitError(f"Could not read '{path}' as a CoNLL file: {type(err).__name__}: {err}") from err
    if not columns["tokens"]:
        raise FtlitError(f"'{path}' holds no sentences (CoNLL: one 'word ... tag' line per word).")
    return Dataset.from_dict(columns)
