"""A local Label Studio server, run from its own virtual environment.

Label Studio pins Django and dozens of other packages that brandmon's environment must not
see, so it lives in a venv of its own (`make label-studio` builds it with the pinned
LABEL_STUDIO_VERSION) and runs as a child process: `label-studio start` on loopback, with
SQLite in a data folder, and one admin user with a known legacy API token created
non-interactively on the first start (`--username --password --user-token
--enable-legacy-api-token`; Label Studio >= 1.17 has legacy tokens off unless the
organization is created with them on).

The token only takes effect when the user is created: a data folder made earlier with
another token keeps its own; `wait_ready` then says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from brandmon.model_export.labeling.client import LabelStudioClient, LabelStudioError

#: The Label Studio release `make label-studio` installs and the tests run against.
LABEL_STUDIO_VERSION = "1.23.2"

#: Seconds a first start may take: without a template it runs every Django migration into a
#: new SQLite file (about 1.5 minutes on 2 busy cores); from a template or an existing
#: folder it answers in about 25 s.
START_TIMEOUT = 300.0
#: An empty, fully migrated database that `make label-studio` leaves in the venv
#: (`label-studio version --data-dir <venv>/empty-data` migrates and exits). A new data
#: folder starts from a copy of it; its users, token and secret key are made on start.
TEMPLATE_DIR = "empty-data"
DATABASE = "label_studio.sqlite3"


class LabelStudioNotInstalled(LabelStudioError):
    """The venv named has no label-studio command."""


@dataclass(frozen=True)
class ServerConfig:
    """How to start one local Label Studio."""

    venv: Path
    data_dir: Path
    port: int
    username: str
    password: str
    token: str
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def executable(venv: Path) -> Path:
    """The venv's label-studio command, or LabelStudioNotInstalled saying how to make it."""
    command = venv.expanduser() / "bin" / "label-studio"
    if not command.is_file():
        raise LabelStudioNotInstalled(
            f"no Label Studio in {venv} ({command} is missing): create it with "
            f"`make label-studio` (label-studio=={LABEL_STUDIO_VERSION} in its own venv), "
            "or point --venv / BRANDMON_LABEL_STUDIO_VENV at one"
        )
    return command


def command_line(config: ServerConfig) -> list[str]:
    """The `label-studio start` command of a config."""
    return [
        str(executable(config.venv)),
        "start",
        "--no-browser",
        "--internal-host",
        config.host,
        "--port",
        str(config.port),
        "--data-dir",
        str(config.data_dir),
        "--username",
        config.username,
        "--password",
        config.password,
        "--user-token",
        config.token,
        "--enable-legacy-api-token",
        "--log-level",
        "WARNING",
    ]


def environment(config: ServerConfig) -> dict[str, str]:
    """The child's environment: no pypi version check, no analytics, no error reporting."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LABEL_STUDIO_", "SENTRY_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        PATH=f"{config.venv.expanduser() / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def seed(data_dir: Path, venv: Path) -> bool:
    """Copy the venv's migrated empty database into a data folder that has none yet."""
    target = data_dir / DATABASE
    template = venv.expanduser() / TEMPLATE_DIR / DATABASE
    if target.exists() or not template.is_file():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return True


def start(config: ServerConfig, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """Start Label Studio (not waiting for it); its output goes to `log` or to stderr."""
    args = command_line(config)
    if len(config.token) < 6 or len(config.password) < 8:
        raise LabelStudioError(
            "the Label Studio token needs at least 6 characters and the password 8: set "
            "BRANDMON_LABEL_STUDIO_TOKEN and BRANDMON_LABEL_STUDIO_PASSWORD"
        )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    seed(config.data_dir, config.venv)
    return subprocess.Popen(
        args,
        env=environment(config),
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else sys.stderr,
        stderr=subprocess.STDOUT,
        cwd=config.data_dir,
    )


def wait_ready(
    config: ServerConfig, process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT
) -> None:
    """Return once the server answers /health and accepts the token; raise otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise LabelStudioError(
                f"label-studio exited with status {process.returncode} before it was ready; "
                f"its output above says why (is port {config.port} taken?)"
            )
        try:
            if httpx.get(f"{config.url}/health", timeout=2.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise LabelStudioError(f"Label Studio at {config.url} not ready after {timeout:.0f} s")
        time.sleep(1.0)
    with LabelStudioClient(config.url, config.token) as client:
        try:
            client.whoami()
        except LabelStudioError as exc:
            raise LabelStudioError(
                f"Label Studio runs at {config.url} but refuses the token: the data folder "
                f"{config.data_dir} was set up with another one. Use that token, or a new "
                "--data-dir"
            ) from exc


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop the server: SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
