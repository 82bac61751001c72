"""ModelOpt INT8 fake quantization: what gets quantized, and QAT checkpoints that restore."""

import pytest
import torch

from edge_clipguard.model.clipguard import example_inputs


@pytest.fixture()
def quantized_tiny(tiny_model, tiny_cfg):
    from edge_clipguard.train.quantize import quantize_int8

    def loop(model):
        for seed in range(3):
            model(*example_inputs(tiny_cfg, batch=2, seed=seed))

    return quantize_int8(tiny_model, loop)


def test_image_tower_weights_are_all_quantized(quantized_tiny):
    from edge_clipguard.train.quantize import quantized_fraction

    enabled, total = quantized_fraction(quantized_tiny)["image_tower"]
    assert total > 0 and enabled == total


def test_quant_summary_shows_image_tower_quantizers_enabled(quantized_tiny):
    from edge_clipguard.train.quantize import quant_summary

    lines = [line for line in quant_summary(quantized_tiny).splitlines() if line.startswith("image_tower.")]
    assert any("weight_quantizer" in line and "8 bit" in line and "axis=0" in line for line in lines)
    assert any("input_quantizer" in line and "per-tensor" in line for line in lines)


def test_score_head_stays_float(quantized_tiny):
    from edge_clipguard.train.quantize import quantized_fraction

    assert quantized_fraction(quantized_tiny)["score_head"][0] == 0


def test_layernorm_quantizers_are_disabled(quantized_tiny):
    from modelopt.torch.quantization.nn import TensorQuantizer

    norms = [m for m in quantized_tiny.modules() if isinstance(m, torch.nn.LayerNorm)]
    quantizers = [q for n in norms for q in n.modules() if isinstance(q, TensorQuantizer)]
    assert norms and not any(q.is_enabled for q in quantizers)


def test_qat_checkpoint_restores_with_its_quantizers(quantized_tiny, tiny_cfg, tiny_tokenizer, tmp_path):
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model, save_checkpoint
    from edge_clipguard.train.quantize import is_quantized, modelopt_state

    path = save_checkpoint(tmp_path / "qat.pt", model=quantized_tiny, model_cfg=tiny_cfg,
                           tokenizer_json=tiny_tokenizer.to_str(), step=1, epoch=0,
                           modelopt_state=modelopt_state(quantized_tiny))
    restored, _ = restore_model(load_checkpoint(path))
    inputs = example_inputs(tiny_cfg, batch=2, seed=7)
    with torch.no_grad():
        expected, got = quantized_tiny.eval()(*inputs)["score"], restored(*inputs)["score"]
    assert is_quantized(restored)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_strip_quantizers_gives_the_float_model_back(quantized_tiny, tiny_cfg):
    from edge_clipguard.train.quantize import is_quantized, strip_quantizers

    plain = strip_quantizers(quantized_tiny)
    assert not is_quantized(plain)
    weight = dict(quantized_tiny.named_parameters())["image_tower.stem.0.0.weight"]
    torch.testing.assert_close(dict(plain.named_parameters())["image_tower.stem.0.0.weight"], weight)


def test_train_with_qat_writes_a_quantized_checkpoint(scenes_dir, tmp_path):
    from edge_clipguard.train.checkpoint import load_checkpoint
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=2, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "run"),
                              trainer=trainer, qat=True, calib_batches=2), log=lambda *_: None)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["modelopt_state"]


def test_train_with_qat_writes_the_quant_summary_showing_the_image_tower(scenes_dir, tmp_path):
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=1, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "run"),
                              trainer=trainer, qat=True, calib_batches=1), log=lambda *_: None)
    summary = (tmp_path / "run" / "quant_summary.txt").read_text()
    assert any(line.startswith("image_tower.") and "weight_quantizer" in line and "8 bit" in line
               for line in summary.splitlines())


def _text_input_quantizers(model):
    """The activation quantizer of every Linear of the text tower."""
    return [m.input_quantizer for name, m in model.named_modules()
            if name.startswith("text_tower") and isinstance(m, torch.nn.Linear) and hasattr(m, "input_quantizer")]


def test_text_tower_activations_stay_float_by_default(quantized_tiny):
    quantizers = _text_input_quantizers(quantized_tiny)
    assert quantizers and not any(q.is_enabled for q in quantizers)


def test_qat_text_activations_quantizes_every_text_linear_input(tiny_cfg):
    from edge_clipguard.model import build_model
    from edge_clipguard.train.quantize import quantize_int8

    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    quantize_int8(model, lambda m: m(*example_inputs(tiny_cfg, batch=2, seed=0)), text_activations=True)
    quantizers = _text_input_quantizers(model)
    assert quantizers and all(q.is_enabled for q in quantizers)


@pytest.fixture(scope="module")
def base_pair():
    """(config, a fresh untrained base model factory): base's EfficientNet-Lite has timm's same-padding convs."""
    from edge_clipguard.config import load_config
    from edge_clipguard.model import build_model

    cfg = load_config("base")
    return cfg, lambda: build_model(cfg, pretrained=False).eval()


