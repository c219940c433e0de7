//! The `lockstep` binary: everything it does is in the library's command line.

fn main() -> std::process::ExitCode {
    lockstep::cli::main()
}
