"""TokenClassificationDataModule: the files it reads, tag schemes and repairs, document context, and the errors
that name the file, line and fix."""

import gzip
import json

import pytest
from transformers import AutoModelForTokenClassification, AutoTokenizer

from conftest import SHARED_DATA, needs_shared_data, write_jsonl
from ftlit.errors import FtlitError
from ftlit.tasks.token_classification.conll_format import read_conll
from ftlit.tasks.token_classification.data import TokenClassificationDataModule, document_context

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def write(path, text):
    path.write_text(text)
    return str(path)


def module(model, **kwargs) -> TokenClassificationDataModule:
    return TokenClassificationDataModule(model, dataset=None, max_length=32, doc_stride=8, **kwargs)


def test_conll_files_read_words_tags_documents_and_lines(tmp_path):
    path = tmp_path / "train.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write(CONLL)
    rows = read_conll(str(path)).to_dict()
    assert rows["tokens"] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert rows["ner_tags"] == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert rows["document"] == [0, 0, 1] and rows["line"] == [3, 7, 12]
    assert read_conll(str(path), tag_column=2).to_dict()["ner_tags"][0] == ["B-NP", "B-VP", "B-NP"]


def test_a_line_without_the_tag_column_names_its_line(tmp_path):
    path = write(tmp_path / "train.txt", "EU NNP B-ORG\nrejects\n")
    with pytest.raises(FtlitError, match=r"train.txt', line 2: 'rejects' has 1 column\(s\)"):
        read_conll(path)


@needs_shared_data
def test_the_real_conll_2003_files_read_as_published():
    rows = read_conll(str(SHARED_DATA / "conll2003" / "valid.txt.gz"))
    assert len(rows) == 3250 and sum(map(len, rows["tokens"])) == 51362
    assert max(rows["document"]) + 1 == 216


def test_iob1_data_is_converted_and_announced(tiny_bert, tmp_path, caplog):
    train = write(tmp_path / "train.txt", "Anna I-PER\nSmith I-PER\nmet O\nBob I-PER\n\nin O\nRome I-LOC\n")
    dm = module(tiny_bert, train_file=train, validation_file=train)
    dm.setup("fit")
    assert "IOB1" in caplog.text and dm.scheme == "IOB2"
    assert dm.rows["train"]["ner_tags"][0] == ["B-PER", "I-PER", "O", "B-PER"]
    assert dm.contract.label_names == ["O", "B-LOC", "B-PER", "I-PER"]


def test_an_inside_tag_opening_an_entity_in_iob2_data_is_repaired_with_a_count(tiny_bert, tmp_path, caplog):
    text = "Anna B-PER\nmet O\nRome I-LOC\n\nBob B-PER\n"
    train = write(tmp_path / "train.txt", text)
    dm = module(tiny_bert, train_file=train, validation_file=train)
    dm.setup("fit")
    assert "1 entit(ies) opened with I- in IOB2 tags; repaired to B- (first: " in caplog.text
    assert "line 1 (sentence 1), word 3 'Rome'" in caplog.text
    assert dm.rows["train"]["ner_tags"][0] == ["B-PER", "O", "B-LOC"]
    with pytest.raises(FtlitError, match="--data.repair_tags true"):
        module(tiny_bert, train_file=train, validation_file=train, repair_tags=False).setup("fit")


def test_a_sentence_in_another_scheme_is_rewritten_in_the_data_s_with_a_count(tiny_bert, tmp_path, caplog):
    iob2 = "".join(f"Anna B-PER\nSmith I-PER\nof O\nAcme B-ORG\nCorp I-ORG\n{i} O\n\n" for i in range(3))
    train = write(tmp_path / "train.txt", iob2 + "Bob S-PER\nof O\nAcme B-ORG\nCorp E-ORG\n")  # sentence 4: BIOES
    dm = module(tiny_bert, train_file=train, validation_file=train)
    dm.setup("fit")
    assert "1 sentence(s) are tagged in BIOES, the data in IOB2 (first: " in caplog.text
    assert "line 22 (sentence 4)); rewritten in IOB2, the same entities" in caplog.text
    assert dm.rows["train"]["ner_tags"][3] == ["B-PER", "O", "B-ORG", "I-ORG"]
    assert dm.contract.label_names == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]  # no E-ORG, no S-PER
    with pytest.raises(FtlitError, match=r"1 sentence\(s\) are tagged in BIOES.*--data.repair_tags true"):
        module(tiny_bert, train_file=train, validation_file=train, repair_tags=False).setup("fit")


def test_training_tags_that_are_all_o_are_refused(tiny_bert, tmp_path):
    train = write(tmp_path / "train.txt", "Anna O\nsings O\n\nBob O\n")
    with pytest.raises(FtlitError, match=r"every tag of the training data is 'O': there is nothing to learn"):
        module(tiny_bert, train_file=train, validation_file=train).setup("fit")


def test_a_tag_outside_the_schemes_names_file_line_and_sentence(tiny_bert, tmp_path):
    train = write(tmp_path / "train.txt", "Anna B-PER\n\nmet O\nRome LOC\n")
    with pytest.raises(FtlitError, match=r"train.txt', line 3 \(sentence 2\): tag 'LOC' is not a tag"):
        module(tiny_bert, train_file=train, validation_file=train).setup("fit")


