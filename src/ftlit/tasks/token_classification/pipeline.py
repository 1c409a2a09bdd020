"""``transformers.pipeline("entity-recognition", model=export_folder)``: the entities of a text (or a list of
words) of any length, found exactly as ``ftlit predict`` finds them — a tag per word from its centre-most window.
Importing ftlit registers it. (Hugging Face's ``token-classification`` pipeline loads the same export, tags
subwords rather than words, and cuts inputs at the model's limit unless given a ``stride``.)
"""

from transformers import AutoModelForTokenClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ftlit.tasks.token_classification.decode import entity_records
from ftlit.tasks.token_classification.features import WordReadings, encode_sentences, join_words, split_words

TASK = "entity-recognition"
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class EntityRecognitionPipeline(Pipeline):
    """``ner("Anna lives in Rome.")`` or ``ner(["Anna", "lives", …])`` → ``[{"text", "type", "start", "end",
    "start_word", "end_word", "score"}, …]`` (characters in the text; for words, in the words joined by spaces).

    Options (call or construction keywords): max_length (128) and doc_stride (32), ftlit's defaults.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, max_length=None, doc_stride=None):
        options = {"max_length": max_length, "stride": doc_stride}
        return {k: v for k, v in options.items() if v is not None}, {}, {}

    def preprocess(self, inputs: str | list[str], max_length: int = 128, stride: int = 32) -> dict:
        words, spans = split_words(inputs) if isinstance(inputs, str) else (list(inputs), join_words(inputs)[1])
        text = inputs if isinstance(inputs, str) else join_words(inputs)[0]
        features = encode_sentences({"tokens": [words]}, self.tokenizer, max_length, stride, label2id=None)
        batch = self.tokenizer.pad({k: v for k, v in features.items() if k in MODEL_INPUTS}, return_tensors="pt")
        return {"batch": dict(batch), "readings": WordReadings.of([len(words)], features), "text": text,
                "spans": spans}  # fmt: skip

    def _forward(self, model_inputs: dict) -> dict:
        probabilities = self.model(**model_inputs["batch"]).logits.float().softmax(-1)
        return {**model_inputs, "probabilities": probabilities}

    def postprocess(self, outputs: dict) -> list[dict]:
        if not outputs["spans"]:
            return []
        scores, ids = (t.cpu().numpy() for t in outputs["probabilities"].max(-1))
        readings: WordReadings = outputs["readings"]
        tags = [self.model.config.id2label[int(i)] for i in readings.read(ids)[0]]
        return entity_records(tags, readings.read(scores)[0].tolist(), outputs["text"], outputs["spans"])


PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=EntityRecognitionPipeline, pt_model=AutoModelForTokenClassification, type="text"
)
