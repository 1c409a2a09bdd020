"""TokenClassificationDataModule: CoNLL files, word/tag JSON/JSONL/Parquet or Hub datasets → checked IOB2/BIOES
tags → subword features in windows (or with document context) and what decoding needs."""

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Literal

import numpy as np
from datasets import Dataset
from transformers import DataCollatorForTokenClassification

from ftlit.data.base import SplitStats, TransformerDataModule, map_rows
from ftlit.data.checks import check_learnable, column, without_rows
from ftlit.data.requests import check_fields, text_field, words_field
from ftlit.data.windows import check_stride
from ftlit.errors import FtlitError, RequestError
from ftlit.settings import check_range
from ftlit.tasks.token_classification.conll_format import DOCSTART, is_conll_file, read_conll
from ftlit.tasks.token_classification.contract import TokenContract, TokenEvalSet
from ftlit.tasks.token_classification.features import (
    SpecialTokens,
    WordReadings,
    encode_sentences,
    join_words,
    tokenize_words,
)
from ftlit.tasks.token_classification.rows import document_context, text_as_words, word_tag_rows
from ftlit.tasks.token_classification.tags import (
    OUTSIDE,
    broken_openings,
    detect_scheme,
    entities,
    in_scheme,
    inside_tag,
    iob1_to_iob2,
    is_valid_tag,
    label_list,
    off_scheme,
)

log = logging.getLogger(__name__)

HUB_DATASETS = {"conll2003": "eriktks/conll2003", "wikiann": "unimelb-nlp/wikiann"}
BOOKKEEPING = ["example_index", "owned_words", "owned_positions"]


