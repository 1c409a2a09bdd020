"""Entity tags, pure functions over plain lists: the tag schemes (IOB1, IOB2, BIOES), conversion to IOB2, repair of
an ``I-`` that opens an entity, and the entities a tag sequence holds, read exactly as ``conlleval`` (and seqeval's
default mode) read them."""

from collections import Counter
from collections.abc import Sequence
from typing import Literal

OUTSIDE = "O"
PREFIXES = {"B", "I", "E", "S"}

Scheme = Literal["IOB1", "IOB2", "BIOES"]
#: An entity: (type, first word, last word), both ends inclusive
Entity = tuple[str, int, int]


def split_tag(tag: str) -> tuple[str, str]:
    """``B-PER`` → (``B``, ``PER``); ``O`` → (``O``, ``""``). A tag that is neither is refused by ``is_valid_tag``."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    return tag[0], tag[2:]


def is_valid_tag(tag: object) -> bool:
    """``O``, or one of ``B- I- E- S-`` followed by a type."""
    return isinstance(tag, str) and (tag == OUTSIDE or (len(tag) > 2 and tag[0] in PREFIXES and tag[1] == "-"))


def written_in(tags: Sequence[str]) -> Literal["BIOES", "IOB"] | None:
    """The family of schemes a sentence's tags are written in: ``BIOES`` when ``E-`` or ``S-`` occur, ``IOB``
    (IOB1 or IOB2) when only ``B-``/``I-`` do, None when every tag is ``O``."""
    prefixes = {split_tag(tag)[0] for tag in tags}
    if prefixes & {"E", "S"}:
        return "BIOES"
    return "IOB" if prefixes & {"B", "I"} else None


def detect_scheme(sequences: Sequence[Sequence[str]]) -> Scheme:
    """The scheme of the data as a whole: BIOES when more sentences are written in it than in IOB (the others are
    then off the scheme: see ``written_in``); else IOB1 when some entity opens with ``I-`` and no ``B-`` ever opens
    one (in IOB1, ``B-`` only separates two adjacent entities of one type); else IOB2."""
    families = Counter(written_in(tags) for tags in sequences)
    if families["BIOES"] > families["IOB"]:
        return "BIOES"
    opens_with_inside = opens_with_begin = False
    for tags in sequences:
        if written_in(tags) == "BIOES":
            continue
        previous = OUTSIDE
        for tag in tags:
            prefix, kind = split_tag(tag)
            opens = split_tag(previous)[1] != kind
            opens_with_inside |= prefix == "I" and opens
            opens_with_begin |= prefix == "B" and opens
            previous = tag
    return "IOB1" if opens_with_inside and not opens_with_begin else "IOB2"


def off_scheme(tags: Sequence[str], scheme: Scheme) -> bool:
    """A sentence written in the other family than ``scheme``'s: ``E-``/``S-`` tags in IOB data, or entities
    not closed by ``E-``/``S-`` in BIOES data."""
    family = written_in(tags)
    return family is not None and (family == "BIOES") != (scheme == "BIOES")


def in_scheme(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """The sentence's entities (as ``entities`` reads them, in any scheme) written in ``scheme``: IOB2 (IOB1 data
    is written in IOB2 too) or BIOES. The entities stay the same."""
    written = [OUTSIDE] * len(tags)
    for kind, start, end in entities(tags):
        inside = "I" if scheme != "BIOES" or start == end else "E"
        written[start : end + 1] = [f"I-{kind}"] * (end - start) + [f"{inside}-{kind}"]
        written[start] = f"S-{kind}" if scheme == "BIOES" and start == end else f"B-{kind}"
    return written


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Every entity opens with ``B-``: an ``I-X`` that follows anything but an ``X`` tag becomes ``B-X``."""
    converted, previous = [], OUTSIDE
    for tag in tags:
        prefix, kind = split_tag(tag)
        converted.append(f"B-{kind}" if prefix == "I" and split_tag(previous)[1] != kind else tag)
        previous = tag
    return converted


def broken_openings(tags: Sequence[str]) -> list[int]:
    """Positions in IOB2 tags where an ``I-X`` opens an entity (after ``O`` or another type): a tagging error."""
    return [
        i
        for i, tag in enumerate(tags)
        if tag.startswith("I-") and split_tag(tags[i - 1] if i else OUTSIDE)[1] != split_tag(tag)[1]
    ]


def _ends(previous: str, current: str, previous_type: str, current_type: str) -> bool:
    """conlleval's endOfChunk: whether the chunk open at ``previous`` ends before ``current``."""
    return (
        previous in ("E", "S")
        or (previous in ("B", "I") and current in ("B", "S", "O"))
        or (previous not in ("O", ".") and previous_type != current_type)
    )


def _starts(previous: str, current: str, previous_type: str, current_type: str) -> bool:
    """conlleval's startOfChunk: whether a chunk starts at ``current``."""
    return (
        current in ("B", "S")
        or (previous in ("E", "S", "O") and current in ("E", "I"))
        or (current not in ("O", ".") and previous_type != current_type)
    )


def entities(tags: Sequence[str]) -> list[Entity]:
    """The entities of one sentence's tags as conlleval reads them (any scheme): an ``I-X`` after ``O`` or after
    another type opens an entity, a change of type closes one."""
    found, previous, previous_type, start = [], OUTSIDE, "", 0
    for i, tag in enumerate([*tags, OUTSIDE]):
        prefix, kind = split_tag(tag)
        if _ends(previous, prefix, previous_type, kind):
            found.append((previous_type, start, i - 1))
        if _starts(previous, prefix, previous_type, kind):
            start = i
        previous, previous_type = prefix, kind
    return found


def label_list(sequences: Sequence[Sequence[str]]) -> list[str]:
    """The tags that occur, ``O`` first and the others sorted by type, then prefix (``B-LOC I-LOC B-PER …``)."""
    seen = {tag for tags in sequences for tag in tags} - {OUTSIDE}
    return [OUTSIDE, *sorted(seen, key=lambda tag: (split_tag(tag)[1], "BIES".index(split_tag(tag)[0])))]


def inside_tag(tag: str) -> str:
    """The tag of a word's later subwords under ``label_all_subwords``: ``I-`` of the word's type (``O`` stays)."""
    return tag if tag == OUTSIDE else f"I-{split_tag(tag)[1]}"
