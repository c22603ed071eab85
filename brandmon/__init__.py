"""brandmon: real-time brand monitoring on Kafka with an ONNX sentiment model."""

__version__ = "0.1.0"
