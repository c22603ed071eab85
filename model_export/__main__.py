"""`python -m brandmon.model_export CHECKPOINT --out DIR ...`: the same as `brandmon export`."""

from __future__ import annotations

import typer

from brandmon.model_export.cli import export_command


def main() -> None:
    typer.run(export_command)


if __name__ == "__main__":
    main()
