"""Run a single-node Apache Kafka 4 (KRaft) broker from Maven Central jars, without Docker; who may do what on it."""

from deploy.kafka.launcher import BrokerSecurity, BrokerTls, KafkaNode, free_port, kafka_jars

__all__ = ["BrokerSecurity", "BrokerTls", "KafkaNode", "free_port", "kafka_jars"]
