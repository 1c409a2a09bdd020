"""The inference settings an ftlit export records (``config.ftlit_inference``: windows, decoding), so that a model
is served as it was trained and evaluated."""

from transformers import PretrainedConfig


def inference_settings(config: PretrainedConfig, given: dict, defaults: dict) -> dict:
    """Each of ``defaults``' settings: the one ``given`` (not None), else the one the export recorded, else the
    default."""
    recorded = getattr(config, "ftlit_inference", None) or {}
    return {
        name: given[name] if given.get(name) is not None else recorded.get(name, default)
        for name, default in defaults.items()
    }
