import pytest


@pytest.fixture(scope="session")
def tiny_int8_bundle(tmp_path_factory, tiny_checkpoint, scenes_dir):
    """fp32 + fp16 + INT8 bundle of the tiny checkpoint, PTQ-calibrated on 8 scene rows (read-only)."""
    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest

    out = tmp_path_factory.mktemp("bundles") / "tiny_int8"
    result = export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(out), int8=True, fp16=True,
                                         calib=str(scenes_dir / "train.jsonl"), calib_samples=8,
                                         val_data=str(scenes_dir / "test.jsonl"), engine="never"),
                           log=lambda *_: None)
    return result
