"""The score stage: posts from Kafka, validated, scored by an ONNX model, to posts.scored."""
