"""Prediction requests (``ftlit serve``): the fields of one request read into a data row, each problem named by
its field, so that a bad request is answered with what to fix and never reaches the model."""

from collections.abc import Mapping, Sequence

from ftlit.errors import RequestError


def check_fields(request: Mapping, known: Sequence[str]) -> None:
    """A request is a JSON object of the ``known`` fields only (a misspelt field would otherwise go unread)."""
    if not isinstance(request, Mapping):
        raise RequestError("request", f"must be a JSON object with {_listed(known)}, not {type(request).__name__}.")
    unknown = [name for name in request if name not in known]
    if unknown:
        raise RequestError(unknown[0], f"unknown field; this model reads {_listed(known)}.")


def text_field(request: Mapping, name: str) -> str:
    """The non-empty string ``request[name]``."""
    if name not in request or request[name] is None:
        raise RequestError(name, "missing: give it as a string.")
    value = request[name]
    if not isinstance(value, str):
        raise RequestError(name, f"must be a string, not {type(value).__name__}.")
    if not value.strip():
        raise RequestError(name, "is empty.")
    return _encodable(name, value)


def words_field(request: Mapping, name: str) -> list[str]:
    """The non-empty list of non-empty strings ``request[name]``."""
    value = request[name]
    if not isinstance(value, list) or not value:
        raise RequestError(name, f"must be a non-empty list of strings, not {_described(value)}.")
    bad = [i for i, word in enumerate(value) if not isinstance(word, str) or not word.strip()]
    if bad:
        raise RequestError(f"{name}[{bad[0]}]", f"must be a non-empty string, not {value[bad[0]]!r}.")
    for i, word in enumerate(value):
        _encodable(f"{name}[{i}]", word)
    return value


def _encodable(name: str, text: str) -> str:
    """``text``, which must be Unicode text: JSON's ``\\ud800`` escapes give half a character (a lone surrogate),
    which the tokenizer cannot read."""
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise RequestError(
            name, f"holds {text[error.start]!r} at character {error.start}, half of a UTF-16 pair: not text."
        ) from None
    return text


def _described(value: object) -> str:
    return "an empty list" if value == [] else type(value).__name__


def _listed(names: Sequence[str]) -> str:
    return " and ".join(repr(name) for name in names)
