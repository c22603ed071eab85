"""deploy/Dockerfile and deploy/Dockerfile.gpu: pinned bases, non-root, healthy on /ready,
the runtime install only, and only settings the code reads. No Docker engine runs here, so
the files are read, not built."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field

import pytest

from tests.deploy.repo import DOCKERFILE, DOCKERFILE_GPU, REPO
from tests.deploy.test_compose import WEB_PORT, settings_env_names

BOTH = [DOCKERFILE, DOCKERFILE_GPU]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif keyword == "ARG" and not stages and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def env_of(stage: Stage) -> dict[str, str]:
    env = {}
    for args in stage.all("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_base_images_are_pinned(path) -> None:
    _, stages = parse(path)
    for stage in stages:
        if stage.base in {s.name for s in stages}:
            continue  # FROM an earlier stage
        repo, _, tag = stage.base.rpartition(":")
        assert repo and tag and tag != "latest", f"{path.name}: {stage.base} is not pinned"
        assert re.match(r"v?\d+\.\d+\.\d+", tag), f"{path.name}: pin {stage.base} to a release"


def test_python_and_cuda_versions() -> None:
    _, cpu = parse(DOCKERFILE)
    assert cpu[-1].base.startswith("python:3.11.") and "slim" in cpu[-1].base
    args, gpu = parse(DOCKERFILE_GPU)
    assert gpu[-1].base.startswith("nvidia/cuda:") and "runtime" in gpu[-1].base
    # The GPU image runs the same CPython as the CPU image.
    assert args["PYTHON_IMAGE"] == cpu[-1].base


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_runs_as_a_non_root_user(path) -> None:
    _, stages = parse(path)
    users = stages[-1].all("USER")
    assert users, f"{path.name}: the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, path.name


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_runs_the_worker_and_checks_ready(path) -> None:
    _, stages = parse(path)
    final = stages[-1]
    assert final.all("CMD")[-1] == '["brandmon", "worker"]'
    (healthcheck,) = final.all("HEALTHCHECK")
    assert "/ready" in healthcheck and "${BRANDMON_WEB_PORT}" in healthcheck
    env = env_of(final)
    assert env["BRANDMON_WEB_PORT"] == str(WEB_PORT)
    assert env["BRANDMON_WEB_HOST"] == "0.0.0.0"  # reachable by Prometheus
    assert str(WEB_PORT) in final.all("EXPOSE")


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_installs_the_runtime_only(path) -> None:
    text = " ".join(i for s in parse(path)[1] for kw, i in s.instructions if kw == "RUN")
    assert re.search(r"pip install [^&]*--no-deps[^&]*\s\.(\s|$)", text), (
        "installs the project with `pip install --no-deps .` (its dependencies come from the lock)"
    )
    assert "[export]" not in text and "torch" not in text


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_installs_dependencies_from_the_lock_only(path) -> None:
    """Every dependency comes from a hashed lock of locks/, so a rebuild months later gets what
    CI tested; nothing is resolved from pyproject.toml's pins or built from source."""
    text = " ".join(i for s in parse(path)[1] for kw, i in s.instructions if kw == "RUN")
    locks = re.findall(r"-r (locks/\S+\.txt)", text)
    assert locks, f"{path.name} installs from no lock file"
    for lock in locks:
        assert (REPO / lock).is_file(), f"{path.name} names {lock}, which is missing"
        copied = [args for s in parse(path)[1] for args in s.all("COPY")]
        assert any(lock in args for args in copied), f"{path.name} never copies {lock}"
    for install in re.findall(r"pip install[^&]*", text):
        assert "--no-deps" in install or (
            "--require-hashes" in install and "--only-binary :all:" in install
        ), f"{path.name}: `{install.strip()}` may resolve unlocked versions"


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_env_sets_only_real_settings(path) -> None:
    known = settings_env_names()
    for stage in parse(path)[1]:
        env = {k for k in env_of(stage) if k.startswith("BRANDMON_")}
        assert env <= known, f"{path.name}: not Settings fields: {env - known}"


@pytest.mark.parametrize("path", BOTH, ids=lambda p: p.name)
def test_copied_sources_exist(path) -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for stage in parse(path)[1]:
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"{path.name} copies {source}, which is missing"
                assert source.rstrip("/") not in ignored, f".dockerignore hides {source}"


def test_gpu_image_swaps_onnxruntime_for_the_pinned_gpu_wheel() -> None:
    args, stages = parse(DOCKERFILE_GPU)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (pin,) = pyproject["project"]["optional-dependencies"]["gpu"]
    assert pin == f"onnxruntime-gpu=={args['ONNXRUNTIME_GPU_VERSION']}"
    run = " ".join(i for s in stages for kw, i in s.instructions if kw == "RUN")
    assert "-r locks/gpu.txt" in run
    # the GPU lock holds the GPU wheel at the same pin, and not the CPU wheel (both install
    # the same `onnxruntime` package and would overwrite each other's files)
    lock = (REPO / "locks/gpu.txt").read_text()
    assert re.search(rf"^{re.escape(pin)} ", lock, re.MULTILINE)
    assert not re.search(r"^onnxruntime==", lock, re.MULTILINE)
    assert env_of(stages[-1])["BRANDMON_EXECUTION_PROVIDER"] == "cuda"
