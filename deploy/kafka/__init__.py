"""Run a single-node Apache Kafka 4 (KRaft) broker from Maven Central jars, without Docker."""

from deploy.kafka.launcher import KafkaNode, free_port, kafka_jars

__all__ = ["KafkaNode", "free_port", "kafka_jars"]
