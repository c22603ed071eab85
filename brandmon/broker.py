"""A real single-node Apache Kafka broker (KRaft) on loopback, for machines without Docker.

The broker's jars come from Maven Central through a POM in deploy/kafka (Apache's download site
is not reachable everywhere) and are cached per Kafka version under
~/.cache/brandmon/kafka-<version>/libs. `LocalBroker` formats the storage, starts `kafka.Kafka`
as a detached Java process with its logs in a known folder, waits until it answers, and stops it
again. Used by `brandmon kafka ...`, the demo and the test suite.

Two release lines are supported, chosen by `version`:
- 3.x (default 3.9.2): reload4j logging, a static controller quorum (`controller.quorum.voters`).
- 4.x (`KAFKA4_VERSION`): log4j2 logging (its slf4j binding comes from our POM, Kafka's POM
  leaves it out), a dynamic quorum (`controller.quorum.bootstrap.servers` and
  `StorageTool format --standalone`), as Kafka 4's own quickstart sets it up.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

#: The default broker: the release line the project was built and measured on.
KAFKA_VERSION = "3.9.2"
#: The newest Kafka 4 release Maven Central served here that starts on Java 17 and passes the
#: suite; CI runs the integration tests that matter most against it too.
KAFKA4_VERSION = "4.4.0"
#: Short names for the pinned releases: `--version 4` or `4.x` means KAFKA4_VERSION.
_ALIASES = {"3": KAFKA_VERSION, "3.x": KAFKA_VERSION, "4": KAFKA4_VERSION, "4.x": KAFKA4_VERSION}
_DEPLOY = Path(__file__).resolve().parent / "kafka_poms"  # -> deploy/kafka; package data
_CACHE_ROOT = Path.home() / ".cache" / "brandmon"
#: Seconds a broker may take to start: a cold JVM on 2 cores formats and starts in ~5-10 s.
START_TIMEOUT = 90.0
#: Written into the broker's home at format time: data formatted by one release line must not
#: be opened by another (4.x cannot be downgraded to 3.x).
_VERSION_FILE = "kafka.version"
#: Where Linux keeps the range it picks clients' source ports from ("32768	60999" by default).
PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: The ephemeral range where that file cannot be read: Linux's default and IANA's (49152-65535,
#: used by macOS and Windows) together.
FALLBACK_EPHEMERAL_PORTS = range(32768, 65536)
#: Ports chosen for servers start here: below are the well-known ones and the usual defaults.
LOWEST_CHOSEN_PORT = 10000
#: Random ports free_port tries before it gives up (each is checked by binding it).
PORT_ATTEMPTS = 100

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The local broker cannot be fetched, started or reached; the message says what to do."""


def resolve_version(version: str) -> str:
    """The exact Kafka release for `version`: "3.9.2", "4.1.2", or a short name ("4", "4.x",
    "4.1", "4.1.x") of a pinned release. Raises BrokerError for anything else."""
    text = version.strip()
    if text in _ALIASES:
        return _ALIASES[text]
    if re.fullmatch(r"\d+\.\d+(\.x)?", text):
        prefix = text.removesuffix(".x") + "."
        for pinned in (KAFKA_VERSION, KAFKA4_VERSION):
            if pinned.startswith(prefix):
                return pinned
    elif re.fullmatch(r"[34]\.\d+\.\d+", text):
        return text
    raise BrokerError(
        f"unsupported Kafka version {version!r}: use {KAFKA_VERSION} (default), {KAFKA4_VERSION} "
        "(or 4.x), or another exact 3.x/4.x release such as 4.0.2"
    )


def major(version: str) -> int:
    return int(resolve_version(version).split(".", 1)[0])


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in resolve_version(version).split("."))


def pom_path(version: str) -> Path:
    """The POM that brings Kafka `version`'s jars; Maven gets `-Dkafka.version=<version>`.

    The one place that knows where the POMs live (deploy/kafka today)."""
    name = "pom-kafka4.xml" if major(version) >= 4 else "pom.xml"
    return _DEPLOY / name


def jar_cache(version: str = KAFKA_VERSION) -> Path:
    """~/.cache/brandmon/kafka-<version>/libs: where `fetch_jars(version)` puts the jars."""
    return _CACHE_ROOT / f"kafka-{resolve_version(version)}" / "libs"


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"`{tool}` is not on PATH: {hint}")
    return path


