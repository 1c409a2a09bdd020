"""A tokenising pass is named (its datasets cache) by what decides its result, the tokenizer by its encoding rules
rather than a pickle of the whole object: equal passes share a name, a change of text, settings or tokenizer does
not."""

import copy

import datasets
import pytest
from datasets import Dataset

from ftlit.data.base import map_rows
from ftlit.data.tokenizer import featurising_fingerprint, tokenizer_fingerprint


def encode(batch: dict, tokenizer, max_length: int) -> dict:
    return dict(tokenizer(batch["text"], truncation=True, max_length=max_length))


@pytest.fixture
def rows() -> Dataset:
    return Dataset.from_dict({"text": ["a wonderful film", "the plot is dreadful"]})


def name(rows: Dataset, tokenizer, max_length: int = 16) -> str | None:
    settings = {"tokenizer": tokenizer, "max_length": max_length}
    return featurising_fingerprint(rows, encode, {"batched": True, "fn_kwargs": settings})


def test_a_copy_of_the_tokenizer_names_the_same_pass_whatever_its_last_call_left_set(tokenizer, rows):
    used = copy.deepcopy(tokenizer)
    used(["a text"], truncation=True, max_length=4, padding="max_length")  # (sets the Rust tokenizer's state)
    assert tokenizer_fingerprint(tokenizer) == tokenizer_fingerprint(used)
    assert name(rows, tokenizer) == name(rows, copy.deepcopy(tokenizer)) is not None


def test_other_text_settings_or_tokenizer_rules_name_another_pass(tokenizer, rows):
    other_rows = Dataset.from_dict({"text": ["a wonderful film", "the plot is superb"]})
    shorter = copy.deepcopy(tokenizer)
    shorter.model_max_length = 8
    added = copy.deepcopy(tokenizer)
    added.add_tokens(["zebrafish"])
    names = {name(rows, tokenizer), name(other_rows, tokenizer), name(rows, tokenizer, 32), name(rows, shorter),
             name(rows, added)}  # fmt: skip
    assert len(names) == 5


def test_a_pass_without_a_tokenizer_is_left_to_datasets(rows):
    assert featurising_fingerprint(rows, encode, {"fn_kwargs": {"max_length": 16}}) is None


@pytest.fixture
def caching():
    """datasets' cache on for the test (ftlit's serving turns it off in its process, as earlier tests may have)."""
    was_on = datasets.is_caching_enabled()
    datasets.enable_caching()
    yield
    if not was_on:
        datasets.disable_caching()


def test_map_rows_reuses_the_cached_result_of_an_equal_pass(tokenizer, rows, tmp_path, caching):
    rows.save_to_disk(tmp_path / "rows")
    stored = Dataset.load_from_disk(tmp_path / "rows")  # (a dataset in memory has no cache files)
    first = map_rows(stored, encode, batched=True, fn_kwargs={"tokenizer": tokenizer, "max_length": 16})
    again = map_rows(stored, encode, batched=True, fn_kwargs={"tokenizer": copy.deepcopy(tokenizer), "max_length": 16})
    assert first.cache_files and again.cache_files == first.cache_files
    assert again["input_ids"][:] == first["input_ids"][:]
