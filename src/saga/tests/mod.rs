//! Tests of the pure core, driven by a hand-played driver (`harness`).

mod harness;
mod props;
mod recovery;
mod scenarios;
