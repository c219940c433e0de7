//! Integration tests of the `lockstep` command line: one binary, one module per area.

mod context;

mod archive_safety;
mod bad_input;
mod conda_channel;
mod docker;
mod environments;
mod examples;
mod git_sources;
mod hostile_records;
mod init;
mod lifecycle;
mod local_runs;
mod network;
mod pack_verify;
mod param_order;
mod races;
mod signals;
mod store;
mod subdir_links;
mod tracking;
