"""The `brandmon` command: one subcommand per user task.

Each package contributes its commands through a `register(app)` function in its own `cli`
module, which imports nothing heavy at module level, so `brandmon --help` stays fast and the
stream never needs torch.
"""

from __future__ import annotations

import typer

import alerts.cli
import model_export.cli
import stream.cli

app = typer.Typer(
    name="brandmon",
    help=(
        "Real-time brand monitoring: social posts from Kafka, scored by an ONNX sentiment "
        "model, with alerts on negative-sentiment spikes."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

stream.cli.register(app)
model_export.cli.register(app)
alerts.cli.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
