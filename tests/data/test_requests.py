"""A served request's text fields: what the tokenizer could not read is refused naming the field, before any
batch (a lone surrogate used to fail the whole batch with a 500)."""

import json

import pytest

from ftlit.data.requests import text_field, words_field
from ftlit.errors import RequestError


def test_an_escaped_pair_is_one_character_and_reads_as_text():
    request = json.loads('{"text": "a fine film \\ud83c\\udfac", "words": ["film", "\\ud83c\\udfac"]}')
    assert text_field(request, "text") == "a fine film 🎬"
    assert words_field(request, "words") == ["film", "🎬"]


@pytest.mark.parametrize(
    ("body", "read", "field", "detail"),
    [
        ('{"text": "\\ud800 film"}', text_field, "text", "holds '\\ud800' at character 0, half of a UTF-16 pair"),
        ('{"text": "film \\udfac"}', text_field, "text", "holds '\\udfac' at character 5"),
        ('{"words": ["film", "a\\ud83c"]}', words_field, "words[1]", "holds '\\ud83c' at character 1"),
    ],
)
def test_half_a_pair_is_refused_naming_the_field(body, read, field, detail):
    request = json.loads(body)
    with pytest.raises(RequestError) as refused:
        read(request, next(iter(request)))
    assert refused.value.field == field and refused.value.detail.startswith(detail)
