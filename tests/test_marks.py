"""Marks say what a test starts (issue 17): `pytest -m "not kafka and not server"` starts no
broker and no server, and collection refuses a test that starts one without its mark
(tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
FAST = "not kafka and not server"
#: Tests that start a broker or a server, one of each kind (ids without their parameters).
STARTS_SOMETHING = {
    # a broker through test_settings, in a file that holds pure tests too
    "tests/alerts/test_top_kafka.py::test_once_shows_buckets_and_open_incidents",
    # `brandmon top` in tmux against the broker
    "tests/alerts/test_top_kafka.py::test_live_view_redraws_and_quits_on_ctrl_c",
    # Label Studio
    "tests/integration/test_label_studio.py::test_export_annotate_import_round_trip",
    # `brandmon demo` from the wheel: its own broker and workers
    "tests/test_wheel.py::test_installed_outside_the_checkout_the_demo_runs_to_the_end",
    # Prometheus scraping live workers
    "tests/deploy/test_prometheus_live.py::test_prometheus_scrapes_throughput_latency_and_lag",
    # brokers of its own, restarted (LocalBroker directly)
    "tests/integration/test_faults_kafka.py::test_broker_restart_while_posts_are_in_flight",
    "tests/test_broker.py::test_local_broker_starts_logs_restarts_and_stops",
    # workers (worker_factory)
    "tests/integration/test_pipeline_kafka.py",
}
#: Pure tests in the same files, which stay in the fast set.
PURE = {
    "tests/alerts/test_top_kafka.py::test_bad_lookback_says_what_it_takes",
    "tests/test_wheel.py::test_the_build_prints_no_deprecation_warning",
    "tests/test_broker.py::test_cli_names_an_unsupported_version",
}


@pytest.mark.slow  # collecting the whole suite takes 20-30 s on 2 busy cores
def test_the_fast_set_collects_and_holds_no_broker_or_server_test() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            FAST,
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    ids = {line.split("[")[0] for line in done.stdout.splitlines() if "::" in line}
    assert ids >= PURE, (sorted(PURE - ids), output[-3000:])
    starting = sorted(test for test in ids for known in STARTS_SOMETHING if test.startswith(known))
    assert not starting, starting


CONFTEST = """
import pytest

from tests.conftest import (
    _brokers_need_the_kafka_mark,
    pytest_collection_modifyitems,
    pytest_runtest_protocol,
)


@pytest.fixture(scope="session")
def kafka_bootstrap():
    return "127.0.0.1:1"


@pytest.fixture
def topic_env(kafka_bootstrap):
    return {"BRANDMON_BOOTSTRAP_SERVERS": kafka_bootstrap}


@pytest.fixture
def label_studio():
    return "http://127.0.0.1:1"


@pytest.fixture
def own_settings(topic_env):  # a module's own fixture on top of a broker fixture
    return topic_env
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    kafka: broker\n    server: server\n    slow: slow\n")
    return pytester


def test_collection_refuses_a_broker_test_without_the_kafka_mark(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.kafka
        def test_marked(own_settings):
            pass

        def test_pure():
            pass

        @pytest.mark.slow
        def test_unmarked(own_settings):
            pass
        """
    )
    result = suite.runpytest("--collect-only", "-q", "-m", FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*tests that start a broker or a server must say so with a mark*",
            "*test_a.py::test_unmarked starts a Kafka broker (kafka_bootstrap, topic_env) "
            "without @pytest.mark.kafka",
        ]
    )
    assert "test_marked" not in result.stderr.str()
    assert "test_pure" not in result.stderr.str()


def test_collection_refuses_a_server_test_without_a_mark(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_b="""
        import pytest

        @pytest.mark.server
        def test_server(label_studio):
            pass

        @pytest.mark.kafka
        def test_broker_and_server(label_studio, topic_env):
            pass

        @pytest.mark.kafka
        @pytest.mark.parametrize("n", [1, 2])
        def test_marked_for_the_broker_only(label_studio, n):
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_unmarked(label_studio, n):
            pass
        """
    )
    result = suite.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_b.py::test_unmarked[[]1[]] starts a server (label_studio) without "
            "@pytest.mark.server",
            "*test_b.py::test_unmarked[[]2[]] starts a server*",
        ]
    )
    errors = result.stderr.str()
    assert "test_server " not in errors and "test_broker_and_server" not in errors
    assert "test_marked_for_the_broker_only" not in errors


def test_marked_tests_collect_and_the_fast_set_leaves_them_out(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_c="""
        import pytest

        pytestmark = pytest.mark.kafka

        def test_broker(topic_env):
            pass
        """,
        test_d="""
        import pytest

        @pytest.mark.server
        def test_server(label_studio):
            pass

        def test_pure():
            pass
        """,
    )
    result = suite.runpytest("-q", "-m", FAST)
    result.assert_outcomes(passed=1, deselected=2)


def test_starting_a_broker_or_a_worker_fails_an_unmarked_test(suite: pytest.Pytester) -> None:
    """The run-time guard: what starts a broker without the fixtures (LocalBroker itself, a
    worker process) fails the test before anything is spawned."""
    suite.makepyfile(
        test_e="""
        import subprocess

        import pytest

        from brandmon.broker import LocalBroker, free_port
        from tests.helpers import WorkerProcess, require_mark

        def test_own_broker(tmp_path):
            broker = LocalBroker(home=tmp_path, port=free_port(), jars=tmp_path)
            # a class that is not there: were the guard missing, java would exit at once
            broker._java("no.such.Main", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def test_worker(tmp_path):
            worker = WorkerProcess({"BRANDMON_WEB_PORT": "1"}, tmp_path / "log", ("--help",))
            worker.start()
            worker.proc.wait(60)

        def test_server():
            require_mark("a server", "server")

        @pytest.mark.server
        def test_marked_server():
            require_mark("a server", "server", "kafka")
        """
    )
    result = suite.runpytest("-q")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_own_broker starts a Kafka broker's JVM (no.such.Main) but is not marked "
            "@pytest.mark.kafka*",
            "*test_worker starts `brandmon --help` but is not marked @pytest.mark.kafka*",
            "*test_server starts a server but is not marked @pytest.mark.server*",
        ]
    )
