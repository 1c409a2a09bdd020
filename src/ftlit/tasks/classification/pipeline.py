"""``transformers.pipeline("multi-label-classification", model=export_folder)``: the labels an ftlit multi-label
export predicts, above the thresholds it was tuned with, exactly as ``ftlit predict`` writes them.

Hugging Face's own ``pipeline("text-classification", top_k=None)`` gives every label's sigmoid score but knows no
thresholds. Importing ftlit registers this one.
"""

import torch
from transformers import AutoModelForSequenceClassification, TextClassificationPipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ftlit.tasks.classification.metrics import decision_probabilities
from ftlit.tasks.classification.thresholds import DEFAULT_THRESHOLD

TASK = "multi-label-classification"


class MultiLabelClassificationPipeline(TextClassificationPipeline):
    """``classify(text)`` (or a list of texts) → ``{"labels": [...], "probabilities": {label: p}}``: the labels
    whose probability is above their threshold — the export's ``config.thresholds``, else 0.5, or ``thresholds=``
    (one per label) given to the call."""

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        return results[0] if isinstance(inputs, str) else results  # one text, one result (not a list of one)

    def _sanitize_parameters(self, thresholds: list[float] | None = None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        return preprocess, forward, {"thresholds": thresholds}

    def postprocess(self, model_outputs: dict, thresholds: list[float] | None = None) -> dict:
        logits = model_outputs["logits"][0].float()
        config = self.model.config
        names = [config.id2label[i] for i in range(len(logits))]
        thresholds = thresholds or getattr(config, "thresholds", None) or [DEFAULT_THRESHOLD] * len(names)
        if len(thresholds) != len(names):
            raise ValueError(f"thresholds: {len(thresholds)} given for {len(names)} labels {names}.")
        chosen = decision_probabilities(logits, torch.tensor(thresholds, dtype=torch.float64)) > 0.5
        return {
            "labels": [name for name, on in zip(names, chosen.tolist()) if on],
            "probabilities": dict(zip(names, logits.sigmoid().tolist())),
        }


PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=MultiLabelClassificationPipeline, pt_model=AutoModelForSequenceClassification, type="text"
)
