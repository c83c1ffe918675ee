//! kafkit driver for sim.
