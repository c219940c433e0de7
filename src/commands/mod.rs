//! One module per subcommand: a function from typed options to a typed outcome.

pub mod compare;
pub mod run;
pub mod status;
pub mod verify;
