"""The loop talks to its delivery through one small interface, whatever the mode: a recording fake
delivery drives ``EnrichStage.run`` end to end (no private methods, no Kafka)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from shoppulse.consumers.enrich.delivery import AtLeastOnceDelivery, FatalStageError, TransactionalDelivery
from shoppulse.consumers.enrich.stage import EnrichStage
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port
from tests.unit.consumers.enrich.test_stage_pipelining import HeldEnricher, ScriptedConsumer, review_message


class StoppingConsumer(ScriptedConsumer):
    """Hands out its batches, then stops the stage; answers metadata and subscription."""

    def __init__(self, batches: list[list[Any]]) -> None:
        super().__init__()
        self.batches, self.closed = batches, False
        self.stop: Any = None  # the stage's stop

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if not self.batches:
            self.stop()
        return super().consume(num_messages, timeout)

    def close(self) -> None:
        self.closed = True


class RecordingDelivery:
    name = "recording"

    def __init__(self, consumer: Any, pipelined: bool = False, starts: bool = True) -> None:
        self.consumer, self.producer, self.pipelined, self.starts = consumer, self, pipelined, starts
        self.calls: list[Any] = []
        self.fail_after_step: Exception | None = None

    def poll(self, timeout: float = 0) -> int:  # the loop serves the producer's callbacks each turn
        return 0

    def start(self) -> bool:
        self.calls.append("start")
        return self.starts

    def deliver(self, ordered: list[Any]) -> None:
        self.calls.append(("deliver", [(source.partition, source.offset) for _, source, _ in ordered]))

    def after_step(self) -> None:
        if self.fail_after_step is not None:
            raise self.fail_after_step

    def on_revoke(self, tps: list[Any]) -> None:
        self.calls.append(("on_revoke", tps))

    def forget(self, tps: list[Any]) -> None:
        self.calls.append(("forget", tps))

    def in_flight(self) -> int:
        return 0

    def drain(self) -> None:
        self.calls.append("drain")


def stage_with(batches: list[list[Any]], **delivery: Any) -> tuple[EnrichStage, RecordingDelivery, StoppingConsumer]:
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    consumer = StoppingConsumer(batches)
    fake = RecordingDelivery(consumer, **delivery)
    stage = EnrichStage(settings, enricher=HeldEnricher(), install_signals=False, delivery=fake)  # type: ignore[arg-type]
    consumer.stop = stage.stop_event.set
    stage.on_assign(consumer, [TopicPartition("reviews", 0), TopicPartition("reviews", 1)])  # type: ignore[arg-type]
    return stage, fake, consumer


def test_run_starts_delivers_each_batch_in_input_order_and_drains() -> None:
    batches = [[review_message(0, 3), review_message(1, 0), review_message(0, 4)], [review_message(1, 1)]]
    stage, delivery, consumer = stage_with(batches)
    assert stage.run() == 0
    assert delivery.calls == ["start", ("deliver", [(0, 3), (1, 0), (0, 4)]), ("deliver", [(1, 1)]), "drain"]
    assert consumer.closed and consumer.subscribed == stage.topics.inputs()


def test_a_pipelined_delivery_gets_the_same_batches_one_turn_later() -> None:
    stage, delivery, _ = stage_with([[review_message(0, 0)], [review_message(0, 1)]], pipelined=True)
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    # resolve each model call as soon as it is made: the loop finishes batch N while N+1 is taken in
    original = enricher.infer_async

    def resolved(plan: Any) -> Any:
        future = original(plan)
        future.set_result({})
        return future

    enricher.infer_async = resolved  # type: ignore[method-assign]
    assert stage.run() == 0
    assert [c for c in delivery.calls if c[0] == "deliver"] == [("deliver", [(0, 0)]), ("deliver", [(0, 1)])]
    assert len(enricher.futures) == 2  # both batches went through the asynchronous model call


def test_a_delivery_that_cannot_start_stops_the_stage_with_1() -> None:
    stage, delivery, consumer = stage_with([[review_message(0, 0)]], starts=False)
    assert stage.run() == 1
    assert delivery.calls == ["start"] and consumer.closed


def test_a_fatal_delivery_error_exits_1_and_still_drains() -> None:
    stage, delivery, consumer = stage_with([[review_message(0, 0)], [review_message(0, 1)]])
    delivery.fail_after_step = FatalStageError("output lost")
    assert stage.run() == 1
    assert delivery.calls == ["start", "drain"]  # the batch polled with the failure report is not produced
    assert len(consumer.batches) == 1  # and nothing more is consumed


def test_a_revocation_goes_to_the_delivery_then_is_forgotten() -> None:
    stage, delivery, consumer = stage_with([])
    stage.on_revoke(consumer, [TopicPartition("reviews", 1)])  # type: ignore[arg-type]  # librdkafka's callback
    assert delivery.calls == [("on_revoke", [("reviews", 1)]), ("forget", [("reviews", 1)])]
    assert stage.assigned == {("reviews", 0)}


def test_the_settings_choose_the_delivery() -> None:
    for exactly_once, kind in ((False, AtLeastOnceDelivery), (True, TransactionalDelivery)):
        settings = load_settings(
            kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, enrich={"exactly_once": exactly_once}
        )
        stage = EnrichStage(settings, enricher=HeldEnricher(), install_signals=False)  # type: ignore[arg-type]
        stage.consumer.close()
        assert type(stage.delivery) is kind and stage.delivery.pipelined is (not exactly_once)


def test_a_stalled_client_exits_at_once_without_draining() -> None:
    from shoppulse.consumers.enrich.delivery import StalledClientError

    stage, delivery, _ = stage_with([[review_message(0, 0)]])
    exits: list[int] = []
    stage.hard_exit = exits.append
    delivery.fail_after_step = StalledClientError("send_offsets_to_transaction did not return within 45 s")
    assert stage.run() == 1
    assert exits == [1] and "drain" not in delivery.calls  # draining would wait on the stuck client too
