//! `harness`: echolab's load generator, runner, result sets, reports, charts.
//!
//! The pipeline is visible in the module names: [`server`] is the server
//! under test (a model, a command, or a target), [`cpus`] where it and the
//! load run, [`load`] generates load and records it, [`measure`] watches the
//! server's process tree and the harness itself, [`cell`] measures one cell,
//! [`bench`] and [`run`] are the commands that measure (one cell, a suite into
//! a result set, [`results`]), [`tour`] walks the course claim by claim into
//! a result set, [`report`] and [`compare`] read result sets from disk and
//! nothing else. [`fleet`] takes them beyond one machine: suites sharded over
//! machines, cells driven by several load hosts, and the merge of their
//! result sets.
//!
//! Unsafe code is denied everywhere but one function: the pre-exec hook that
//! ties a spawned server's life to the harness (`server::process`).

#![deny(unsafe_code)]

mod bench;
mod cell;
mod compare;
mod cpus;
mod faults;
mod fleet;
mod load;
mod measure;
mod profiles;
mod protocol;
mod report;
mod results;
mod run;
mod serve;
mod server;
mod stats;
mod tour;

use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "echolab: concurrency models of one TCP echo server, measured side by side"
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
        /// coroutine, async, process, uring or reuseport), then --addr
        /// HOST:PORT and the model's own options (`harness serve MODEL
        /// --help` lists them).
        #[arg(
            required = true,
            value_name = "MODEL [--addr HOST:PORT] [OPTIONS]",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        model_and_args: Vec<OsString>,
    },
    /// Measure one cell: one server (--model, --server-cmd or --target) under one load.
    Bench(bench::BenchArgs),
    /// Run a suite of cells into a result set, with its report (the main job).
    Run(run::RunArgs),
    /// Regenerate charts/ and the report of a result set from its raw files.
    Report(report::ReportArgs),
    /// Put two result sets side by side.
    Compare(compare::CompareArgs),
    /// Merge result sets: a suite's shards, or the load hosts' shares of a cell.
    Merge(fleet::merge::MergeArgs),
    /// Walk the course claim by claim: predict, measure, and give a verdict.
    Tour(tour::TourArgs),
    /// The robustness matrix: every server against every fault, the damage measured.
    Faults(faults::FaultsArgs),
}

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. })
        && let Err(error) = server::guard::install()
    {
        eprintln!("harness: cannot install signal handling: {error}");
        std::process::exit(1);
    }
    let outcome = match cli.command {
        Command::Serve { mut model_and_args } => {
            let args = model_and_args.split_off(1);
            serve::serve(&model_and_args[0].to_string_lossy(), args)
        }
        Command::Bench(args) => bench::main(args),
        Command::Run(args) => run::main(args),
        Command::Report(args) => report::main(args),
        Command::Compare(args) => compare::main(args),
        Command::Merge(args) => fleet::merge::main(args),
        Command::Tour(args) => tour::main(args),
        Command::Faults(args) => faults::main(args),
    };
    server::cgroup::remove_harness();
    if let Err(error) = outcome {
        // One sentence a user understands: the chain of contexts, no backtrace.
        eprintln!("harness: {error:#}");
        // A model this machine cannot run exits as the model itself did.
        let unsupported = error.downcast_ref::<server::process::Unsupported>().is_some();
        std::process::exit(if unsupported {
            echo_core::process::EXIT_UNSUPPORTED
        } else {
            1
        });
    }
}
