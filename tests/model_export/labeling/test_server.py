"""Starting Label Studio: the pinned version, a clear error without the venv, loopback only,
and new data folders seeded from the migrated template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from brandmon.model_export.labeling.server import (
    DATABASE,
    LABEL_STUDIO_VERSION,
    TEMPLATE_DIR,
    LabelStudioNotInstalled,
    ServerConfig,
    command_line,
    environment,
    seed,
)

REPO = Path(__file__).resolve().parents[3]


def _config(venv: Path, data: Path) -> ServerConfig:
    return ServerConfig(venv, data, 8089, "admin@x.local", "password-1", "token-123456")


def test_makefile_installs_the_version_the_code_expects() -> None:
    makefile = (REPO / "Makefile").read_text()
    pinned = re.search(r"^LABEL_STUDIO_VERSION \?= (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None and pinned.group(1) == LABEL_STUDIO_VERSION


def test_missing_venv_names_the_folder_and_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(LabelStudioNotInstalled, match="make label-studio") as info:
        command_line(_config(tmp_path / "nowhere", tmp_path / "data"))
    assert str(tmp_path / "nowhere") in str(info.value)


def test_server_listens_on_loopback_with_a_legacy_token_and_no_phoning_home(
    tmp_path: Path,
) -> None:
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "label-studio").touch()
    config = _config(tmp_path / "venv", tmp_path / "data")
    args = command_line(config)
    assert args[args.index("--internal-host") + 1] == "127.0.0.1"
    assert args[args.index("--user-token") + 1] == "token-123456"
    assert "--enable-legacy-api-token" in args and "--no-browser" in args
    env = environment(config)
    assert env["LABEL_STUDIO_LATEST_VERSION_CHECK"] == "false"
    assert env["LABEL_STUDIO_COLLECT_ANALYTICS"] == "false"


def test_new_data_folder_starts_from_the_template_and_an_old_one_is_left_alone(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    (venv / TEMPLATE_DIR).mkdir(parents=True)
    (venv / TEMPLATE_DIR / DATABASE).write_bytes(b"migrated")
    assert seed(tmp_path / "new", venv)
    assert (tmp_path / "new" / DATABASE).read_bytes() == b"migrated"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / DATABASE).write_bytes(b"my projects")
    assert not seed(tmp_path / "old", venv)
    assert (tmp_path / "old" / DATABASE).read_bytes() == b"my projects"
