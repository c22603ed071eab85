"""The alert stage's commands on a bare typer app, as `brandmon` registers them."""

from __future__ import annotations

import typer

from brandmon.alerts.cli import register


def alerts_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """brandmon (test harness)."""

    register(app)
    return app
