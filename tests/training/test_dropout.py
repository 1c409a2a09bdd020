"""ftlit's CPU dropout: the same independent Bernoulli mask as torch's dropout in distribution, from torch's seeded
generator, in place of every nn.Dropout of a model trained on a CPU, and nothing changed in evaluation."""

import pytest
import torch
from lightning import Trainer
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.training.dropout import RESOLUTION, CpuDropout, keep_mask, kept_scale, use_cpu_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_element_is_kept_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    mask = keep_mask((300_000,), p)
    # each of the three 16-bit numbers taken from a random word is kept at the same rate (4 standard deviations)
    for part in range(3):
        assert mask[part::3].float().mean().item() == pytest.approx(1 - p, abs=4 * ((p * (1 - p)) / 100_000) ** 0.5)


def test_neighbouring_elements_are_independent():
    torch.manual_seed(0)
    mask = keep_mask((600_000,), 0.5).float()
    both = (mask[:-1] * mask[1:]).mean().item()  # P(kept, kept) = 0.25 for independent neighbours
    assert both == pytest.approx(0.25, abs=0.004)


def test_the_mask_has_the_requested_shape_and_repeats_under_a_seed():
    torch.manual_seed(7)
    first = keep_mask((4, 5, 7), 0.3)
    torch.manual_seed(7)
    assert first.shape == (4, 5, 7) and torch.equal(first, keep_mask((4, 5, 7), 0.3))


def test_kept_values_are_scaled_by_one_over_one_minus_p_and_the_gradient_follows_the_mask():
    torch.manual_seed(0)
    inputs = torch.full((1000,), 2.0, requires_grad=True)
    outputs = CpuDropout(0.2).train()(inputs)
    kept = outputs != 0
    assert torch.allclose(outputs[kept], torch.tensor(2.0 / 0.8))
    outputs.sum().backward()
    assert torch.allclose(inputs.grad, kept.float() / 0.8)


def test_a_drop_probability_that_rounds_to_one_drops_everything_and_is_left_to_torch():
    p = 1 - 0.4 / RESOLUTION  # rounds to RESOLUTION / RESOLUTION
    assert not keep_mask((50,), p).any()
    model = nn.Sequential(nn.Dropout(p), nn.Dropout(0.1))
    assert use_cpu_dropout(model) == 1 and type(model[0]) is nn.Dropout


def test_the_scale_keeps_the_expected_value_with_p_as_rounded():
    p = 0.123456  # 8,091 of 65,536 numbers drop
    assert kept_scale(p) == pytest.approx(1 / (1 - 8091 / RESOLUTION), rel=1e-12)


def test_evaluation_drops_nothing():
    inputs = torch.randn(64)
    assert torch.equal(CpuDropout(0.5).eval()(inputs), inputs)


def tiny_classifier(dropout: float = 0.1) -> BertForSequenceClassification:
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)  # fmt: skip
    return BertForSequenceClassification(config)


def test_every_dropout_that_drops_is_replaced_and_the_weights_are_untouched():
    model = tiny_classifier()
    weights = {name: value.clone() for name, value in model.state_dict().items()}
    torch_dropouts = sum(type(m) is nn.Dropout for m in model.modules())
    assert use_cpu_dropout(model) == torch_dropouts > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert all(m.p == 0.1 for m in model.modules() if isinstance(m, CpuDropout))
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[name], value) for name, value in weights.items())


def test_a_dropout_of_zero_is_left_alone():
    model = tiny_classifier(dropout=0.0)
    assert use_cpu_dropout(model) == 0


def test_fit_on_a_cpu_trains_with_cpu_dropout(tiny_bert, sentiment_files):
    module = SequenceClassificationModule(tiny_bert)
    data = ClassificationDataModule(tiny_bert, train_file=str(sentiment_files["train"]), text_fields=["text"])
    trainer = Trainer(max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, datamodule=data)
    dropouts = [type(m) for m in module.model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and set(dropouts) == {CpuDropout}


def test_gradient_checkpointing_recomputes_the_same_masks():
    """The recomputed forward pass draws its masks again from the restored generator: the gradients equal those of
    a run that kept its activations."""
    gradients = []
    for checkpointing, training in ((False, True), (True, True), (False, False)):
        torch.manual_seed(0)
        model = tiny_classifier(dropout=0.3).train(training)
        use_cpu_dropout(model)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        torch.manual_seed(1)
        model(input_ids=torch.randint(0, 100, (4, 12)), labels=torch.tensor([0, 1, 1, 0])).loss.backward()
        gradients.append([p.grad.clone() for p in model.parameters()])
    kept, recomputed, without_dropout = gradients
    assert all(torch.allclose(a, b) for a, b in zip(kept, recomputed, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(kept, without_dropout, strict=True))  # the masks did drop
