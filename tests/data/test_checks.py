"""Row-level checks: what a model can learn from."""

import pytest

from ftlit.data.checks import check_learnable
from ftlit.errors import FtlitError


@pytest.mark.parametrize("targets", [["pos", "neg"], [2.5, 2.5, 3.0], [(), ("joy",)], iter(["O", "O", "B-PER"])])
def test_two_different_targets_are_learnable(targets):
    check_learnable(targets, "'t.jsonl'", "label")


@pytest.mark.parametrize(
    ("targets", "shown"), [(["pos"] * 3, "'pos'"), ([2.5, 2.5], "2.5"), ([("joy",), ("joy",)], "('joy',)")]
)
def test_one_target_for_every_row_is_refused(targets, shown):
    with pytest.raises(FtlitError) as refused:
        check_learnable(targets, "'t.jsonl'", "label")
    assert str(refused.value).startswith(f"'t.jsonl': every label of the training data is {shown}: there is nothing")


def test_no_target_at_all_is_left_to_the_checks_that_name_it():
    check_learnable([], "'t.jsonl'", "label")
