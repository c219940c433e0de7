//! The arguments of `lockstep outputs`, and of which outputs a run keeps (`--no-keep-outputs`,
//! `--keep-limit`): clap structs only.

use std::path::PathBuf;

use clap::Args;

use super::StoreArg;
use crate::record::KeepOutputs;

#[derive(Args)]
pub(crate) struct OutputsArgs {
    /// A run id (or a unique prefix of one), or a record.json file.
    pub(crate) run: String,
    /// One output, or a directory of outputs (default: all of them).
    pub(crate) path: Option<String>,
    /// The directory to restore into.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Replace files that hold other content (by default nothing is written then).
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct KeepArgs {
    /// Keep no copy of the run's outputs in the store, only their sha256 (`lockstep outputs`
    /// cannot restore them then).
    #[arg(long)]
    pub(crate) no_keep_outputs: bool,
    /// Keep copies of output files up to this size (bytes, or with K, M or G); larger ones
    /// are recorded by sha256 only.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "100M", conflicts_with = "no_keep_outputs")]
    pub(crate) keep_limit: u64,
}

impl KeepArgs {
    /// The policy these flags ask for.
    pub(crate) fn policy(&self) -> KeepOutputs {
        match self.no_keep_outputs {
            true => KeepOutputs::Off,
            false => KeepOutputs::UpTo(self.keep_limit),
        }
    }
}

/// A size: bytes, or a number followed by K, M or G (powers of 1024; `KiB`, `MB` and the
/// like are read the same).
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a size: write bytes, or a number with K, M or G (as in 100M)");
    let lower = s.trim().to_ascii_lowercase();
    let unit_at = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_at);
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bytes_or_binary_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        for bad in ["", "M", "1.5M", "10T", "-1", "99999999999999G"] {
            assert!(parse_size(bad).unwrap_err().contains("is not a size"), "{bad}");
        }
    }
}
