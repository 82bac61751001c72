"""Export: checkpoint -> validated ONNX (later: INT8 Q/DQ ONNX, TensorRT engines, bundle)."""
