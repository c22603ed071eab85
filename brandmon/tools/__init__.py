"""Development tools: they drive the stages but no production process runs them.

- `demo`: `brandmon demo`, the whole job on one machine (broker, both workers, simulator).
- `bench`: `brandmon bench`, the classifier alone and the pipeline through Kafka.
- `simulate`: synthetic posts for `brandmon simulate`, the demo and the benchmark.
- `producers`: reading post files for `brandmon produce`.
- `scenarios`: `brandmon alerts scenarios`, the detector on seeded synthetic streams.
- `tiny_model`: a tiny random DistilBERT checkpoint that exports in seconds, for tests.
- `fake_classifier`: a deterministic classifier, so stream and alert tests need no model.

Tools may import the base and the stages; nothing in the base or a stage imports a tool
(tests/test_layers.py checks it).
"""