class TokenClassificationDataModule(TransformerDataModule):
    """Named-entity recognition (any word/tag data).

    Args:
        dataset: a Hub dataset with word and tag lists: ``conll2003``, ``wikiann`` (with ``dataset_config`` the
            language, e.g. ``en``) or any other name; used only when no local file is given.
        dataset_config: the Hub dataset's configuration.
        train_file: a CoNLL file (``.txt``/``.conll``/``.iob``/``.bio``/``.tsv``: one ``word ... tag`` line per
            word, blank lines between sentences, ``-DOCSTART-`` lines between documents) or JSON/JSONL/Parquet with
            a list of words and a list of tags per row (gzip allowed).
        validation_file / test_file: the same, scored. predict_file: the same without tags, or rows with a
            ``text`` (split into words and punctuation; the output's character offsets point into it).
        words_column / tags_column: the word-list and tag-list columns of JSON/Parquet/Hub rows.
        tag_column: the tag's column in a CoNLL line (from 0, the word; negative from the end; default the last).
        tag_names: names of the tag ids, when the tags are given as ids (Hub datasets name them themselves).
        tag_scheme: ``auto`` (detected: the scheme most sentences are written in; IOB1 is converted to IOB2 and
            announced), or ``IOB1``/``IOB2``/``BIOES``.
        repair_tags: a sentence in the other scheme (BIOES among IOB2, or the reverse) is rewritten in the data's,
            and in IOB2 data an ``I-X`` that opens an entity becomes ``B-X`` (both counted in a warning); false:
            refused.
        label_all_subwords: a word's later subwords learn ``I-`` of its type instead of being ignored in the loss.
        context: ``sentence`` (each sentence alone) or ``document``: each sentence is widened with the words of its
            neighbours in its document (CoNLL ``-DOCSTART-`` documents, or a ``document`` column), which carry
            no labels, up to ``max_length`` (FLERT).
        max_length: tokens per window (≥ 8).
        doc_stride: tokens shared by consecutive windows of a sentence longer than a window (≥ 0, below a
            window's room).
        Batching, subsampling (counted in sentences) and seed: see TransformerDataModule.
    """

    column_hint = "Name yours with --data.words_column / --data.tags_column."

    def __init__(
        self,
        model_name_or_path: str,
        dataset: str | None = "conll2003",
        dataset_config: str | None = None,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        words_column: str = "tokens",
        tags_column: str = "ner_tags",
        tag_column: int = -1,
        tag_names: list[str] | None = None,
        tag_scheme: Literal["auto", "IOB1", "IOB2", "BIOES"] = "auto",
        repair_tags: bool = True,
        label_all_subwords: bool = False,
        context: Literal["sentence", "document"] = "sentence",
        max_length: int = 128,
        doc_stride: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, **kwargs)
        check_range("--data.doc_stride", doc_stride, minimum=0)  # its maximum needs the tokenizer
        if tag_names is not None and (not tag_names or not all(is_valid_tag(t) for t in tag_names)):
            raise FtlitError(f"--data.tag_names {tag_names}: each must be O or B-/I-/E-/S- followed by a type.")
        self.hub = (HUB_DATASETS.get(dataset, dataset), dataset_config) if dataset else None
        self.set_local_files(
            {"train": train_file, "validation": validation_file, "test": test_file, "predict": predict_file}
        )
        self.words_column, self.tags_column, self.tag_column = words_column, tags_column, tag_column
        self.tag_names = tag_names
        self.tag_scheme = tag_scheme
        self.repair_tags = repair_tags
        self.label_all_subwords = label_all_subwords
        self.context = context
        self.doc_stride = doc_stride
        self.scheme: str | None = None  # the scheme the data is in once checked (IOB1 data is converted to IOB2)

    # ------------------------------------------------------------------------------------------------- rows
    def read_file(self, path: str) -> Dataset:
        if is_conll_file(path):
            return read_conll(path, self.tag_column)
        return super().read_file(path)

    def required_columns(self, split: str) -> list[str]:
        return ["tokens"] if split == "predict" else ["tokens", "ner_tags"]

    def adapt_columns(self, rows: Dataset) -> Dataset:
        return word_tag_rows(rows, self.words_column, self.tags_column, self.tag_names)

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Words and tags of the same count, valid tags, in one scheme (IOB1 converted to IOB2, IOB2 errors
        repaired), empty sentences dropped; with document context, each sentence's neighbours' words."""
        checked = {split: self._checked(split, rows) for split, rows in raw.items()}
        tagged = [
            column(rows, "ner_tags") for split, rows in sorted(checked.items()) if "ner_tags" in rows.column_names
        ]
        scheme = self.tag_scheme
        if scheme == "auto" and tagged:
            scheme = detect_scheme([tags for split_tags in tagged for tags in split_tags])
            if scheme == "IOB1":
                log.warning("The tags are IOB1 (entities open with I-): converted to IOB2 (they open with B-).")
        self.scheme = "IOB2" if scheme == "IOB1" else scheme
        for split, rows in checked.items():
            if "ner_tags" not in rows.column_names:
                continue
            rows = self._in_one_scheme(split, rows, scheme)
            if scheme == "IOB1":
                rows = rows.map(
                    lambda b: {"ner_tags": [iob1_to_iob2(t) for t in b["ner_tags"]]},
                    batched=True,
                    desc="Converting IOB1 to IOB2",
                )
            elif scheme == "IOB2":
                rows = self._repaired(split, rows)
            checked[split] = rows
        if "train" in checked and "ner_tags" in checked["train"].column_names:
            tags = (tag for sentence in column(checked["train"], "ner_tags") for tag in sentence)
            check_learnable(tags, self.source("train"), "tag")
        if self.context == "document":
            checked = {split: self._with_context(split, rows) for split, rows in checked.items()}
        return checked

    def _where(self, split: str, rows: Dataset, i: int) -> str:
        """A sentence, as messages name it: its file line (CoNLL) or its row."""
        if "line" in rows.column_names:
            return f"{self.source(split)}, line {rows[i]['line']} (sentence {i + 1})"
        return f"{self.source(split)}, row {i + 1}"

    def _checked(self, split: str, rows: Dataset) -> Dataset:
        # as lists, read at once: a Dataset column read row by row costs a table lookup per row (seconds on CoNLL)
        words = column(rows, "tokens")
        for i, sentence in enumerate(words):
            if sentence is not None and not (isinstance(sentence, list) and all(isinstance(w, str) for w in sentence)):
                raise FtlitError(
                    f"{self._where(split, rows, i)}: the words must be a list of strings, not {sentence!r}."
                )
        tags = column(rows, "ner_tags") if "ner_tags" in rows.column_names else None
        for i, sentence_tags in enumerate(tags or []):
            count = len(words[i] or [])
            if not isinstance(sentence_tags, list) or len(sentence_tags) != count:
                got = f"{len(sentence_tags)} tags" if isinstance(sentence_tags, list) else repr(sentence_tags)
                raise FtlitError(f"{self._where(split, rows, i)}: {count} words but {got}. Each word needs one tag.")
            wrong = next((t for t in sentence_tags if not is_valid_tag(t)), None)
            if wrong is not None:
                raise FtlitError(
                    f"{self._where(split, rows, i)}: tag {wrong!r} is not a tag of the IOB/BIOES schemes: O, or "
                    "B-/I-/E-/S- followed by the entity type (B-PER). Fix the tag, or read another column with "
                    "--data.tag_column (CoNLL) / --data.tags_column."
                )
        empty = [i for i, sentence in enumerate(words) if not sentence]
        if empty:
            if self.empty_text == "error":
                raise FtlitError(
                    f"{self.source(split)}: {len(empty)} sentence(s) without words (first: row "
                    f"{empty[0] + 1}); drop them or use --data.empty_text skip."
                )
            log.warning("%s: dropped %d sentence(s) without words.", self.source(split), len(empty))
            rows = without_rows(rows, empty)
            if len(rows) == 0:
                raise FtlitError(f"{self.source(split)} has no sentences.")
        return rows

    def _in_one_scheme(self, split: str, rows: Dataset, scheme: str) -> Dataset:
        """The sentences written in the other family of schemes than the data's (BIOES among IOB2, or the reverse)
        rewritten in the data's, the same entities (or refused): one scheme, so no label such as ``E-ORG`` joins an
        IOB2 model."""
        off = [i for i, tags in enumerate(column(rows, "ner_tags")) if off_scheme(tags, scheme)]
        if not off:
            return rows
        target = "IOB2" if scheme == "IOB1" else scheme
        other = "IOB" if target == "BIOES" else "BIOES"
        first = self._where(split, rows, off[0])
        which = f"{len(off)} sentence(s) are tagged in {other}, the data in {scheme} (first: {first})"
        if not self.repair_tags:
            raise FtlitError(
                f"{self.source(split)}: {which}. Tag every sentence in one scheme, or let ftlit rewrite them in "
                f"{target} (the same entities) with --data.repair_tags true."
            )
        log.warning("%s: %s; rewritten in %s, the same entities.", self.source(split), which, target)
        off_rows = set(off)
        return rows.map(
            lambda tags, i: {"ner_tags": in_scheme(tags, target) if i in off_rows else tags},
            input_columns="ner_tags",
            with_indices=True,
            desc="Rewriting tags in one scheme",
        )

    def _repaired(self, split: str, rows: Dataset) -> Dataset:
        """IOB2 tags with every ``I-X`` that opens an entity turned into ``B-X`` (or refused)."""
        broken = [
            (i, positions) for i, tags in enumerate(column(rows, "ner_tags")) if (positions := broken_openings(tags))
        ]
        if not broken:
            return rows
        count = sum(len(positions) for _, positions in broken)
        i, positions = broken[0]
        first = f"first: {self._where(split, rows, i)}, word {positions[0] + 1} {rows[i]['tokens'][positions[0]]!r}"
        if not self.repair_tags:
            raise FtlitError(
                f"{self.source(split)}: {count} entit(ies) open with I- in IOB2 tags ({first}). Fix them, or let ftlit "
                "make them B- with --data.repair_tags true (or say the data is IOB1 with --data.tag_scheme IOB1)."
            )
        log.warning(
            "%s: %d entit(ies) opened with I- in IOB2 tags; repaired to B- (%s).", self.source(split), count, first
        )
        return rows.map(
            lambda b: {"ner_tags": [iob1_to_iob2(t) for t in b["ner_tags"]]}, batched=True, desc="Repairing IOB2 tags"
        )

    def _with_context(self, split: str, rows: Dataset) -> Dataset:
        if "document" not in rows.column_names:
            raise FtlitError(
                f"--data.context document needs the documents of {self.source(split)}: CoNLL files with "
                "-DOCSTART- lines, or a 'document' column. Or use --data.context sentence."
            )
        before, after = document_context(column(rows, "tokens"), column(rows, "document"), self.max_length)
        return rows.add_column("context_before", before).add_column("context_after", after)

    # ------------------------------------------------------------------------------------------------- labels
    @property
    def label_names(self) -> list[str]:
        """Trained on: the tags of the training data, O first (with ``label_all_subwords`` also the I- tag of each
        type); otherwise the tags the model was trained with."""
        if "train" in self.rows:
            tags = column(self.rows["train"], "ner_tags")
            if self.label_all_subwords:
                tags.append([inside_tag(tag) for sentence in tags for tag in sentence])
            return label_list(tags)
        config = self.model_config
        names = [config.id2label[i] for i in range(config.num_labels)]
        if not all(is_valid_tag(name) for name in names):
            raise FtlitError(
                f"The model '{self.model_name_or_path}' was not trained on entity tags (its labels: {names[:5]}): "
                "give --data.train_file, or a fine-tuned token-classification model (an ftlit export)."
            )
        return names

    # ------------------------------------------------------------------------------------------------- features
    def check_settings(self) -> None:
        check_stride(self.doc_stride, self.max_length - SpecialTokens.of(self.tokenizer).count)

    @property
    def collate(self) -> DataCollatorForTokenClassification:
        if self.pad_to_max_length:
            return DataCollatorForTokenClassification(self.tokenizer, padding="max_length", max_length=self.max_length)
        return DataCollatorForTokenClassification(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    def _encode(self, rows: Dataset, labelled: bool, desc: str) -> Dataset:
        settings = {
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "stride": self.doc_stride,
            "label2id": {name: i for i, name in enumerate(self.label_names)} if labelled else None,
            "label_all_subwords": self.label_all_subwords,
        }
        return map_rows(
            rows,
            _encode_at,
            batched=True,
            with_indices=True,
            remove_columns=rows.column_names,
            fn_kwargs=settings,
            desc=desc,
        )

    def training_features(self, rows: Dataset) -> Dataset:
        return self._encode(rows, labelled=True, desc="Building training windows").remove_columns(BOOKKEEPING)

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, TokenEvalSet]:
        labelled = "ner_tags" in rows.column_names
        features = self._encode(rows, labelled, desc="Building evaluation windows")
        words = column(rows, "tokens")
        readings = WordReadings.of([len(sentence) for sentence in words], features.select_columns(BOOKKEEPING)[:])
        if "char_spans" in rows.column_names:
            texts, spans = (
                column(rows, "text"),
                [[tuple(s) for s in sentence] for sentence in column(rows, "char_spans")],
            )
        else:
            texts, spans = zip(*map(join_words, words)) if words else ((), ())
        eval_set = TokenEvalSet(
            split,
            num_examples=len(rows),
            num_features=len(features),
            words=words,
            tags=column(rows, "ner_tags") if labelled else None,
            readings=readings,
            texts=list(texts),
            char_spans=list(spans),
        )
        return features.remove_columns(BOOKKEEPING), eval_set

    def build_contract(self, eval_sets: dict[str, TokenEvalSet]) -> TokenContract:
        return TokenContract(
            self.max_length, tuple(self.validation_names), eval_sets, self.label_names, self.doc_stride
        )

    def request_row(self, request: Mapping) -> dict:
        """``{"text": …}`` (split into words as a predict file's texts are) or ``{"words": [...]}``."""
        check_fields(request, ["text", "words"])
        if ("text" in request) == ("words" in request):
            raise RequestError("text", "give a 'text' (a string) or its 'words' (a list of strings), one of them.")
        if "text" in request:
            row = {"text": text_field(request, "text"), **text_as_words({"text": request["text"]})}
        else:
            words = words_field(request, "words")
            text, spans = join_words(words)
            row = {"text": text, "tokens": words, "char_spans": [list(span) for span in spans]}
        field = "words" if "words" in request else "text"
        if not row["tokens"]:
            raise RequestError(field, "has no words.")
        if row["tokens"][0] == DOCSTART:  # read as a document boundary in files, not as a word
            raise RequestError(field, f"cannot begin with {DOCSTART}.")
        return row

    def example_request(self) -> dict:
        return {"text": "Ada Lovelace worked with Charles Babbage in London."}

    def split_stats(self, split: str) -> SplitStats:
        rows = self.rows[split]
        words = column(rows, "tokens")
        tags = column(rows, "ner_tags") if "ner_tags" in rows.column_names else None
        ids, _ = tokenize_words(self.tokenizer, words)
        special = SpecialTokens.of(self.tokenizer).count
        lengths = np.array([len(sentence_ids) + special for sentence_ids in ids])
        # the windows as training and evaluation build them: the words they read, counted (each is read once)
        features = self._encode(rows, labelled=False, desc="Building windows").select_columns(BOOKKEEPING)[:]
        windows = np.bincount(features["example_index"], minlength=len(rows))
        total = sum(map(len, words))
        lost = total - sum(map(len, features["owned_words"]))
        labels: Counter = Counter()
        if tags is not None:
            labels.update(kind for sentence_tags in tags for kind, _, _ in entities(sentence_tags))
        lines = [
            f"tag scheme: {self.scheme or 'none (no tags)'}; context: {self.context}",
            f"words: {total:,}, lost (read in no window): {lost}",
        ]
        if tags is not None:
            outside = sum(tag == OUTSIDE for sentence_tags in tags for tag in sentence_tags)
            lines.append(f"words outside entities (O): {outside:,} ({outside / max(total, 1):.1%})")
        lines.append(
            f"windows per sentence: max {max(windows)}, sentences in more than one: "
            f"{sum(count > 1 for count in windows)}"
        )
        problems = [f"{lost} word(s) are read in no window: their tags would be lost"] if lost else []
        return SplitStats(len(rows), lengths, dict(labels), label_lines=lines, problems=problems)


# datasets maps in batches: the batch's first index turns sentence positions into split positions
def _encode_at(examples: dict[str, list], indices: list[int], **settings) -> dict[str, list]:
    return encode_sentences(examples, example_offset=indices[0], **settings)
