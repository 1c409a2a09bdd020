"""The reranker of ``ftlit serve --reranker``: a one-output sequence-classification folder, refused otherwise before
its weights load, scoring (question, passage) pairs as sentence-transformers' CrossEncoder scores them."""

import pytest
from sentence_transformers import CrossEncoder
from torch.nn import Identity

from conftest import with_trained_head
from ftlit.errors import FtlitError
from ftlit.tools.reranker import BATCH_SIZE, Reranker, check_reranker


def test_the_scores_are_the_cross_encoders_in_the_passages_order(tiny_bert, tmp_path):
    folder = with_trained_head(tiny_bert, tmp_path / "reranker", num_labels=1)
    passages = [f"passage {i} about the eiffel tower in paris" * (1 + i % 3) for i in range(BATCH_SIZE + 3)]
    ours = Reranker(tmp_path / "reranker").scores("where is the eiffel tower?", passages)
    theirs = CrossEncoder(folder, device="cpu").predict(
        [("where is the eiffel tower?", passage) for passage in passages], activation_fn=Identity()
    )
    assert len(ours) == len(passages)
    assert ours == pytest.approx(theirs.tolist(), abs=1e-5)


def test_a_folder_that_is_no_cross_encoder_is_refused_before_its_weights_load(tiny_bert, tmp_path):
    with pytest.raises(FtlitError, match="no config.json there"):
        check_reranker(tmp_path)
    with_trained_head(tiny_bert, tmp_path / "classifier", num_labels=2)
    with pytest.raises(FtlitError, match="a classifier with 2 outputs;"):
        check_reranker(tmp_path / "classifier")
    with pytest.raises(FtlitError, match="a BertModel;"):  # (a plain encoder: tiny_bert itself)
        check_reranker(type(tmp_path)(tiny_bert))
