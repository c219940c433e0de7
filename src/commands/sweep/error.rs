//! The errors of planning a sweep: its values, its grid and its options, all the user's.

use crate::manifest::ParamType;
use crate::support::error_class::ErrorClass;

/// A sweep that cannot start; nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A `-P` without `=` or without a name.
    #[error("-P {arg}: expected NAME=VALUES")]
    ParamWithoutValue {
        /// The argument.
        arg: String,
    },
    /// The same name in two `-P`s.
    #[error("-P {name} is given twice: put all its values in one -P {name}=a,b,...")]
    RepeatedParam {
        /// The name.
        name: String,
    },
    /// Values that do not parse.
    #[error("-P {name}={text}: {reason}")]
    BadValues {
        /// The parameter.
        name: String,
        /// The values as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A value that does not fit the parameter's declared type.
    #[error("parameter '{name}' is declared {}, and its value '{value}' {reason}", .ty.name())]
    WrongType {
        /// The parameter.
        name: String,
        /// Its declared type.
        ty: ParamType,
        /// The value.
        value: String,
        /// Why it does not fit.
        reason: &'static str,
    },
    /// The grid is too large to run whole.
    #[error("the grid has {trials} trials, more than {max}")]
    TooManyTrials {
        /// Its size.
        trials: u128,
        /// The limit.
        max: u128,
    },
    /// `--jobs 0`.
    #[error("--jobs must be at least 1")]
    NoJobs,
}

impl SweepError {
    /// Who has to act: always the user.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::User
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            SweepError::BadValues { .. } => Some(
                "values are a comma list, range(start, stop, step), linspace(a, b, n), logspace(a, b, n), \
                 or a quoted list for values with commas: -P 'tag=[\"a,b\",\"c\"]'"
                    .into(),
            ),
            SweepError::TooManyTrials { .. } => Some("sample it: --random N --seed S".into()),
            _ => None,
        }
    }
}
