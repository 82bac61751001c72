"""Export: checkpoint -> bundle (validated ONNX fp32, INT8 Q/DQ, fp16, TensorRT engines, manifest.json).

``bundle_writer`` orchestrates the steps (``onnx_export``, ``fp16``, ``int8`` + ``ort_cpu_int8``,
``engine_step`` + ``tensorrt_build``); the steps share only ``types`` and the bundle contract
(``edge_clipguard.bundle``) and never import the orchestrator.
"""
