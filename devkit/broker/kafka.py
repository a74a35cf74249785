"""Apache Kafka in KRaft combined mode, from the real broker jars on Maven Central.

Why Maven and not a tarball: Maven Central is reachable from every machine this
project runs on (the Apache download mirrors are not), and Java 17 + Maven are on
them. The jars are resolved once into a cache and reused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from shoppulse.devkit.broker.base import BrokerError, EmbeddedBroker, free_port

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
    """One KRaft node (broker and controller); storage in ``data_dir`` or a temp folder.

    Alone it is a single-node cluster. ``KafkaCluster`` starts several that share a cluster id
    and a controller quorum (``voters``), with ``replication`` copies of the internal topics.
    """

    name = "kafka"

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        heap: str = "768m",
        node_id: int = 1,
        controller_port: int | None = None,
        voters: str | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        oauthbearer_port: int | None = None,
    ) -> None:
        super().__init__(port, data_dir)
        self.controller_port = controller_port or free_port()
        # An optional second client listener, SASL_PLAINTEXT with OAUTHBEARER and Kafka's unsecured
        # JWT validator: lets tests prove the SASL paths of the stages against a real broker.
        self.oauthbearer_port = oauthbearer_port
        self.heap = heap
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id
        self.replication = replication
        self._tmp: str | None = None
        self._work: Path | None = None

    def _config(self, log_dir: Path) -> str:
        from shoppulse.consumers.topics import min_insync_replicas

        rf = self.replication
        min_isr = min_insync_replicas(rf)
        listeners = f"PLAINTEXT://127.0.0.1:{self.port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        oauth: list[str] = []
        if self.oauthbearer_port:
            listeners += f",OAUTH://127.0.0.1:{self.oauthbearer_port}"
            protocols += ",OAUTH:SASL_PLAINTEXT"
            oauth = [
                "listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER",
                "listener.name.oauth.oauthbearer.sasl.jaas.config="
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                'unsecuredLoginStringClaim_sub="broker";',
            ]
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                f"controller.quorum.voters={self.voters}",
                f"listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners={listeners}",
                "controller.listener.names=CONTROLLER",
                f"listener.security.protocol.map={protocols}",
                *oauth,
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={log_dir}",
                "num.partitions=1",
                f"default.replication.factor={rf}",
                f"min.insync.replicas={min_isr}",
                f"offsets.topic.replication.factor={rf}",
                "offsets.topic.num.partitions=10",
                f"transaction.state.log.replication.factor={rf}",
                f"transaction.state.log.min.isr={min_isr}",
                "transaction.state.log.num.partitions=10",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.cleaner.backoff.ms=1000",
                # Time retention is checked every 5 s, not 5 min: a record whose timestamp is older than
                # its topic's retention.ms is then deleted within seconds, so a test catches it every run.
                "log.retention.check.interval.ms=5000",
                # A node that comes back takes its partitions' leadership back soon (failover tests).
                "leader.imbalance.check.interval.seconds=5",
                "",
            ]
        )

    def prepare(self) -> list[str]:
        """Write the config, format the storage once; return the command that runs the node."""
        libs = resolve_kafka_jars()
        if self._work is None:
            if self.data_dir is None:
                self._tmp = tempfile.mkdtemp(prefix="shoppulse-kafka-")
                self._work = Path(self._tmp)
            else:
                self._work = Path(self.data_dir)
                self._work.mkdir(parents=True, exist_ok=True)
        work = self._work
        log_dir = work / "data"
        props = work / "server.properties"
        # Ports may differ between runs of a persistent data dir: rewrite the config every start.
        props.write_text(self._config(log_dir), encoding="utf-8")
        classpath = f"{libs}/*"
        if not (log_dir / "meta.properties").exists():
            fmt = subprocess.run(
                [
                    "java",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.cluster_id or _random_cluster_id(),
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
        return [
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
        ]

    @property
    def node_log(self) -> Path:
        assert self._work is not None, "prepare() first"
        return self._work / "broker.log"

    def start(self, timeout_s: float = 120.0) -> str:
        argv = self.prepare()
        return self._spawn_and_wait(argv, self.node_log, timeout_s)

    def spawn(self) -> None:
        """Start the node without waiting (a cluster's nodes need each other to become ready)."""
        self._spawn(self.prepare(), self.node_log)

    def kill(self) -> None:
        """SIGKILL the node, keeping its storage (a crash, for failover tests)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> None:
        super().stop(timeout_s)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self._work = None


class KafkaCluster(EmbeddedBroker):
    """``size`` KRaft nodes on 127.0.0.1, each broker and controller, in one quorum.

    Replication factor ``size`` for the internal topics and as the default, ``min.insync.replicas``
    2 (for 3 nodes): any one node may stop without losing a write or blocking one. ``kill(i)`` and
    ``restart(i)`` stop and bring back one node, keeping its storage.
    """

    name = "kafka"

    def __init__(self, size: int = 3, data_dir: Path | None = None, heap: str = "512m") -> None:
        if size < 1:
            raise BrokerError("a cluster needs at least one node")
        self.size = size
        controller_ports = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controller_ports))
        cluster_id = _random_cluster_id()
        self.nodes = [
            KafkaBroker(
                data_dir=data_dir / f"node-{i + 1}" if data_dir else None,
                heap=heap,
                node_id=i + 1,
                controller_port=controller_ports[i],
                voters=voters,
                cluster_id=cluster_id,
                replication=size,
            )
            for i in range(size)
        ]
        super().__init__(self.nodes[0].port, data_dir)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout_s: float = 180.0) -> str:
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready(timeout_s)
            self._wait_for_all_brokers(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.proc = self.nodes[0].proc
        self.log_path = self.nodes[0].log_path
        return self.bootstrap

    def _wait_for_all_brokers(self, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if len(admin.list_topics(timeout=2).brokers) == self.size:
                    return
            time.sleep(0.3)
        raise BrokerError(f"the {self.size} nodes did not all join the cluster within {timeout_s:.0f}s")

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, index: int, timeout_s: float = 120.0) -> None:
        node = self.nodes[index]
        node.spawn()
        node.wait_ready(timeout_s)

    def freeze(self, index: int, frozen: bool = True) -> None:
        """SIGSTOP (``frozen``) or SIGCONT one node: a broker that hangs with its connections open (a
        long GC pause, a stalled disk), which clients notice only through their timeouts."""
        proc = self.nodes[index].proc
        if proc is None or proc.poll() is not None:
            raise BrokerError(f"node {index} is not running")
        os.killpg(proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def running(self) -> bool:
        return all(node.running() for node in self.nodes)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to every node at once (one by one, the last ones wait for a quorum that is gone), then
        SIGKILL whatever is left at the deadline; storage in temp folders is removed."""
        procs = [node.proc for node in self.nodes if node.proc is not None and node.proc.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for node in self.nodes:
            node.stop(timeout_s)  # the process is gone: this removes a temp folder
        self.proc = None


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
