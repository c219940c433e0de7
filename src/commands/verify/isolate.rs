//! `verify --isolate`: the factors of nondeterminism a re-run can pin, one at a time, as
//! reprotest varies them: the thread count of BLAS and OpenMP, Python's hash seed, cuBLAS's
//! workspace (on a machine with a GPU), the time zone, locale and `SOURCE_DATE_EPOCH`, and
//! the working directory's path.

use serde::Serialize;

use super::rerun::Pins;
use crate::record::{RunRecord, Store};
use crate::support::ids::RunId;

/// The variables that set the thread counts of BLAS libraries, OpenMP and their kin.
const THREAD_VARIABLES: &[&str] = &[
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
];

/// One factor of nondeterminism that a re-run can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    /// One thread for BLAS and OpenMP: sums over threads are then added in one order.
    Threads,
    /// `PYTHONHASHSEED=0`: the order of sets and of dicts built from them is then fixed.
    HashSeed,
    /// `CUBLAS_WORKSPACE_CONFIG=:4096:8`: cuBLAS then picks deterministic algorithms.
    CublasWorkspace,
    /// `TZ=UTC`, the C.UTF-8 locale and `SOURCE_DATE_EPOCH` at the original run's start.
    TimeAndLocale,
    /// The same working directory for every re-run (each run has its own otherwise).
    WorkingDirectory,
}

impl Factor {
    /// The factors to try on a machine with or without a GPU, in the order they are tried.
    pub(super) fn all(gpu: bool) -> Vec<Factor> {
        let mut all = vec![Factor::Threads, Factor::HashSeed];
        if gpu {
            all.push(Factor::CublasWorkspace);
        }
        all.extend([Factor::TimeAndLocale, Factor::WorkingDirectory]);
        all
    }

    /// What pinning it means, in words.
    pub fn words(self) -> &'static str {
        match self {
            Factor::Threads => "single-threaded BLAS/OpenMP (OMP_NUM_THREADS=1 and kin)",
            Factor::HashSeed => "a fixed hash seed (PYTHONHASHSEED=0)",
            Factor::CublasWorkspace => "deterministic cuBLAS (CUBLAS_WORKSPACE_CONFIG=:4096:8)",
            Factor::TimeAndLocale => "a fixed time zone, locale and SOURCE_DATE_EPOCH",
            Factor::WorkingDirectory => "a fixed working directory",
        }
    }

    /// How a re-run of `original` pins it.
    pub(super) fn pins(self, original: &RunRecord, store: &Store) -> Pins {
        let set = |pairs: &[(&str, String)]| Pins {
            variables: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            workdir: None,
        };
        match self {
            Factor::Threads => Pins {
                variables: THREAD_VARIABLES.iter().map(|v| (v.to_string(), "1".to_string())).collect(),
                workdir: None,
            },
            Factor::HashSeed => set(&[("PYTHONHASHSEED", "0".into())]),
            Factor::CublasWorkspace => set(&[("CUBLAS_WORKSPACE_CONFIG", ":4096:8".into())]),
            Factor::TimeAndLocale => set(&[
                ("TZ", "UTC".into()),
                ("LC_ALL", "C.UTF-8".into()),
                ("LANG", "C.UTF-8".into()),
                ("SOURCE_DATE_EPOCH", (original.start_time / 1000).to_string()),
            ]),
            Factor::WorkingDirectory => {
                Pins { variables: Vec::new(), workdir: Some(store.pinned_work_dir(&original.run_id)) }
            }
        }
    }
}

/// The re-runs with one factor pinned.
#[derive(Debug, Clone, Serialize)]
pub struct FactorTrial {
    /// The factor.
    pub factor: Factor,
    /// The re-runs.
    pub runs: Vec<RunId>,
    /// Whether every output and metric was the same in all of them (and every one finished).
    pub stable: bool,
    /// What still varied.
    pub varying: Vec<String>,
}

/// What `--isolate` found.
#[derive(Debug, Clone, Serialize)]
pub struct Isolation {
    /// One trial per factor tried.
    pub trials: Vec<FactorTrial>,
    /// The factors whose pinning made the outputs stable.
    pub stabilising: Vec<Factor>,
    /// The factors not tried: `--max-runs` was reached, or nothing varied to begin with.
    pub untried: Vec<Factor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_factor_is_tried_only_with_a_gpu_and_each_pins_its_variables() {
        assert_eq!(Factor::all(false).len(), 4);
        assert_eq!(Factor::all(true)[2], Factor::CublasWorkspace);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let original = crate::record::sample_record("aa11", 1_700_000_000_123);
        let pins = Factor::TimeAndLocale.pins(&original, &store);
        assert!(pins.variables.contains(&("SOURCE_DATE_EPOCH".into(), "1700000000".into())), "{pins:?}");
        assert!(Factor::Threads.pins(&original, &store).variables.contains(&("OMP_NUM_THREADS".into(), "1".into())));
        let pinned = Factor::WorkingDirectory.pins(&original, &store).workdir.unwrap();
        assert_eq!(pinned, Factor::WorkingDirectory.pins(&original, &store).workdir.unwrap(), "the same each time");
        assert!(pinned.starts_with(dir.path()));
    }
}
