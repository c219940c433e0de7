//! The words of `--help` beyond each flag's own line: the option headings, and each command's
//! examples with a pointer to its docs.

/// The heading of the options that choose what to run: version, entry point, parameters.
pub(crate) const SOURCE: &str = "Source options";
/// The heading of the options that choose or shape the environment.
pub(crate) const ENVIRONMENT: &str = "Environment options";
/// The heading of the options of Docker projects only.
pub(crate) const DOCKER: &str = "Docker options";
/// The heading of the options of an MLflow tracking server.
pub(crate) const TRACKING: &str = "Tracking options";
/// The heading of the options of the run store.
pub(crate) const STORE: &str = "Store options";

/// `lockstep --help`.
pub(crate) const TOP: &str = "\
Examples:
  lockstep init demo && lockstep run demo -P alpha=0.5
  lockstep runs
  lockstep verify RUN

Docs: README.md and docs/cli.md in the lockstep repository; man pages in docs/man/.";

/// `lockstep run --help`.
pub(crate) const RUN: &str = "\
Examples:
  lockstep run examples/sklearn -P alpha=0.5
  lockstep run https://github.com/mlflow/mlflow-example -v master --env-manager uv

Docs: docs/cli.md#lockstep-run, docs/sources.md, docs/environments.md.";

/// `lockstep runs --help`.
pub(crate) const RUNS: &str = "\
Examples:
  lockstep runs -n 10 --status failed
  lockstep runs --project demo -e main --wide

Docs: docs/cli.md#lockstep-runs.";

/// `lockstep show --help`.
pub(crate) const SHOW: &str = "\
Examples:
  lockstep show 3f2a
  lockstep show 3f2a --json

Docs: docs/records.md.";

/// `lockstep logs --help`.
pub(crate) const LOGS: &str = "\
Examples:
  lockstep logs 3f2a --follow
  lockstep logs 3f2a --stderr

Docs: docs/cli.md#other-commands.";

/// `lockstep pack --help`.
pub(crate) const PACK: &str = "\
Examples:
  lockstep pack examples/sklearn
  lockstep pack examples/sklearn --run 3f2a -o sklearn.tar.gz

Docs: docs/pack-verify-status.md#lockstep-pack.";

/// `lockstep unpack --help`.
pub(crate) const UNPACK: &str = "\
Examples:
  lockstep unpack sklearn.tar.gz sklearn

Docs: docs/pack-verify-status.md.";

/// `lockstep verify --help`.
pub(crate) const VERIFY: &str = "\
Examples:
  lockstep verify 3f2a
  lockstep verify sklearn.tar.gz --ignore 'plots/*' --rtol 1e-6

Docs: docs/pack-verify-status.md#lockstep-verify.";

/// `lockstep status --help`.
pub(crate) const STATUS: &str = "\
Examples:
  lockstep status 3f2a

Docs: docs/pack-verify-status.md#lockstep-status.";

/// `lockstep diff --help`.
pub(crate) const DIFF: &str = "\
Examples:
  lockstep diff 3f2a 9c1e

Docs: docs/tracking.md#comparing-runs.";

/// `lockstep init --help`.
pub(crate) const INIT: &str = "\
Examples:
  lockstep init demo
  lockstep init demo --template docker

Docs: docs/cli.md#other-commands.";

/// `lockstep hash --help`.
pub(crate) const HASH: &str = "\
Examples:
  lockstep hash examples/sklearn --files

Docs: docs/tree-hash.md.";

/// `lockstep sync --help`.
pub(crate) const SYNC: &str = "\
Examples:
  lockstep sync 3f2a --tracking-uri http://127.0.0.1:5000
  lockstep sync 3f2a --experiment-name sklearn

Docs: docs/tracking.md#lockstep-sync.";

/// `lockstep env --help` and its subcommands.
pub(crate) const ENV: &str = "\
Examples:
  lockstep env list
  lockstep env prune --older-than 7d

Docs: docs/environments.md#the-environment-cache, docs/cache.md.";

/// `lockstep sweep --help`.
pub(crate) const SWEEP: &str = "\
Examples:
  lockstep sweep examples/sklearn -P alpha=0.1,0.5,1 -P l1_ratio='linspace(0,1,3)' -j 2
  lockstep sweep show 7b0c --metric rmse

Docs: docs/sweeps.md.";

/// `lockstep completions --help`.
pub(crate) const COMPLETIONS: &str = "\
Examples:
  lockstep completions bash > ~/.local/share/bash-completion/completions/lockstep
  lockstep completions zsh > ~/.zfunc/_lockstep
  lockstep completions fish > ~/.config/fish/completions/lockstep.fish

Docs: docs/cli.md#shell-completions-and-the-man-page.";
