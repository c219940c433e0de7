//! The arguments of `lockstep ui` and `lockstep plot`: clap structs only.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::StoreArg;

#[derive(Args)]
pub(crate) struct UiArgs {
    /// The address to listen on; anything but loopback lets others on the network try the
    /// token.
    #[arg(long, value_name = "ADDR")]
    pub(crate) host: Option<std::net::IpAddr>,
    /// The port; 0 picks a free one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) port: u16,
    /// Open the URL in the desktop's browser.
    #[arg(long)]
    pub(crate) open: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct PlotArgs {
    /// The runs (ids or unique prefixes), a line each.
    #[arg(required = true, value_name = "RUN")]
    pub(crate) runs: Vec<String>,
    /// The metric their scripts logged.
    #[arg(long, value_name = "NAME")]
    pub(crate) metric: String,
    /// The chart's file: its name ends in .svg or .png.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Plot against the step or the time since the run's first point.
    #[arg(long, value_enum, default_value_t = XArg::Step)]
    pub(crate) x: XArg,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum XArg {
    Step,
    Time,
}
