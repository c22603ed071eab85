"""The local server's admin password and API token when none is configured.

`brandmon label serve` without BRANDMON_LABEL_STUDIO_TOKEN / _PASSWORD makes random ones
on the first start and keeps them in `<data dir>/brandmon-credentials.json` (mode 600), next
to the SQLite database they belong to; `label export` and `label import` read the token
from there when none is configured, so a local loop needs no setup.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "brandmon-credentials.json"


@dataclass(frozen=True)
class Credentials:
    token: str
    password: str


def path_in(data_dir: Path) -> Path:
    return data_dir.expanduser() / FILE_NAME


def read(data_dir: Path) -> Credentials | None:
    """The stored credentials of a data folder, or None when there are none."""
    path = path_in(data_dir)
    if not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    return Credentials(token=str(stored["token"]), password=str(stored["password"]))


def load_or_create(data_dir: Path, token: str | None, password: str | None) -> Credentials:
    """Configured values first, then stored ones, else new random ones (then stored)."""
    stored = read(data_dir)
    chosen = Credentials(
        token=token or (stored.token if stored else secrets.token_hex(20)),
        password=password or (stored.password if stored else secrets.token_urlsafe(12)),
    )
    if stored != chosen:
        path = path_in(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"token": chosen.token, "password": chosen.password}, fh)
    return chosen
