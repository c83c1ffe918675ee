//! Shared helpers for kafkit integration tests.
