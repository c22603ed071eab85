"""A real single-node Apache Kafka broker (KRaft) on loopback, for machines without Docker.

The broker's jars come from Maven Central through deploy/kafka/pom.xml (Apache's download site
is not reachable everywhere) and are cached under ~/.cache/brandmon. `LocalBroker` formats the
storage, starts `kafka.Kafka` as a detached Java process with its logs in a known folder, waits
until it answers, and stops it again. Used by `brandmon kafka ...`, the demo and the test suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.2"
POM = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "pom.xml"
JAR_CACHE = Path.home() / ".cache" / "brandmon" / f"kafka-{KAFKA_VERSION}" / "libs"
#: Seconds a broker may take to start: a cold JVM on 2 cores formats and starts in ~5-10 s.
START_TIMEOUT = 90.0


class BrokerError(RuntimeError):
    """The local broker cannot be fetched, started or reached; the message says what to do."""


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"`{tool}` is not on PATH: {hint}")
    return path


def fetch_jars(cache: Path = JAR_CACHE, quiet: bool = True) -> Path:
    """Download (once) every jar the broker needs from Maven Central into `cache`."""
    if cache.is_dir() and any(cache.glob("kafka_2.13-*.jar")):
        return cache
    mvn = _require("mvn", "install Maven (apt-get install maven) to fetch Kafka from Maven Central")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"Maven could not fetch Kafka {KAFKA_VERSION} (exit {result.returncode}); is Maven "
            f"Central reachable?\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    tmp.rename(cache)
    return cache


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class LocalBroker:
    """One broker whose data, config, logs and pid live under `home`."""

    home: Path
    port: int = 9092
    host: str = "127.0.0.1"
    controller_port: int | None = None
    jars: Path = JAR_CACHE

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "broker.out"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def running(self) -> bool:
        return self.pid() is not None and answers(self.host, self.port)

    def _write_config(self, controller_port: int) -> Path:
        data = self.home / "data"
        config = self.home / "server.properties"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            # a consumer group on a fresh broker gets its partitions without the default 3 s wait
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "24",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return config

    def _java(self, main: str, *args: str, **popen: object) -> subprocess.Popen[bytes]:
        java = _require(
            "java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
        )
        log4j = self.home / "log4j.properties"
        cmd = [
            java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{self.jars}/*",
            main,
            *args,
        ]
        return subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]

    def _write_log4j(self) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        (self.home / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
        )

    def _format(self, config: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        proc = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            uuid.uuid4().hex[:22],
            "-c",
            str(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{out.decode(errors='replace')}")

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker (fetching jars first if needed) and wait until it answers."""
        if self.running():
            return
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is taken by another process: stop it, or "
                "choose another port with --port"
            )
        controller = self.controller_port or free_port(self.host)
        self.jars = fetch_jars(self.jars) if self.jars == JAR_CACHE else self.jars
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_log4j()
        config = self._write_config(controller)
        self._format(config)
        with self.log_file.open("ab") as log:
            proc = self._java(
                "kafka.Kafka",
                str(config),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        self._wait_ready(proc, timeout)

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"the Kafka broker exited with code {proc.returncode} while starting; "
                    f"see {self.log_file}:\n{self._tail()}"
                )
            if answers(self.host, self.port):
                try:
                    meta = admin.list_topics(timeout=2)
                    if meta.brokers:
                        return
                except KafkaException:  # not ready yet: retry until the deadline
                    pass
            time.sleep(0.3)
        self.stop()
        raise BrokerError(
            f"the Kafka broker did not answer within {timeout:.0f} s; see {self.log_file}"
        )

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker and wait for it to exit (SIGKILL after `timeout`)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
