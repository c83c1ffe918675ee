//! Runnable kafkit examples live under `examples/`.
