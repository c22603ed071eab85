"""The labeling loop: pick the posts the model is least sure of, have people correct its
label in Label Studio, and turn their annotations into training data (`brandmon label`).

Pure cores (dedup, select, agreement, split, tasks) with thin I/O shells (sources, client,
server, commands); see docs/labeling.md.
"""
