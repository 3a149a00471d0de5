//! The deterministic world: runtime, nodes, transport, disks, clocks, faults.
//!
//! Everything that makes a run a pure function of its seed lives here.
//! `saga` never imports this module; the world drives the coordinator
//! through a trait.

pub mod clock;
pub mod disk;
pub mod faults;
pub mod net;
pub mod rng;
pub mod serve;
pub mod world;

pub use faults::{FaultPlan, SwarmProfile, Topology};
pub use net::{CallError, Net, NetConfig};
pub use world::{simulate, PhaseReport, World};
