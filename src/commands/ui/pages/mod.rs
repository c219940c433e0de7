//! The UI's pages, one module each: the runs, a run, runs compared, a sweep, a file; and the
//! charts they share.

pub(crate) mod charts;
pub(crate) mod compare;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod sweep;
pub(crate) mod view;
