"""The relay's partitioner puts every key where aiokafka's (and the Java client's) would."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.bus.kafka import key_partitioner, murmur2


def test_murmur2_is_the_java_clients_hash() -> None:
    # Kafka's own UtilsTest values, as signed 32-bit integers.
    assert murmur2(b"21") - (1 << 32) == -973932308
    assert murmur2(b"foobar") - (1 << 32) == -790332482


def test_every_key_lands_where_aiokafkas_partitioner_puts_it() -> None:
    chance = random.Random(20261205)
    for length in range(0, 130):
        for _ in range(20):
            key = chance.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key)
            partitions = list(range(chance.randint(1, 64)))
            assert key_partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert key_partitioner(None, [0, 1, 2], [2]) == 2
