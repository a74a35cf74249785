"""faust's aiokafka transport, reading ``read_committed``.

Why: faust reads ``read_uncommitted`` unless the app itself runs in exactly-once mode, which
this stage does not (on Tansu it cannot, and its own at-least-once plus exact deduplication
is enough). With enrich writing ``user-signals`` in transactions, an uncommitted reader would
fold records of aborted transactions. The only change is the isolation level of the worker's
consumer; aiokafka passes it to its fetcher when the consumer starts.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

ISOLATION_LEVEL = "read_committed"


class _ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = ISOLATION_LEVEL  # read by AIOKafkaConsumer.start() for its fetcher
        return consumer


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = _ReadCommittedConsumer


def read_committed(app: faust.App) -> faust.App:
    """Give ``app`` the read_committed transport; call before anything asks for its topics."""
    app.transport = ReadCommittedTransport(app.conf.broker_consumer, app)
    return app
