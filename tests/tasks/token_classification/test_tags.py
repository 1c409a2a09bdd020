"""Tag schemes: detection, IOB1 → IOB2, repair of I- openings, and the entities conlleval reads."""

import pytest

from ftlit.tasks.token_classification.tags import (
    broken_openings,
    detect_scheme,
    entities,
    inside_tag,
    iob1_to_iob2,
    is_valid_tag,
    label_list,
)


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["B-PER", "I-PER", "O", "B-LOC"]], "IOB2"),
        ([["I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "B-ORG"]], "IOB1"),  # B- only between same-type neighbours
        ([["B-PER", "E-PER", "O", "S-LOC"]], "BIOES"),
        ([["O", "O"]], "IOB2"),
        # an I- opening among B- openings: IOB2 with an error (repaired later), not IOB1
        ([["B-PER", "O", "I-LOC"]], "IOB2"),
    ],
)
def test_detects_the_scheme(sequences, scheme):
    assert detect_scheme(sequences) == scheme


def test_iob1_becomes_iob2():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"]
    assert iob1_to_iob2(iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]


def test_broken_openings_are_i_tags_that_open_an_entity():
    assert broken_openings(["I-PER", "O", "B-LOC", "I-LOC", "I-ORG", "B-PER", "I-PER"]) == [0, 4]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
        (["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),  # adjacent entities of one type
        (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),  # an I- opens an entity (conlleval)
        (["B-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),  # a change of type closes one
        (["B-PER", "E-PER", "S-LOC", "B-ORG", "I-ORG", "E-ORG"], [("PER", 0, 1), ("LOC", 2, 2), ("ORG", 3, 5)]),
        (["I-PER"], [("PER", 0, 0)]),
        ([], []),
    ],
)
def test_entities_as_conlleval_reads_them(tags, expected):
    assert entities(tags) == expected


def test_label_list_puts_o_first_then_types_in_order():
    assert label_list([["I-PER", "B-PER", "O"], ["B-LOC", "S-LOC"]]) == ["O", "B-LOC", "S-LOC", "B-PER", "I-PER"]


@pytest.mark.parametrize("tag", ["O", "B-PER", "I-X-Y", "S-A", "E-LOC"])
def test_valid_tags(tag):
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["PER", "B", "B-", "X-PER", "o", "", 3, None, "BPER"])
def test_invalid_tags(tag):
    assert not is_valid_tag(tag)


def test_later_subwords_get_the_inside_tag_of_their_type():
    assert [inside_tag(t) for t in ["B-PER", "I-PER", "O", "S-LOC"]] == ["I-PER", "I-PER", "O", "I-LOC"]
