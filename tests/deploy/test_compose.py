"""docker-compose.yml: `docker compose config` where the compose plugin runs, and everywhere a
structural check against what the code reads (Settings fields, CLI options, ports, files)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from brandmon.settings import Settings
from tests.deploy.repo import COMPOSE, PROMETHEUS_CONFIG, REPO, load_yaml

SERVICES = {
    "kafka",
    "kafka-init",
    "worker",
    "alerts",
    "simulator",
    "prometheus",
    "grafana",
    "worker-gpu",
}
#: Services that must report health (the others are one-shot or have nothing to probe).
HEALTHCHECKED = {"kafka", "worker", "alerts", "worker-gpu", "prometheus", "grafana"}
#: The score workers (`brandmon worker`) and the alert worker (`brandmon alerts worker`).
SCORE_WORKERS = ("worker", "worker-gpu")
BRANDMON_PROCESSES = (*SCORE_WORKERS, "alerts")
WEB_PORT = Settings.model_fields["web_port"].default
ALERTS_WEB_PORT = Settings.model_fields["alerts_web_port"].default


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def settings_env_names(model: type[BaseModel] = Settings, prefix: str = "BRANDMON_") -> set[str]:
    """Every BRANDMON_* variable Settings reads, nested groups joined by `__`."""
    names = set()
    for name, field in model.model_fields.items():
        names.add(f"{prefix}{name.upper()}")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_env_names(annotation, f"{prefix}{name.upper()}__")
    return names


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode == 0


def _compose_v1() -> str | None:
    """Debian's docker-compose 1.29 (Python): no engine needed to validate a file."""
    return shutil.which("docker-compose")