def test_a_word_tag_count_mismatch_names_the_row(tiny_bert, tmp_path):
    rows = [{"tokens": ["Anna", "met"], "ner_tags": ["B-PER", "O"]}, {"tokens": ["Bob", "ran"], "ner_tags": ["O"]}]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(FtlitError, match=r"train.jsonl', row 2: 2 words but 1 tags"):
        module(tiny_bert, train_file=str(train), validation_file=str(train)).setup("fit")


def test_tag_ids_are_named_by_tag_names_and_refused_without_them(tiny_bert, tmp_path):
    rows = [{"words": ["Anna", "met", "Bob"], "labels": [1, 0, 1]}, {"words": ["Rome"], "labels": [3]}]
    train = str(write_jsonl(tmp_path / "train.jsonl", rows))
    columns = {"words_column": "words", "tags_column": "labels"}
    dm = module(tiny_bert, train_file=train, validation_file=train, tag_names=["O", "B-PER", "I-PER", "B-LOC"],
                **columns)  # fmt: skip
    dm.setup("fit")
    assert dm.rows["train"]["ner_tags"] == [["B-PER", "O", "B-PER"], ["B-LOC"]]
    with pytest.raises(FtlitError, match="give --data.tag_names"):
        module(tiny_bert, train_file=train, validation_file=train, **columns).setup("fit")
    with pytest.raises(FtlitError, match="Tag id 3 is not one of the 2 ids of --data.tag_names"):
        module(tiny_bert, train_file=train, validation_file=train, tag_names=["O", "B-PER"], **columns).setup("fit")


def test_document_context_takes_the_neighbours_in_the_same_document():
    sentences = [["a", "b"], ["c"], ["d", "e"], ["f"]]
    before, after = document_context(sentences, [0, 0, 0, 1], limit=2)
    assert before == [[], ["a", "b"], ["b", "c"], []]
    assert after == [["c", "d", "e"][:2], ["d", "e"], [], []]


def test_document_context_needs_documents(tiny_bert, tmp_path):
    train = str(write_jsonl(tmp_path / "train.jsonl", [{"tokens": ["Anna", "sings"], "ner_tags": ["B-PER", "O"]}]))
    with pytest.raises(FtlitError, match="--data.context document needs the documents"):
        module(tiny_bert, train_file=train, validation_file=train, context="document").setup("fit")


@pytest.fixture(scope="module")
def tiny_tagger(tiny_bert, tmp_path_factory) -> str:
    """A token-classification model as an export holds it: its tags in its config."""
    folder = tmp_path_factory.mktemp("tagger")
    tags = ["O", "B-PER", "I-PER"]
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3, id2label=dict(enumerate(tags)))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    return str(folder)


def test_predict_texts_are_split_into_words_with_their_characters(tiny_tagger, tmp_path):
    text = "Anna Smith-Jones visited Rome, Italy."
    predict = str(write_jsonl(tmp_path / "predict.jsonl", [{"text": text}]))
    dm = module(tiny_tagger, predict_file=predict)
    dm.setup("predict")
    eval_set = dm.contract.eval_sets["predict"]
    assert eval_set.words[0] == ["Anna", "Smith", "-", "Jones", "visited", "Rome", ",", "Italy", "."]
    assert [text[a:b] for a, b in eval_set.char_spans[0]] == eval_set.words[0]
    assert dm.contract.label_names == ["O", "B-PER", "I-PER"]  # without training data: the model's tags


def test_a_model_not_trained_on_tags_needs_training_data(tiny_bert, tmp_path):
    predict = str(write_jsonl(tmp_path / "predict.jsonl", [{"tokens": ["Anna"]}]))
    with pytest.raises(FtlitError, match="was not trained on entity tags"):
        module(tiny_bert, predict_file=predict).setup("predict")


def test_a_stride_too_large_for_the_window_is_refused(tiny_bert, tmp_path):
    train = str(write_jsonl(tmp_path / "train.jsonl", [{"tokens": ["Anna"], "ner_tags": ["B-PER"]}]))
    with pytest.raises(FtlitError, match="--data.doc_stride 30 must be between 0 and 29"):
        TokenClassificationDataModule(tiny_bert, dataset=None, train_file=train, max_length=32,
                                      doc_stride=30).setup("fit")  # fmt: skip


def test_json_rows_need_their_columns(tiny_bert, tmp_path):
    train = str(write_jsonl(tmp_path / "train.jsonl", [{"words": ["Anna"], "tags": ["B-PER"]}]))
    with pytest.raises(FtlitError, match=r"Column\(s\) \['tokens', 'ner_tags'\] not found .* --data.words_column"):
        module(tiny_bert, train_file=train, validation_file=train).setup("fit")
    assert json.loads((tmp_path / "train.jsonl").read_text())["words"] == ["Anna"]  # the file is untouched


def test_a_file_mixing_word_lists_and_texts_is_refused_not_half_dropped(tiny_tagger, tmp_path):
    predict = str(write_jsonl(tmp_path / "predict.jsonl", [{"tokens": ["Anna"]}, {"text": "Anna Smith"}]))
    with pytest.raises(FtlitError, match="Row 2 has a 'text' but no 'tokens'.*separate files"):
        module(tiny_tagger, predict_file=predict).setup("predict")
