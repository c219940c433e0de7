//! Backends: where a run runs, beyond this machine.

pub mod ray;
