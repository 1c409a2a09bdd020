"""From an export to inference: ONNX graphs and ONNX Runtime (generic: no task knowledge)."""
