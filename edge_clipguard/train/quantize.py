"""INT8 fake quantization with NVIDIA ModelOpt: PTQ calibration, QAT, and quantizer state.

``mtq.quantize`` swaps Linear/Conv modules for quantized twins whose TensorQuantizers do
"fake" quantization (quantize -> dequantize in float) so PyTorch sees INT8 rounding, QAT can
fine-tune through it, and ``torch.onnx.export`` writes QuantizeLinear/DequantizeLinear pairs
for TensorRT. The recipe is ModelOpt's INT8 default (weights per output channel, activations
per tensor, max calibration) plus our float islands: LayerNorm and the score head stay in
float (the 0-10 regression is the product's headline number and is tiny), the text tower's
activations stay float (weight-only INT8 there), and the attention matmuls stay float unless asked for
(``attention_matmuls``; Softmax itself always computes in float).
The default config also silently disables names like ``*visual*`` / ``*vision_model*``; our
modules are named so none of them match, and ``quantized_fraction`` lets tests prove the image
tower really is quantized.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
from collections.abc import Callable
from types import SimpleNamespace

import torch

from ..quiet import third_party_noise

# Appended to ModelOpt's INT8 default: later entries win. The text tower keeps INT8 weights but
# float activations (weight-only): BERT activations have outliers that per-tensor max-calibrated
# INT8 crushes. Measured on the base model: the score moved by 0.137 (mean, 0-10 scale) with
# text-tower activations quantized, by 0.018 without; the image tower alone costs 0.021.
FLOAT_ISLANDS = (
    {"quantizer_name": "*", "parent_class": "nn.LayerNorm", "enable": False},
    {"quantizer_name": "*score_head*", "enable": False},
    # The refer head's logit is added to every heatmap cell of its class: an INT8 error there moves
    # all of that class's confidences at once. It is one 256x6 Linear; float costs nothing.
    {"quantizer_name": "*refer_head*", "enable": False},
    {"quantizer_name": "*text_tower*input_quantizer", "enable": False},
)
CALIBRATION_METHOD = "max"  # ModelOpt's default: amax = max |x| seen over the calibration batches


def modelopt() -> SimpleNamespace:
    """ModelOpt's modules (``mtq``, ``mto``, ``TensorQuantizer``), imported quietly: the import makes
    torch log "No CUDA runtime is found, using CUDA_HOME=..." (torch.utils.cpp_extension) and raises a
    TorchScript FutureWarning and a "transformers X is not tested" UserWarning, none actionable here
    (``-v`` shows them)."""
    with third_party_noise(messages=("",), loggers=("torch.utils.cpp_extension",)):
        import modelopt.torch.opt as mto
        import modelopt.torch.quantization as mtq
        from modelopt.torch.quantization.nn import TensorQuantizer
    return SimpleNamespace(mtq=mtq, mto=mto, TensorQuantizer=TensorQuantizer)


TEXT_ACTIVATIONS_ISLAND = FLOAT_ISLANDS[-1]


# The attention matmuls' inputs (q, kᵀ, v and the softmax's probabilities): per tensor, as activations are. They
# exist only where ``attention_matmuls_quantized`` registered the fusion's quantized attention.
ATTENTION_MATMUL_QUANTIZERS = ("q_bmm_quantizer", "k_bmm_quantizer", "v_bmm_quantizer", "p_bmm_quantizer")
ATTENTION_MATMUL_ENTRY = {"quantizer_name": "*_bmm_quantizer", "cfg": {"num_bits": 8, "axis": None}}


def int8_config(text_activations: bool = False) -> dict:
    """ModelOpt INT8 config with our float islands (a fresh copy each call). ``text_activations``: quantize the
    text tower's Linear inputs too (full INT8 there: for QAT, which can learn around BERT's outliers). The
    attention-matmul entry is always there; it only matters where those quantizers were inserted."""
    mtq = modelopt().mtq
    cfg = copy.deepcopy(mtq.INT8_DEFAULT_CFG)
    islands = [island for island in FLOAT_ISLANDS if not (text_activations and island is TEXT_ACTIVATIONS_ISLAND)]
    cfg["quant_cfg"] = [*cfg["quant_cfg"], copy.deepcopy(ATTENTION_MATMUL_ENTRY), *copy.deepcopy(islands)]
    cfg["algorithm"] = CALIBRATION_METHOD
    return cfg


def calibration_loop(dataset, batches: int, batch_size: int) -> Callable[[torch.nn.Module], None]:
    """A ModelOpt ``forward_loop``: run the model over the first ``batches`` batches of ``dataset``."""
    from ..data.dataset import collate

    def forward_loop(model: torch.nn.Module) -> None:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
        device = next(model.parameters()).device
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if batches and i >= batches:
                    break
                model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                      batch["pixel_values"].to(device))

    return forward_loop


def _same_padding_conv_class() -> type | None:
    try:
        from timm.layers import Conv2dSame
    except ImportError:  # a timm without it has no such layers to quantize
        return None
    return Conv2dSame


@contextlib.contextmanager
def same_padding_convs_quantized(enabled: bool = True):
    """ModelOpt swaps modules for quantized twins by exact type; timm's ``Conv2dSame`` (EfficientNet-Lite's
    TF-style "same" padding: the stem and the stride-2 depthwise convs) subclasses nn.Conv2d but is not in its
    registry, so those five convs stayed float, fp32 weights and all, in every INT8 graph. Inside this context
    ModelOpt treats them as the Conv2d they are (input and weight quantizers; the padding runs between the input's
    Q/DQ and the conv). ``enabled=False`` keeps them float: what a checkpoint quantized before this expects."""
    cls = _same_padding_conv_class()
    if not enabled or cls is None:
        yield
        return
    mtq = modelopt().mtq
    from modelopt.torch.quantization.nn.modules.quant_conv import _QuantConv2d

    quantized = type("QuantConv2dSame", (_QuantConv2d,), {})
    mtq.register(original_cls=cls, quantized_cls=quantized)
    try:
        yield
    finally:
        mtq.unregister(cls)


@functools.cache
def _quant_cross_attention_class() -> type:
    """The fusion's ``CrossAttention`` with INT8 fake quantizers on both attention matmuls' inputs: q and kᵀ for
    q·kᵀ, the softmax's probabilities and v for p·v. Each Q/DQ sits right before its MatMul (kᵀ is quantized after
    the transpose, so the DequantizeLinear feeds the MatMul directly), the form TensorRT's explicit quantization
    needs to run a matmul in INT8 (not built on TensorRT here: no GPU); OpenVINO reads the pairs as FakeQuantize on
    the MatMul inputs. Softmax itself stays float: it reads the float logits."""
    TensorQuantizer = modelopt().TensorQuantizer
    from modelopt.torch.quantization.nn import QuantModule

    class QuantCrossAttention(QuantModule):
        def _setup(self):
            for name in ATTENTION_MATMUL_QUANTIZERS:
                setattr(self, name, TensorQuantizer())

        def attend(self, q, k, v, bias):
            logits = torch.matmul(self.q_bmm_quantizer(q), self.k_bmm_quantizer(k.transpose(-1, -2)))
            if bias is not None:
                logits = logits + bias.to(logits.dtype)
            return torch.matmul(self.p_bmm_quantizer(self.softmax(logits)), self.v_bmm_quantizer(v))

    return QuantCrossAttention


@contextlib.contextmanager
def attention_matmuls_quantized(enabled: bool = True):
    """Inside this context ModelOpt swaps the fusion's ``CrossAttention`` for its quantized twin (activation Q/DQ
    on both attention matmuls' inputs); ``enabled=False`` leaves attention float, what older checkpoints expect.
    Opt-in (``train --qat --qat-attention-matmuls``): the probabilities are quantized per tensor with max
    calibration, so a probability under ~1/254 of the largest rounds to zero; QAT is what has to make up for it."""
    if not enabled:
        yield
        return
    from ..model.fusion import CrossAttention

    mtq = modelopt().mtq
    mtq.register(original_cls=CrossAttention, quantized_cls=_quant_cross_attention_class())
    try:
        yield
    finally:
        mtq.unregister(CrossAttention)


def quantize_int8(model: torch.nn.Module, forward_loop: Callable[[torch.nn.Module], None],
                  text_activations: bool = False, same_padding_convs: bool = False,
                  attention_matmuls: bool = False) -> torch.nn.Module:
    """Insert INT8 fake quantizers into ``model`` (in place) and calibrate them with ``forward_loop``.
    ModelOpt prints "Inserted N quantizers" while doing it; ``quantized_fraction`` says it better.
    ``same_padding_convs``: quantize those too (opt-in: on the demo's briefly trained model the exported graph's
    confidences then moved 0.29 from the PyTorch reference under ONNX Runtime, above export's tolerance; on the
    900-step reference they passed, see docs/benchmarks.md)."""
    config = int8_config(text_activations)
    with third_party_noise(stdout=True), same_padding_convs_quantized(same_padding_convs), \
            attention_matmuls_quantized(attention_matmuls):
        return modelopt().mtq.quantize(model, config, forward_loop)


def _saved_quantizer_names(state: dict) -> list[str]:
    """The quantizer names in a saved ModelOpt layout (empty for a state this code cannot read)."""
    try:
        return [key for _, data in state["modelopt_state_dict"] for key in data["metadata"]["quantizer_state"]]
    except (KeyError, TypeError, ValueError):
        return []


def quantizes_same_padding_convs(model: torch.nn.Module, state: dict) -> bool:
    """Whether the saved quantizer layout ``state`` has quantizers on ``model``'s same-padding convs (checkpoints
    quantized since they were registered) or not (older ones)."""
    cls = _same_padding_conv_class()
    names = [name for name, module in model.named_modules() if cls is not None and isinstance(module, cls)]
    saved = _saved_quantizer_names(state)
    return any(key.startswith(f"{name}.") for key in saved for name in names)


def quantizes_attention_matmuls(state: dict) -> bool:
    """Whether the saved quantizer layout ``state`` was made with the attention matmuls quantized."""
    return any(key.rsplit(".", 1)[-1] in ATTENTION_MATMUL_QUANTIZERS for key in _saved_quantizer_names(state))


def is_quantized(model: torch.nn.Module) -> bool:
    quantizer = modelopt().TensorQuantizer
    return any(isinstance(m, quantizer) for m in model.modules())


def modelopt_state(model: torch.nn.Module) -> dict:
    """The quantizer layout (not the weights/amax, which live in the state_dict) to store in checkpoints."""
    return modelopt().mto.modelopt_state(getattr(model, "module", model))


def restore_quantizers(model: torch.nn.Module, state: dict) -> torch.nn.Module:
    """Re-insert the quantizers described by ``state`` so a QAT checkpoint's state_dict loads (ModelOpt
    prints "Inserted N quantizers" here too)."""
    with third_party_noise(stdout=True), same_padding_convs_quantized(quantizes_same_padding_convs(model, state)), \
            attention_matmuls_quantized(quantizes_attention_matmuls(state)):
        return modelopt().mto.restore_from_modelopt_state(model, state)


def strip_quantizers(model: torch.nn.Module) -> torch.nn.Module:
    """A plain float copy of a quantized model (same weights, no quantizer modules)."""
    from ..model import build_model

    plain = build_model(model.cfg, pretrained=False)
    weights = {k: v for k, v in model.state_dict().items() if "_quantizer." not in k}
    plain.load_state_dict(weights, strict=True)
    return plain.eval()


def quant_summary(model: torch.nn.Module) -> str:
    """``mtq.print_quant_summary`` as a string."""
    mtq = modelopt().mtq
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        mtq.print_quant_summary(model)
    return buffer.getvalue()


def quantized_fraction(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """Per top-level child: (weight quantizers enabled, weight quantizers present)."""
    quantizer = modelopt().TensorQuantizer
    counts: dict[str, list[int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, quantizer) and name.endswith("weight_quantizer"):
            top = name.split(".", 1)[0]
            entry = counts.setdefault(top, [0, 0])
            entry[0] += int(module.is_enabled)
            entry[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
