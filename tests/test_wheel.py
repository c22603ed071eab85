"""The wheel is a product: built from the source tree without a deprecation warning, holding
only the `brandmon` package with the default model and Kafka's POMs inside it, and, installed
into a fresh environment outside the checkout, running `brandmon demo` to the end.

Time: about a minute, most of it the demo (a broker of its own, two workers loading the model,
ten seconds of posts). Kafka's jars come from the cache that `make test` fills (`kafka-jars`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

#: What `pip wheel .` reads: the project metadata, the packages (brandmon/ links the stages in)
#: and the package data the links in brandmon/ point at.
SOURCES = ("pyproject.toml", "README.md", "brandmon", "stream", "alerts", "model_export")
DATA = ("models/brandmon-sentiment-minilm", "deploy/kafka")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation")
#: The dependencies come from this environment (see the install test), so none are fetched.
PIP_INSTALL = ("-q", "--no-deps", "--no-index", "--ignore-installed")
#: The shortest demo: 10 s of 20 posts/s, once its broker and both workers are up.
DEMO = ("demo", "--duration", "10", "--rate", "20")
#: What setuptools and pip print when the project configuration is out of date.
DEPRECATION = re.compile(r"deprecat|SetuptoolsWarning|BuildBackendWarning", re.IGNORECASE)


def _run(command: list[str], cwd: Path, timeout: float, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env
    done = subprocess.run(
        command,
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The built wheel and the build's output.

    Built from a copy of the tree, so the build's own build/ and *.egg-info never land in the
    checkout (other runs may be building there at the same time). --no-build-isolation: the
    build uses this environment's setuptools (the pyproject pin, >= 77) instead of fetching
    one, so the check runs offline too.
    """
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES + DATA:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    output = _run(
        [*PIP_WHEEL, "--wheel-dir", str(dist), str(src)],
        cwd=src,
        timeout=300,
    )
    (built,) = dist.glob("brandmon-*.whl")
    return built, output


def test_the_build_prints_no_deprecation_warning(wheel: tuple[Path, str]) -> None:
    _, output = wheel
    assert not DEPRECATION.search(output), [
        line for line in output.splitlines() if DEPRECATION.search(line)
    ]


def test_the_wheel_holds_only_brandmon_with_the_model_and_the_poms(
    wheel: tuple[Path, str],
) -> None:
    built, _ = wheel
    names = zipfile.ZipFile(built).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"brandmon"}
    for stage in ("stream", "alerts", "model_export", "tools", "contracts"):
        assert f"brandmon/{stage}/__init__.py" in names, stage
    model = "brandmon/models/brandmon-sentiment-minilm/"
    manifest = json.loads((REPO / "models/brandmon-sentiment-minilm/manifest.json").read_text())
    shipped = {name.removeprefix(model) for name in names if name.startswith(model)}
    assert shipped == set(manifest["files"]) | {"manifest.json", "README.md"}
    assert "brandmon/kafka_poms/pom.xml" in names


@pytest.mark.kafka  # the demo starts a broker of its own and two workers
def test_installed_outside_the_checkout_the_demo_runs_to_the_end(
    wheel: tuple[Path, str], tmp_path: Path
) -> None:
    from brandmon.broker import free_port

    built, _ = wheel
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    # The dependencies (numpy, onnxruntime, faust, ...) are the ones this environment already
    # has: a .pth line puts its site-packages behind the new environment's own, instead of
    # downloading and installing a few hundred MB again (and needing the network). Only the
    # directory is added, not its .pth files, so the checkout's editable brandmon stays out;
    # the wheel's brandmon, installed into the new environment, is the one imported.
    purelib = Path(sysconfig.get_paths()["purelib"])
    new_purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
        timeout=60,
    ).strip()
    Path(new_purelib, "_brandmon_test_deps.pth").write_text(f"{purelib}\n")
    _run(
        [str(python), "-m", "pip", "install", *PIP_INSTALL, str(built)],
        cwd=tmp_path,
        timeout=300,
    )

    where = _run(
        [
            str(python),
            "-c",
            "import importlib.util, brandmon; from brandmon.settings import DEFAULT_MODEL_DIR; "
            "from brandmon.broker import KAFKA_VERSION, pom_path; "
            "print(brandmon.__file__, DEFAULT_MODEL_DIR.is_dir(), "
            "pom_path(KAFKA_VERSION).is_file(), importlib.util.find_spec('stream'))",
        ],
        cwd=tmp_path,
        timeout=60,
    ).split()
    # brandmon from the wheel, with its model and Kafka POM; no top-level `stream` anywhere
    assert where == [f"{new_purelib}/brandmon/__init__.py", "True", "True", "None"]

    # Its own broker on a free port: the demo starts one when none answers there.
    output = _run(
        [str(venv / "bin" / "brandmon"), *DEMO, "--home", str(tmp_path / "demo")],
        cwd=tmp_path,
        timeout=420,
        BRANDMON_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    scored = re.search(r"(\d+) posts scored on", output)
    assert scored and int(scored.group(1)) > 0, output
