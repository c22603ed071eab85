"""The `brandmon` command: one subcommand per user task.

Each package contributes its commands through a `register(app)` function in its own `cli`
module, which imports nothing heavy at module level, so `brandmon --help` stays fast and the
stream never needs torch. This is the top layer (docs/architecture.md): it and the stages'
`cli` modules may import every stage and tool, and no lower layer imports them.
"""

from __future__ import annotations

import typer

from brandmon.alerts import cli as alerts_cli
from brandmon.model_export import cli as model_export_cli
from brandmon.stream import cli as stream_cli

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

stream_cli.register(app)
model_export_cli.register(app)
alerts_cli.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