@pytest.mark.skipif(
    not _docker_compose_works(),
    reason="no `docker compose` plugin here: the v1 schema check and the structural tests "
    "below check the file instead",
)
def test_docker_compose_config_accepts_the_file() -> None:
    for profile in ([], ["--profile", "gpu"]):
        done = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(
    _docker_compose_works() or _compose_v1() is None,
    reason="checked by `docker compose config` instead"
    if _docker_compose_works()
    else "neither the compose plugin nor docker-compose 1.29 (.ci/install-system.sh) is here",
)
def test_compose_v1_schema_accepts_the_file(tmp_path) -> None:
    # docker-compose 1.29 validates against its copy of the Compose specification schema, which
    # predates the top-level `name:`; everything else in the file is in it. The copy is checked
    # from a temp folder with the repository as the project directory (relative paths resolve).
    data = compose()
    data.pop("name")
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(COMPOSE.read_text().replace("name: brandmon\n", "", 1))
    assert yaml.safe_load(copy.read_text()) == data
    v1 = _compose_v1()
    assert v1 is not None
    for profile in ([], ["--profile", "gpu"]):
        done = subprocess.run(
            [v1, "-f", str(copy), "--project-directory", str(REPO), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr + done.stdout


def test_settings_env_walk_sees_nested_fields() -> None:
    # Guards the walk itself: top-level and nested alert settings are both found.
    names = settings_env_names()
    assert {"BRANDMON_BOOTSTRAP_SERVERS", "BRANDMON_ALERTS__BUCKET_SECONDS"} <= names


def test_all_services_are_there() -> None:
    assert set(services()) >= SERVICES


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service.get("image")
        assert image, f"{name}: give an image (with `build`, the tag it is built as)"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image} not pinned"
    images = {name: s["image"] for name, s in services().items()}
    assert images["kafka"] == "apache/kafka:3.9.2"
    assert images["kafka-init"] == images["kafka"]
    assert images["prometheus"].startswith("prom/prometheus:v")
    assert images["grafana"].startswith("grafana/grafana:")


def test_brandmon_variables_are_settings_fields_with_valid_values(monkeypatch) -> None:
    known = settings_env_names()
    for name, service in services().items():
        env = {k: v for k, v in environment(service).items() if k.startswith("BRANDMON_")}
        unknown = set(env) - known
        assert not unknown, f"{name}: Settings has no field for {sorted(unknown)}"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        Settings()  # the values parse and validate as the worker would read them
        for key in env:
            monkeypatch.delenv(key)


def test_health_checks() -> None:
    for name in HEALTHCHECKED:
        check = services()[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in SCORE_WORKERS:
        test = " ".join(services()[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{WEB_PORT}/ready" in test, name
    # The alert worker serves /ready on its own port, the one its environment gives it.
    alerts = services()["alerts"]
    test = " ".join(alerts["healthcheck"]["test"])
    assert f"127.0.0.1:{ALERTS_WEB_PORT}/ready" in test
    assert int(environment(alerts)["BRANDMON_ALERTS_WEB_PORT"]) == ALERTS_WEB_PORT


def test_startup_order() -> None:
    svc = services()
    for name in BRANDMON_PROCESSES:
        deps = svc[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
    assert svc["simulator"]["depends_on"]["kafka-init"]["condition"] == (
        "service_completed_successfully"
    )
    assert svc["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert {"worker", "alerts"} <= set(svc["prometheus"]["depends_on"])


def test_topic_init_creates_the_topics_settings_name() -> None:
    init = services()["kafka-init"]
    script = " ".join(init["command"])
    defaults = Settings.model_fields
    for field in ("topic_posts", "topic_scored", "topic_dlq", "topic_alerts"):
        assert f" {defaults[field].default} " in f" {script} ", field
    # Same broker and partition count as the workers (`$$` is compose's escaped `$`).
    assert '--partitions "$$BRANDMON_TOPIC_PARTITIONS"' in script
    assert '--bootstrap-server "$$BRANDMON_BOOTSTRAP_SERVERS"' in script
    worker_env = environment(services()["worker"])
    for key in ("BRANDMON_TOPIC_PARTITIONS", "BRANDMON_BOOTSTRAP_SERVERS"):
        assert environment(init)[key] == worker_env[key]


def test_gpu_profile() -> None:
    svc = services()
    gpu = svc["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "deploy/Dockerfile.gpu"
    assert environment(gpu)["BRANDMON_EXECUTION_PROVIDER"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # Without the profile the stack is CPU only.
    for name, service in svc.items():
        if name != "worker-gpu":
            assert "profiles" not in service, name
            assert "cuda" not in environment(service).values(), name


def test_commands_are_valid_brandmon_cli_calls() -> None:
    import typer.main

    from brandmon.cli import app

    cli = typer.main.get_command(app)
    for name in ("worker", "alerts", "simulator", "worker-gpu"):
        command = services()[name]["command"]
        args = shlex.split(command) if isinstance(command, str) else list(command)
        assert args[0] == "brandmon", name
        # click resolves the (sub-)command and parses the arguments as the real command
        # would, without running it: `brandmon worker`, `brandmon alerts worker`, ...
        group: Any = cli
        rest = list(args[1:])
        while rest:
            sub = group.get_command(
                group.make_context(group.name or "brandmon", list(rest)), rest[0]
            )
            assert sub is not None, f"{name}: no such command {rest[0]} in {args}"
            group, rest = sub, rest[1:]
            if not hasattr(group, "get_command"):
                group.make_context(group.name, rest)
                break
        assert not hasattr(group, "get_command"), f"{name}: {args} names a group, not a command"


def test_score_and_alert_workers_are_separate_processes() -> None:
    svc = services()
    assert svc["worker"]["command"] == ["brandmon", "worker"]
    assert svc["worker-gpu"]["command"] == ["brandmon", "worker"]
    assert svc["alerts"]["command"] == ["brandmon", "alerts", "worker"]
    # Same image as the score worker, its own state volume.
    assert svc["alerts"]["image"] == svc["worker"]["image"]
    assert svc["alerts"]["build"] == svc["worker"]["build"]
    volumes = {v.split(":", 1)[0] for v in svc["alerts"]["volumes"]}
    assert volumes and not volumes & {v.split(":", 1)[0] for v in svc["worker"]["volumes"]}
    # Notification channels and other alert settings go to the alert worker only; the score
    # worker has no alert stage to configure (BRANDMON_ALERTS__ENABLED no longer exists).
    for name in SCORE_WORKERS:
        alert_vars = [k for k in environment(svc[name]) if k.startswith("BRANDMON_ALERTS")]
        assert not alert_vars, f"{name} runs no alert stage: {alert_vars}"
    assert "BRANDMON_ALERTS__ENABLED" not in settings_env_names()
    # Every brandmon process talks to the same broker with the same partition count.
    shared = ("BRANDMON_BOOTSTRAP_SERVERS", "BRANDMON_TOPIC_PARTITIONS")
    for key in shared:
        assert environment(svc["alerts"])[key] == environment(svc["worker"])[key], key


def test_mounted_files_and_build_contexts_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} missing"
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file(), name


def test_prometheus_scrapes_the_compose_workers() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    (sd,) = jobs["brandmon-worker"]["dns_sd_configs"]
    assert set(sd["names"]) == {"worker", "worker-gpu"} <= set(services())
    assert sd["port"] == WEB_PORT
    # The alert workers, a job of their own on their own port.
    (sd,) = jobs["brandmon-alerts"]["dns_sd_configs"]
    assert set(sd["names"]) == {"alerts"} <= set(services())
    assert sd["port"] == ALERTS_WEB_PORT
    assert "./deploy/prometheus:/etc/prometheus:ro" in services()["prometheus"]["volumes"]
    command = services()["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


def test_grafana_reaches_prometheus() -> None:
    datasources = load_yaml(REPO / "deploy/grafana/provisioning/datasources/prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert (
        source["jsonData"]["timeInterval"]
        == load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    )
