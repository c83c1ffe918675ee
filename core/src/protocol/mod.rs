//! Generated Kafka protocol messages.
