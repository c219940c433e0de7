//! Who has to act on an error: the leaf every stage imports to classify its errors, so that
//! no stage imports the command layer above it.

/// Whether an error is the user's to fix (exit 2) or a fault of lockstep or the machine (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input: a manifest, a parameter, a URI, a version, a missing file.
    User,
    /// Anything else: I/O failures, a broken installation, a bug.
    Internal,
}

/// An error that knows who has to act on it and what they could try.
pub trait Classify {
    /// Who has to act on this error.
    fn class(&self) -> ErrorClass;

    /// Lines telling the user what to do next; empty where none helps.
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}
