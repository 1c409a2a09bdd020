"""Tag schemes: detection, IOB1 → IOB2, repair of I- openings, and the entities conlleval reads."""

import pytest

from ftlit.tasks.token_classification.tags import (
    broken_openings,
    detect_scheme,
    entities,
    in_scheme,
    inside_tag,
    iob1_to_iob2,
    is_valid_tag,
    label_list,
    off_scheme,
    written_in,
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


def test_the_scheme_most_sentences_are_written_in_is_the_data_s():
    assert [written_in(t) for t in (["B-PER", "I-PER"], ["O", "S-LOC"], ["O"], [])] == ["IOB", "BIOES", None, None]
    mixed = [["B-ORG", "I-ORG"], ["O"], ["S-ORG"], ["B-LOC"]]
    assert detect_scheme(mixed) == "IOB2" and detect_scheme([*mixed, ["S-PER"], ["B-PER", "E-PER"]]) == "BIOES"
    assert detect_scheme([["I-PER", "O"], ["S-PER"]]) == "IOB1"  # a tie stays IOB; IOB1 seen in its sentences
    assert off_scheme(["S-ORG"], "IOB2") and off_scheme(["B-ORG", "I-ORG"], "BIOES")
    assert not off_scheme(["O"], "BIOES") and not off_scheme(["I-ORG"], "IOB1")


@pytest.mark.parametrize(
    ("tags", "iob2", "bioes"),
    [
        (["S-PER", "O", "B-ORG", "I-ORG", "E-ORG"], ["B-PER", "O", "B-ORG", "I-ORG", "I-ORG"], None),
        (["B-PER", "B-PER", "I-LOC"], ["B-PER", "B-PER", "B-LOC"], ["S-PER", "S-PER", "S-LOC"]),
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], ["B-PER", "E-PER", "O"]),
        (["O", "O"], ["O", "O"], ["O", "O"]),
    ],
)
def test_a_sentence_rewritten_in_another_scheme_keeps_its_entities(tags, iob2, bioes):
    for scheme, expected in (("IOB2", iob2 or tags), ("BIOES", bioes or tags)):
        assert in_scheme(tags, scheme) == expected
        assert entities(in_scheme(tags, scheme)) == entities(tags)


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
