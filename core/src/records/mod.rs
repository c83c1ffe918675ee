//! Record batches and legacy message sets.
