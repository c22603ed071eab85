"""Model exporters and trainers: checkpoint -> validated brandmon ONNX model folder.

`export` writes validated ONNX files plus manifest.json; `train` builds the default
sentiment model from the all-MiniLM-L6-v2 weights; `evaluate` scores an exported folder
through the same ONNX classifier the stream runs. Heavy libraries (torch, transformers,
optimum) are imported inside functions, so `import brandmon.model_export` stays cheap.
"""
