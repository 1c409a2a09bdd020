"""The reranker of ``ftlit serve --reranker``: a one-output sequence-classification folder, refused otherwise before
its weights load, scoring (question, passage) pairs as sentence-transformers' CrossEncoder scores them."""

import json

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


def test_pairs_are_read_at_the_length_the_export_records(tiny_bert, tmp_path):
    folder = tmp_path / "reranker"
    with_trained_head(tiny_bert, folder, num_labels=1)
    passages = ["the eiffel tower stands in paris, the capital of france, beside the seine " * 4]
    whole = Reranker(folder).scores("where is the eiffel tower?", passages)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "ftlit_inference": {"max_length": 16}}))
    ours = Reranker(folder).scores("where is the eiffel tower?", passages)
    theirs = CrossEncoder(str(folder), device="cpu", max_length=16).predict(
        [("where is the eiffel tower?", passages[0])], activation_fn=Identity()
    )
    assert ours == pytest.approx(theirs.tolist(), abs=1e-5)
    assert ours != pytest.approx(whole, abs=1e-5)  # (read whole, the passage scores otherwise)


def test_what_cannot_rerank_is_refused_with_the_reason_before_weights_load(tiny_bert, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(FtlitError, match="is not a valid JSON file"):
        check_reranker(bad)
    (bad / "config.json").write_text("{}")
    with pytest.raises(FtlitError, match="could not read its config.json"):
        check_reranker(bad)
    onnx = tmp_path / "onnx"
    with_trained_head(tiny_bert, onnx, num_labels=1)
    (onnx / "model.safetensors").rename(onnx / "model.onnx")  # (its name is all that is read)
    with pytest.raises(FtlitError, match="an ONNX export; a reranker runs with torch"):
        check_reranker(onnx)
    tagged = tmp_path / "tagged"
    with_trained_head(tiny_bert, tagged, num_labels=1)
    config = json.loads((tagged / "config.json").read_text())
    (tagged / "config.json").write_text(json.dumps({**config, "ftlit_task": "classification"}))
    with pytest.raises(FtlitError, match="an ftlit classification model; a reranker is"):
        check_reranker(tagged)
