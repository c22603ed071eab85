"""The locks in locks/ say exactly what every environment installs (README, "Locked installs"):
these tests fail when pyproject.toml and a lock disagree, so a dependency added, removed or
re-pinned in one is never forgotten in the other (`make lock` rewrites the locks).

No network: the locks are read as text (uv's requirements format) and checked against
pyproject.toml, the Makefile and the Label Studio version the code starts.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCKS = REPO / "locks"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

#: lock file -> the extras of pyproject.toml it holds on top of the runtime dependencies
EXTRAS = {
    "runtime.txt": (),
    "export.txt": ("export",),
    "test.txt": ("export", "test"),
    "gpu.txt": ("gpu",),
}
#: packages a lock must leave out: the GPU image installs onnxruntime-gpu instead
LEFT_OUT = {"gpu.txt": {"onnxruntime"}}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


@dataclass
class Pin:
    version: str
    hashes: int
    direct: bool  # "via brandmon (pyproject.toml)": pyproject.toml asked for it by name


def read_lock(path: Path) -> dict[str, Pin]:
    """name -> pin of a lock written by `uv pip compile --generate-hashes`."""
    pins: dict[str, Pin] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{path.name} pins {current} twice"
            pins[current] = Pin(match.group(2), 0, False)
        elif current and line.strip().startswith("--hash=sha256:"):
            pins[current].hashes += 1
        elif current and "brandmon (pyproject.toml)" in line:
            pins[current].direct = True
    return pins


def wanted(extras: tuple[str, ...]) -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, specs)}


def disagreements(lock: str, pins: dict[str, Pin]) -> list[str]:
    """Where the lock `lock` (its pins) and pyproject.toml disagree, one line each."""
    problems = []
    left_out = LEFT_OUT.get(lock, set())
    asked = wanted(EXTRAS[lock])
    for name, requirement in asked.items():
        if name in left_out:
            if name in pins:
                problems.append(f"{lock} must not hold {name}")
        elif name not in pins:
            problems.append(f"pyproject.toml needs {requirement} but {lock} lacks it")
        elif not requirement.specifier.contains(pins[name].version, prereleases=True):
            problems.append(
                f"{lock} pins {name}=={pins[name].version}, pyproject.toml asks {requirement}"
            )
    dropped = {name for name, pin in pins.items() if pin.direct} - set(asked)
    if dropped:
        problems.append(f"{lock} still installs {sorted(dropped)} for pyproject.toml")
    return problems


@pytest.mark.parametrize("lock", sorted(EXTRAS))
def test_the_lock_and_pyproject_agree(lock: str) -> None:
    problems = disagreements(lock, read_lock(LOCKS / lock))
    assert not problems, "\n".join(problems) + "\nrun `make lock` and commit locks/"


@pytest.mark.parametrize("lock", sorted(p.name for p in LOCKS.glob("*.txt")))
def test_every_pin_carries_hashes(lock: str) -> None:
    pins = read_lock(LOCKS / lock)
    assert pins, f"{lock} pins nothing"
    unhashed = sorted(name for name, pin in pins.items() if pin.hashes == 0)
    assert not unhashed, f"{lock}: no --hash for {unhashed}; installs run with --require-hashes"


def test_the_build_requirements_are_locked_where_brandmon_is_built() -> None:
    """`pip install --no-build-isolation -e .` builds with the venv's setuptools: the lock's."""
    (build,) = PYPROJECT["build-system"]["requires"]
    requirement = Requirement(build)
    for lock in EXTRAS:
        pin = read_lock(LOCKS / lock).get("setuptools")
        assert pin is not None, f"{lock} has no setuptools to build brandmon with"
        assert requirement.specifier.contains(pin.version), f"{lock}: setuptools {pin.version}"


def test_label_studio_lock_pins_the_version_brandmon_starts() -> None:
    from brandmon.model_export.labeling.server import LABEL_STUDIO_VERSION

    makefile = (REPO / "Makefile").read_text()
    assert re.search(
        rf"^LABEL_STUDIO_VERSION \?= {re.escape(LABEL_STUDIO_VERSION)}$", makefile, re.M
    )
    pins = read_lock(LOCKS / "label-studio.txt")
    assert pins["label-studio"].version == LABEL_STUDIO_VERSION
    # label-studio 1.23.2 cannot start with sentry-sdk 3 (Unknown option 'send_default_pii')
    assert int(pins["sentry-sdk"].version.split(".")[0]) < 3


def test_uv_lock_pins_the_version_the_makefile_names() -> None:
    makefile = (REPO / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert version is not None
    assert read_lock(LOCKS / "uv.txt")["uv"].version == version.group(1)


def test_a_dependency_added_to_pyproject_but_not_locked_is_a_disagreement(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "runtime.txt"
    text = (LOCKS / "runtime.txt").read_text()
    # rich dropped from the lock, as if pyproject.toml had gained it after `make lock`
    lock.write_text(re.sub(r"^rich==.*?(?=^\S)", "", text, flags=re.M | re.S))
    problems = disagreements("runtime.txt", read_lock(lock))
    assert problems == [f"pyproject.toml needs {wanted(())['rich']} but runtime.txt lacks it"]


def test_a_pin_outside_pyproject_range_and_a_dropped_dependency_are_disagreements() -> None:
    pins = read_lock(LOCKS / "runtime.txt")
    pins["typer"] = Pin("0.0.1", 1, True)
    pins["left-over"] = Pin("1.0", 1, True)
    problems = disagreements("runtime.txt", pins)
    assert len(problems) == 2
    assert "typer==0.0.1" in problems[0] and "left-over" in problems[1]
