"""``transformers.pipeline("extractive-question-answering", model=export_folder)``: ftlit's windows and decoding.

transformers removed its "question-answering" pipeline in 5.x; this one takes its place for exported models and
answers exactly as ``ftlit validate``/``predict`` do. Importing ftlit registers it.
"""

from transformers import AutoModelForQuestionAnswering, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ftlit.deploy.settings import inference_settings
from ftlit.tasks.question_answering.decode import EvalWindows, best_answers, decode_candidates
from ftlit.tasks.question_answering.features import eval_features

TASK = "extractive-question-answering"
# ftlit's defaults (SquadDataModule's, QuestionAnsweringModule's), for exports that record no settings
WINDOWS = {"max_length": 384, "doc_stride": 128, "max_query_length": 64}
DECODING = {"n_best": 20, "max_answer_length": 30, "version_2_with_negative": False, "null_score_diff_threshold": 0.0}


class ExtractiveQuestionAnsweringPipeline(Pipeline):
    """``qa(question=..., context=...)`` → ``{"answer", "start", "end", "score"}`` (character offsets in context).

    Options (call or construction keywords): max_length, doc_stride, max_query_length, n_best, max_answer_length,
    version_2_with_negative, null_score_diff_threshold — by default those the model was trained with (recorded in
    its export), or ftlit's defaults for an export without them.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs=None, question: str | None = None, context: str | None = None, **kwargs):
        if inputs is None:
            inputs = {"question": question, "context": context}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        max_length=None,
        doc_stride=None,
        max_query_length=None,
        n_best=None,
        max_answer_length=None,
        version_2_with_negative=None,
        null_score_diff_threshold=None,
    ):
        # only what is given: call-time options are laid over construction-time ones
        given = {name: value for name, value in locals().items() if name != "self" and value is not None}
        return ({k: v for k, v in given.items() if k in WINDOWS}, {}, {k: v for k, v in given.items() if k in DECODING})

    def preprocess(self, inputs: dict, **given) -> dict:
        windows = inference_settings(self.model.config, given, WINDOWS)
        example = {"id": ["0"], "question": [inputs["question"]], "context": [inputs["context"]]}
        features = eval_features(example, self.tokenizer, **windows)
        names = self.tokenizer.model_input_names
        batch = self.tokenizer.pad({name: features[name] for name in names}, return_tensors="pt")
        return {"batch": dict(batch), "offsets": features["offset_mapping"], "context": inputs["context"]}

    def _forward(self, model_inputs: dict) -> dict:
        output = self.model(**model_inputs["batch"])
        return {
            "start": output.start_logits,
            "end": output.end_logits,
            "offsets": model_inputs["offsets"],
            "context": model_inputs["context"],
        }

    def postprocess(self, outputs: dict, **given) -> dict:
        decoding = inference_settings(self.model.config, given, DECODING)
        windows = EvalWindows.from_lists([0] * len(outputs["offsets"]), outputs["offsets"])
        length = windows.offsets.shape[1]
        start = outputs["start"].float().cpu().numpy()[:, :length]
        end = outputs["end"].float().cpu().numpy()[:, :length]
        candidates = decode_candidates(start, end, windows, 1, decoding["n_best"], decoding["max_answer_length"])
        answers, _ = best_answers(
            candidates,
            windows,
            [outputs["context"]],
            decoding["version_2_with_negative"],
            decoding["null_score_diff_threshold"],
        )
        answer = answers[0]
        return {"answer": answer.text, "start": answer.start, "end": answer.end, "score": answer.score}


PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=ExtractiveQuestionAnsweringPipeline, pt_model=AutoModelForQuestionAnswering, type="text"
)
