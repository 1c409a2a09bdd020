"""``transformers.pipeline("entity-recognition", model=export_folder)``: the entities of a text (or a list of
words) of any length, found exactly as ``ftlit predict`` finds them — a tag per word from its centre-most window.
Importing ftlit registers it. (Hugging Face's ``token-classification`` pipeline loads the same export, tags
subwords rather than words, and cuts inputs at the model's limit unless given a ``stride``.)
"""

from transformers import AutoModelForTokenClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ftlit.deploy.settings import inference_settings
from ftlit.tasks.token_classification.decode import entity_records
from ftlit.tasks.token_classification.features import WordReadings, encode_sentences, join_words, split_words

TASK = "entity-recognition"
WINDOWS = {"max_length": 128, "doc_stride": 32}  # TokenClassificationDataModule's defaults
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class EntityRecognitionPipeline(Pipeline):
    """``ner("Anna lives in Rome.")`` or ``ner(words=["Anna", "lives", …])`` → ``[{"text", "type", "start", "end",
    "start_word", "end_word", "score"}, …]`` (characters in the text; for words, in the words joined by spaces).
    A list of texts is a batch, as in every pipeline. Each sentence is read alone: a model trained with
    ``--data.context document`` gets no document context here.

    Options (call or construction keywords): max_length and doc_stride: by default those the model was trained with
    (recorded in its export), or ftlit's defaults (128 and 32) for an export without them.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs=None, words: list[str] | None = None, **kwargs):
        return super().__call__({"words": list(words)} if words is not None else inputs, **kwargs)

    def _sanitize_parameters(self, max_length=None, doc_stride=None):
        # only what is given: call-time options are laid over construction-time ones
        given = {"max_length": max_length, "doc_stride": doc_stride}
        return {name: value for name, value in given.items() if value is not None}, {}, {}

    def preprocess(self, inputs: str | dict, **given) -> dict:
        windows = inference_settings(self.model.config, given, WINDOWS)
        if isinstance(inputs, dict):
            words = inputs["words"]
            text, spans = join_words(words)
        else:
            text = inputs
            words, spans = split_words(text)
        if not words:
            return {"text": text, "spans": []}
        features = encode_sentences(
            {"tokens": [words]}, self.tokenizer, windows["max_length"], windows["doc_stride"], label2id=None
        )
        batch = self.tokenizer.pad({k: v for k, v in features.items() if k in MODEL_INPUTS}, return_tensors="pt")
        return {"batch": dict(batch), "readings": WordReadings.of([len(words)], features), "text": text, "spans": spans}

    def _forward(self, model_inputs: dict) -> dict:
        if not model_inputs["spans"]:  # nothing to tag
            return model_inputs
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
