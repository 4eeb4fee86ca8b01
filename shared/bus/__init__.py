"""The event bus: outbox and relay, consumer runner with inbox and dead-letter topic, Kafka clients."""
