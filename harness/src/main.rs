//! `harness`: echolab's load generator, runner, result sets, reports, charts.
//!
//! The pipeline is visible in the module names: [`load`] generates load and
//! records it, [`measure`] watches the server process, [`bench`] runs one
//! cell, [`run`] runs a suite of cells into a result set ([`results`]),
//! [`report`] and [`compare`] read result sets from disk and nothing else.

#![forbid(unsafe_code)]

mod bench;
mod compare;
mod load;
mod measure;
mod report;
mod results;
mod run;
mod serve;

use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "echolab: eight concurrency models of one TCP echo server, measured side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one model under the process contract (prints `listening on HOST:PORT`).
    Serve {
        /// MODEL (single, threaded, pool, nonblocking, select, epoll,
        /// coroutine or async), then --addr HOST:PORT and the model's own
        /// options (`harness serve MODEL --help` lists them).
        #[arg(
            required = true,
            value_name = "MODEL [--addr HOST:PORT] [OPTIONS]",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        model_and_args: Vec<OsString>,
    },
    /// Measure one cell: one model (or --target) under one load.
    Bench(bench::BenchArgs),
    /// Run a suite of cells into a result set, with its report (the main job).
    Run(run::RunArgs),
    /// Regenerate charts/ and the report of a result set from its raw files.
    Report(report::ReportArgs),
    /// Put two result sets side by side.
    Compare(compare::CompareArgs),
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve { mut model_and_args } => {
            let args = model_and_args.split_off(1);
            serve::serve(&model_and_args[0].to_string_lossy(), args)
        }
        Command::Bench(args) => bench::main(args),
        Command::Run(args) => run::main(args),
        Command::Report(args) => report::main(args),
        Command::Compare(args) => compare::main(args),
    };
    if let Err(error) = outcome {
        // One sentence a user understands: the chain of contexts, no backtrace.
        eprintln!("harness: {error:#}");
        std::process::exit(1);
    }
}