def fetch_jars(
    version: str = KAFKA_VERSION, *, cache: Path | None = None, quiet: bool = True
) -> Path:
    """Download (once) every jar Kafka `version` needs from Maven Central into `cache`
    (default `jar_cache(version)`); concurrent callers wait for one download."""
    version = resolve_version(version)
    cache = cache or jar_cache(version)
    marker = f"kafka_2.13-{version}.jar"
    if (cache / marker).is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with (cache.parent / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same version
        if not (cache / marker).is_file():
            _maven_copy(version, cache, quiet)
    return cache


def _maven_copy(version: str, cache: Path, quiet: bool) -> None:
    mvn = _require("mvn", "install Maven (apt-get install maven) to fetch Kafka from Maven Central")
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-f",
        str(pom_path(version)),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (tmp / f"kafka_2.13-{version}.jar").is_file():
        raise BrokerError(
            f"Maven could not fetch Kafka {version} (exit {result.returncode}); is Maven "
            f"Central reachable, and does it serve that version?\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ephemeral_ports(source: Path = PORT_RANGE_FILE) -> range:
    """The ports the kernel hands out as clients' source ports, as `source` says."""
    try:
        low, high = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):  # not Linux, or not readable here
        return FALLBACK_EPHEMERAL_PORTS
    return range(low, high + 1)


def free_port(
    host: str = "127.0.0.1",
    *,
    ephemeral: range | None = None,
    rng: random.Random | None = None,
) -> int:
    """A port nobody listens on, for a server to listen on: one outside the ephemeral range.

    The kernel gives clients their source ports from the ephemeral range (`bind(host, 0)`
    picks from it too). While a server on such a port is down, a client retrying host:port
    can be given that very port as its source and connect to itself (TCP simultaneous open);
    it then holds the port, and the server cannot bind it again (a test broker on 39092 could
    not be restarted so). Raises BrokerError when every port at or above LOWEST_CHOSEN_PORT
    is in that range or taken.
    """
    skip = ephemeral if ephemeral is not None else ephemeral_ports()
    pool = [port for port in range(LOWEST_CHOSEN_PORT, 65536) if port not in skip]
    draw = rng or random.Random()
    for port in draw.sample(pool, min(PORT_ATTEMPTS, len(pool))):
        if port_is_free(host, port):
            return port
    raise BrokerError(
        f"no free port on {host} outside the ephemeral range {skip.start}-{skip.stop - 1} "
        f"(from {PORT_RANGE_FILE}): narrow net.ipv4.ip_local_port_range, or free some ports"
    )


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether process `pid` runs; reaps it first when it is our own exited child (a zombie
    still answers signal 0, which made `stop` wait its whole timeout)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: another process started it
        reaped = 0
    if reaped == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: log4j 1 (reload4j) config for 3.x: warnings to stdout, plus the "started" line.
_LOG4J1 = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""
#: The same for 4.x in log4j2's properties format.
_LOG4J2 = """\
status = warn
# the broker flushes its own logs on SIGTERM; log4j2's hook would only warn that it came too late
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""


@dataclass
class LocalBroker:
    """One broker of Kafka `version` whose data, config, logs and pid live under `home`.

    `jars` defaults to `jar_cache(version)`, fetched from Maven Central on the first start."""

    home: Path
    port: int = 9092
    host: str = "127.0.0.1"
    controller_port: int | None = None
    version: str = KAFKA_VERSION
    jars: Path | None = None

    def __post_init__(self) -> None:
        self.version = resolve_version(self.version)

    @property
    def kafka4(self) -> bool:
        return major(self.version) >= 4

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
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and answers(self.host, self.port)

    def formatted_version(self) -> str | None:
        """The Kafka release that formatted this home's data; None before the first start.
        Homes formatted before versions were recorded hold 3.9.2 data."""
        if not (self.home / "data" / "meta.properties").exists():
            return None
        try:
            return (self.home / _VERSION_FILE).read_text().strip()
        except FileNotFoundError:
            return KAFKA_VERSION

    def _write_config(self, controller_port: int) -> Path:
        controller = f"{self.host}:{controller_port}"
        quorum = (
            # 4.x: a dynamic quorum (KIP-853), bootstrapped by `format --standalone`
            {"controller.quorum.bootstrap.servers": controller}
            if self.kafka4
            else {"controller.quorum.voters": f"1@{controller}"}
        )
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            **quorum,
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
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
        config = self.home / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return config

    def _java(self, main: str, *args: str, **popen: object) -> subprocess.Popen[bytes]:
        java = _require(
            "java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
        )
        logging = (
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}"
            if self.kafka4
            else f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}"
        )
        cmd = [
            java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            logging,
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{self.jars or jar_cache(self.version)}/*",
            main,
            *args,
        ]
        return subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]

    def _write_logging(self) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        if self.kafka4:
            (self.home / "log4j2.properties").write_text(_LOG4J2)
        else:
            (self.home / "log4j.properties").write_text(_LOG4J1)

    def _check_data_version(self) -> None:
        """Refuse data of another release line, or of a newer release than this one (Kafka
        cannot read metadata newer than itself)."""
        found = self.formatted_version()
        if found is None:
            return
        if major(found) != major(self.version) or _release(found) > _release(self.version):
            raise BrokerError(
                f"{self.home} holds data of Kafka {found}, not of Kafka {self.version}: start "
                f"with --version {found}, or choose another --home (or delete {self.home})"
            )

    def _format(self, config: Path) -> None:
        if self.formatted_version() is not None:
            return
        extra = ["--standalone"] if self.kafka4 else []
        proc = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            uuid.uuid4().hex[:22],
            "-c",
            str(config),
            *extra,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise BrokerError(
                f"formatting Kafka {self.version} storage failed:\n{out.decode(errors='replace')}"
            )
        (self.home / _VERSION_FILE).write_text(self.version + "\n")

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker (fetching jars first if needed) and wait until it answers."""
        self._check_data_version()
        if self.running():
            return
        self._check_port()
        controller = self.controller_port or free_port(self.host)
        if self.jars is None:
            self.jars = fetch_jars(self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_logging()
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

    def _check_port(self) -> None:
        """Raise BrokerError when the broker's port is taken; warn when it is one the kernel
        may give a client as its source port (see free_port)."""
        ephemeral = ephemeral_ports()
        risky = self.port in ephemeral
        why = (
            f"; it is in this machine's ephemeral port range ({ephemeral.start}-"
            f"{ephemeral.stop - 1}), where a client's own connection can take it while the "
            "broker is down: choose a port outside it (the default is 9092)"
            if risky
            else ""
        )
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is taken by another process: stop it, or "
                f"choose another port with --port{why}"
            )
        if risky:
            log.warning("the Kafka broker listens on port %d%s", self.port, why)

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"the Kafka {self.version} broker exited with code {proc.returncode} while "
                    f"starting; see {self.log_file}:\n{self._tail()}"
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
            f"the Kafka {self.version} broker did not answer within {timeout:.0f} s; "
            f"see {self.log_file}"
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
