//! One module per subcommand: each is a function from typed options to a typed outcome that
//! the CLI renders, and each ends with the one [`CommandError`].
//!
//! `run`, `verify` and `status` are still called from their pipeline modules.

pub mod env;
pub mod error;
pub mod hash;
pub mod init;
pub mod pack;
pub mod runs;
pub mod show;
pub mod sync;
pub mod unpack;

pub use error::CommandError;
