"""The settings an export records for inference: given ones win, then the recorded ones, then the defaults."""

from transformers import BertConfig

from ftlit.deploy.settings import inference_settings

DEFAULTS = {"max_length": 384, "doc_stride": 128}


def test_given_settings_win_over_recorded_ones_which_win_over_defaults():
    recorded = BertConfig(ftlit_inference={"max_length": 64, "doc_stride": 16})
    assert inference_settings(recorded, {}, DEFAULTS) == {"max_length": 64, "doc_stride": 16}
    assert inference_settings(recorded, {"max_length": 256, "doc_stride": None}, DEFAULTS) == {
        "max_length": 256, "doc_stride": 16}  # fmt: skip
    assert inference_settings(BertConfig(), {"doc_stride": 32}, DEFAULTS) == {"max_length": 384, "doc_stride": 32}


def test_a_recorded_setting_the_defaults_do_not_name_is_left_out():
    recorded = BertConfig(ftlit_inference={"max_length": 64, "n_best": 5})
    assert inference_settings(recorded, {}, DEFAULTS) == {"max_length": 64, "doc_stride": 128}
