"""ONNX export of a registered model (skl2onnx, onnxmltools) and scoring it with onnxruntime.
Nothing here is imported by a training's search: the converters load when a model is exported.
"""
