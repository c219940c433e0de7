//! Integration tests of the `lockstep` command line: one binary, one module per area.

mod context;

mod bad_input;
mod conda_channel;
mod docker;
mod environments;
mod examples;
mod git_sources;
mod init;
mod local_runs;
mod pack_verify;
mod signals;
mod store;
mod subdir_links;
mod tracking;
