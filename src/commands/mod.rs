//! One module per subcommand: each is a function from typed options to a typed outcome that
//! the CLI renders, and each ends with the one [`CommandError`].

pub mod cancel;
pub mod compare;
pub mod diff;
pub mod env;
pub mod error;
pub mod hash;
pub mod init;
pub mod logs;
pub mod outputs;
pub mod pack;
pub mod plot;
pub mod run;
pub mod runs;
pub mod show;
pub mod status;
pub mod sweep;
pub mod sync;
pub mod ui;
pub mod unpack;
pub mod verify;

pub use error::CommandError;
