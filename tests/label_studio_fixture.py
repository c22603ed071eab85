"""pytest plugin (listed in tests/conftest.py): a real Label Studio on loopback, started once
per test session by `brandmon label serve` from its own venv, for the labeling integration
tests (tests/integration/test_label_studio.py, test_model_lifecycle_kafka.py).

Tests that use it are marked `server` (or `kafka`, when they need a broker too), so that
`pytest -m "not kafka and not server"` leaves them out; tests/conftest.py enforces it.

Skipped only where Label Studio's venv is absent (`make label-studio` creates it; `make test`
does so first, so CI runs these tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import require_mark

VENV = Path(
    os.environ.get("BRANDMON_LABEL_STUDIO_VENV", "~/.cache/brandmon/label-studio-venv")
).expanduser()
#: The admin's legacy API token and password, set by `serve` when it creates the admin.
TOKEN = "brandmon0test0token0000000000000000000000"
PASSWORD = "brandmon-test-password"


@dataclass(frozen=True)
class Server:
    url: str
    env: dict[str, str]
    start_seconds: float


def _wait_for_token(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    from brandmon.model_export.labeling.server import START_TIMEOUT

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`brandmon label serve` exited early:\n{log.read_text()[-3000:]}")
        try:
            headers = {"Authorization": f"Token {TOKEN}"}
            if httpx.get(f"{url}/api/current-user/whoami", headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    pytest.fail(f"Label Studio not ready in {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`brandmon label serve` on a free loopback port with a fresh data folder; `env` holds
    the BRANDMON_LABEL_STUDIO_* variables the other `label` commands need to reach it."""
    from brandmon.broker import free_port

    # the test asking first starts it: tests/conftest.py's collection check names the others
    require_mark("Label Studio (`brandmon label serve`)", "server", "kafka")
    if not (VENV / "bin" / "label-studio").is_file():
        pytest.skip(f"no Label Studio venv at {VENV}: create it with `make label-studio`")
    folder = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "BRANDMON_LABEL_STUDIO_URL": url,
        "BRANDMON_LABEL_STUDIO_TOKEN": TOKEN,
        "BRANDMON_LABEL_STUDIO_PASSWORD": PASSWORD,
        "BRANDMON_LABEL_STUDIO_VENV": str(VENV),
        "BRANDMON_LABEL_STUDIO_DATA_DIR": str(folder / "data"),
    }
    log = folder / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "brandmon.cli", "label", "serve"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_token(url, process, log)
        yield Server(url, env, time.monotonic() - started)
    finally:
        process.terminate()  # serve stops its label-studio child on SIGTERM
        process.wait(60)
    with httpx.Client() as client, pytest.raises(httpx.HTTPError):
        client.get(f"{url}/health", timeout=2.0)  # the server went with it
