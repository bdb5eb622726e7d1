//! The process contract shared by every model binary and `harness serve`.
//!
//! ```text
//! server-MODEL [--addr HOST:PORT] [model options]
//! ```
//!
//! binds (port 0 = any free port), prints exactly one line
//! `listening on HOST:PORT` on stdout once it accepts connections, logs only
//! to stderr, and runs until SIGTERM or SIGINT, then exits 0 at once.

use crate::BACKLOG;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, Signal};
use socket2::{Domain, Socket, Type};
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// A model's `serve` function: the caller binds, the model serves.
pub type Serve<O> = fn(TcpListener, &O) -> io::Result<()>;

#[derive(Debug, Parser)]
#[command(disable_version_flag = true)]
struct Cli<O: Args> {
    /// Address to listen on, HOST:PORT; port 0 picks any free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    addr: String,

    #[command(flatten)]
    options: O,
}

/// Entry point of a model binary: `fn main() { echo_core::process::main("epoll", serve) }`.
pub fn main<O: Args>(model: &str, serve: Serve<O>) -> ! {
    run(model, std::env::args_os(), serve)
}

/// Parses `args` (the first one is the program name), then runs the model
/// under the process contract. Never returns: exits 0 on SIGTERM/SIGINT,
/// 2 on bad arguments, 1 when the address cannot be bound or `serve` fails.
pub fn run<O: Args, I, T>(model: &str, args: I, serve: Serve<O>) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let about = format!(
        "The echolab `{model}` echo server: prints `listening on HOST:PORT`, echoes every byte \
         back, and exits 0 on SIGTERM or SIGINT."
    );
    let cli = Cli::<O>::command()
        .about(about)
        .try_get_matches_from(args)
        .and_then(|matches| Cli::<O>::from_arg_matches(&matches))
        .unwrap_or_else(|error| error.exit());
    if let Err(error) = raise_fd_limit() {
        eprintln!("{model}: cannot raise the open-file limit: {error}");
    }
    if let Err(error) = stop_on_signals() {
        fail(model, format_args!("cannot install signal handling: {error}"));
    }
    let listener = match bind(&cli.addr) {
        Ok(listener) => listener,
        Err(error) => fail(model, format_args!("cannot listen on {}: {error}", cli.addr)),
    };
    if let Err(error) = announce(&listener) {
        fail(model, format_args!("cannot write the ready line: {error}"));
    }
    match serve(listener, &cli.options) {
        Ok(()) => std::process::exit(0),
        Err(error) => fail(model, format_args!("stopped: {error}")),
    }
}

fn fail(model: &str, message: std::fmt::Arguments) -> ! {
    eprintln!("{model}: {message}");
    std::process::exit(1)
}

/// Resolves `addr` and listens on the first address that binds, with
/// SO_REUSEADDR and the shared [`BACKLOG`].
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|error| io::Error::new(error.kind(), format!("bad address: {error}")))?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing");
    for addr in addrs {
        match bind_one(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Prints the ready line, `listening on HOST:PORT`, and flushes it.
pub fn announce(listener: &TcpListener) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so the process can hold as
/// many connections as it is allowed to. Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
/// starts later, and starts one thread that waits for them and exits 0.
///
/// Call it before starting any other thread (runtimes included): a thread
/// started earlier would still receive the signal's default action.
pub fn stop_on_signals() -> io::Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // The only way out of a blocking model's accept loop is this exit.
            let _ = signals.wait();
            let _ = io::stdout().flush();
            std::process::exit(0);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_to_a_real_port() {
        let listener = bind("127.0.0.1:0").unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn a_port_in_use_is_an_error() {
        let first = bind("127.0.0.1:0").unwrap();
        let error = bind(&first.local_addr().unwrap().to_string()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_bad_address_is_an_error() {
        assert!(bind("not an address").is_err());
        assert!(bind("127.0.0.1:99999").is_err());
    }
}
