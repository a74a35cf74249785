"""Apache Kafka in KRaft combined mode, from the real broker jars on Maven Central.

Why Maven and not a tarball: Maven Central is reachable from every machine this
project runs on (the Apache download mirrors are not), and Java 17 + Maven are on
them. The jars are resolved once into a cache and reused.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from consumers.broker.base import BrokerError, EmbeddedBroker, free_port

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
_LOG4J_VERSION = "2.25.3"
_SLF4J_VERSION = "2.0.17"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>shoppulse</groupId><artifactId>embedded-kafka</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


def cache_root() -> Path:
    base = os.environ.get("SHOPPULSE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "shoppulse"
    )
    return Path(base)


def java_major_version(java: str = "java") -> int | None:
    """Major version of the ``java`` on PATH, or None when there is none."""
    if shutil.which(java) is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def kafka_available() -> bool:
    major = java_major_version()
    return major is not None and major >= 17 and shutil.which("mvn") is not None


def resolve_kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """Download the broker's runtime classpath once; return the folder of jars."""
    root = cache_root() / f"kafka-{version}"
    libs = root / "libs"
    marker = root / ".complete"
    if marker.exists():
        return libs
    if not kafka_available():
        raise BrokerError("the Kafka backend needs Java 17+ and Maven on PATH; install them or use --backend tansu")
    root.mkdir(parents=True, exist_ok=True)
    (root / "pom.xml").write_text(
        _POM.format(kafka=version, log4j=_LOG4J_VERSION, slf4j=_SLF4J_VERSION), encoding="utf-8"
    )
    shutil.rmtree(libs, ignore_errors=True)
    log.info("resolving org.apache.kafka:kafka_2.13:%s from Maven Central into %s", version, libs)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(root / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"maven could not resolve the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    (root / "log4j2.yaml").write_text(_LOG4J2, encoding="utf-8")
    marker.write_text(version, encoding="utf-8")
    return libs


class KafkaBroker(EmbeddedBroker):
    """Single-node KRaft broker+controller; storage in ``data_dir`` or a temp folder."""

    name = "kafka"

    def __init__(self, port: int | None = None, data_dir: Path | None = None, heap: str = "768m") -> None:
        super().__init__(port, data_dir)
        self.controller_port = free_port()
        self.heap = heap
        self._tmp: str | None = None

    def _config(self, log_dir: Path) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={log_dir}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=10",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.cleaner.backoff.ms=1000",
                "",
            ]
        )

    def start(self, timeout_s: float = 120.0) -> str:
        libs = resolve_kafka_jars()
        if self.data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="shoppulse-kafka-")
            work = Path(self._tmp)
        else:
            work = Path(self.data_dir)
            work.mkdir(parents=True, exist_ok=True)
        log_dir = work / "data"
        props = work / "server.properties"
        # Ports may differ between runs of a persistent data dir: rewrite the config every start.
        props.write_text(self._config(log_dir), encoding="utf-8")
        classpath = f"{libs}/*"
        if not (log_dir / "meta.properties").exists():
            cluster_id = _random_cluster_id()
            fmt = subprocess.run(
                [
                    "java",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(props),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"kafka storage format failed: {fmt.stdout}{fmt.stderr}")
        log4j = libs.parent / "log4j2.yaml"
        return self._spawn_and_wait(
            [
                "java",
                f"-Xmx{self.heap}",
                "-Xms256m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(props),
            ],
            work / "broker.log",
            timeout_s,
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        super().stop(timeout_s)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _random_cluster_id() -> str:
    """Kafka cluster ids are 16 random bytes, base64url without padding (22 chars).

    Like Kafka's own ``Uuid.randomUuid`` we reject ids that start with ``-``: the storage tool's argument parser
    reads such an id as an option and fails (it did, once in about 64 CI runs).
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