def _same_padding_convs(model):
    from timm.layers import Conv2dSame

    return [m for m in model.modules() if isinstance(m, Conv2dSame)]


def _roundtrip(model, cfg, tiny_tokenizer, tmp_path):
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model, save_checkpoint
    from edge_clipguard.train.quantize import modelopt_state

    path = save_checkpoint(tmp_path / "qat.pt", model=model, model_cfg=cfg, tokenizer_json=tiny_tokenizer.to_str(),
                           step=1, epoch=0, modelopt_state=modelopt_state(model))
    return restore_model(load_checkpoint(path))[0]


def test_same_padding_convs_stay_float_by_default(base_pair):
    from edge_clipguard.train.quantize import quantize_int8

    cfg, build = base_pair
    model = quantize_int8(build(), lambda m: m(*example_inputs(cfg, batch=1)))
    assert not any(hasattr(c, "weight_quantizer") for c in _same_padding_convs(model))


def test_the_stem_and_stride_2_same_padding_convs_are_quantized_when_asked(base_pair, tiny_tokenizer, tmp_path):
    from edge_clipguard.train.quantize import quantize_int8

    cfg, build = base_pair
    model = quantize_int8(build(), lambda m: m(*example_inputs(cfg, batch=1)), same_padding_convs=True)
    convs = _same_padding_convs(model)
    assert len(convs) == 5 and all(c.weight_quantizer.is_enabled and c.input_quantizer.is_enabled for c in convs)
    restored = _roundtrip(model, cfg, tiny_tokenizer, tmp_path)
    amax = [c.weight_quantizer.amax for c in _same_padding_convs(restored)]
    assert all(a is not None for a in amax) and torch.equal(amax[0], convs[0].weight_quantizer.amax)


def test_a_qat_checkpoint_from_before_restores_with_those_convs_float(base_pair, tiny_tokenizer, tmp_path):
    from edge_clipguard.train.quantize import int8_config, modelopt, same_padding_convs_quantized

    cfg, build = base_pair
    model = build()
    with same_padding_convs_quantized(False):  # how every QAT checkpoint was quantized until now
        modelopt().mtq.quantize(model, int8_config(), lambda m: m(*example_inputs(cfg, batch=1)))
    restored = _roundtrip(model, cfg, tiny_tokenizer, tmp_path)  # strict load: no missing quantizer state
    assert not any(hasattr(c, "weight_quantizer") for c in _same_padding_convs(restored))


def _attention_quantizers(model):
    from edge_clipguard.train.quantize import ATTENTION_MATMUL_QUANTIZERS

    return [getattr(m, name) for m in model.modules() for name in ATTENTION_MATMUL_QUANTIZERS if hasattr(m, name)]


@pytest.fixture()
def attention_quantized_tiny(tiny_cfg):
    from edge_clipguard.model import build_model
    from edge_clipguard.train.quantize import quantize_int8

    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    return quantize_int8(model, lambda m: m(*example_inputs(tiny_cfg, batch=2, seed=0)), attention_matmuls=True)


def test_attention_matmuls_stay_float_by_default(quantized_tiny):
    assert _attention_quantizers(quantized_tiny) == []


def test_attention_matmul_inputs_are_quantized_per_tensor_when_asked(attention_quantized_tiny, tiny_cfg):
    quantizers = _attention_quantizers(attention_quantized_tiny)
    layers = tiny_cfg.fusion.num_layers
    assert len(quantizers) == 4 * 2 * layers  # q, k, v, p in both directions of every fusion layer
    assert all(q.is_enabled and q.amax is not None and q.amax.numel() == 1 for q in quantizers)


def test_probability_quantizer_calibrates_to_at_most_one(attention_quantized_tiny):
    probabilities = [m.p_bmm_quantizer for m in attention_quantized_tiny.modules() if hasattr(m, "p_bmm_quantizer")]
    assert probabilities and all(0 < float(q.amax) <= 1.0 for q in probabilities)


def test_attention_matmul_quantizers_change_the_output(attention_quantized_tiny, tiny_cfg):
    inputs = example_inputs(tiny_cfg, batch=2, seed=3)
    with torch.no_grad():
        quantized = attention_quantized_tiny(*inputs)["score"]
        for q in _attention_quantizers(attention_quantized_tiny):
            q.disable()
        plain = attention_quantized_tiny(*inputs)["score"]
    assert not torch.equal(quantized, plain)


def test_a_checkpoint_with_quantized_attention_restores_with_it(attention_quantized_tiny, tiny_cfg, tiny_tokenizer,
                                                                tmp_path):
    restored = _roundtrip(attention_quantized_tiny, tiny_cfg, tiny_tokenizer, tmp_path)
    inputs = example_inputs(tiny_cfg, batch=2, seed=5)
    with torch.no_grad():
        expected, got = attention_quantized_tiny(*inputs)["score"], restored(*inputs)["score"]
    assert len(_attention_quantizers(restored)) == len(_attention_quantizers(attention_quantized_tiny))
    torch.testing.assert_close(got, expected)
