//! `harness`: echolab's load generator, runner, result sets, reports, charts.
//!
//! The pipeline is visible in the module names: [`load`] generates load and
//! records it, [`measure`] watches the server process, [`bench`] runs one
//! cell, [`run`] runs a suite of cells into a result set ([`results`]),
//! [`report`] and [`compare`] read result sets from disk and nothing else.

mod serve;
mod results;

use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Debug, Parser)]
#[command(name = "harness", version, about = "echolab: eight concurrency models of one TCP echo server, measured side by side")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one model under the process contract (prints `listening on HOST:PORT`).
    Serve {
        /// single, threaded, pool, nonblocking, select, epoll, coroutine or async.
        model: String,
        /// --addr HOST:PORT and the model's own options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { model, args } => serve::serve(&model, args),
    }
}
