"""The KRaft cluster id we generate must always be accepted by ``kafka-storage format``."""

import base64
import uuid

from shoppulse.devkit.broker import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch):
    # uuid4 whose base64url form starts with "-" (first 6 bits = 62), then an ordinary one.
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))
    plain = uuid.UUID(bytes=bytes([0x10]) + bytes(15))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka._random_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
    assert base64.urlsafe_b64decode(cluster_id + "==") == plain.bytes


def test_cluster_ids_are_random_and_well_formed():
    ids = {kafka._random_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
