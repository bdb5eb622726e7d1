//! The process contract shared by every model binary and `harness serve`.
//!
//! ```text
//! server-MODEL [--addr HOST:PORT] [model options]
//! ```
//!
//! binds (port 0 = any free port), prints exactly one line
//! `listening on HOST:PORT` on stdout once it accepts connections, logs only
//! to stderr, and runs until SIGTERM or SIGINT, then exits 0 at once.
//!
//! Most models take the defaults ([`main`], [`run`]). A model that needs more
//! of the process passes a [`Setup`] to [`main_with`] / [`run_with`]: a model
//! that forks handles the signals itself, so that no thread exists when it
//! forks; a model with several listeners on one port asks for SO_REUSEPORT;
//! a model the machine may not be able to run (io_uring) says so before the
//! ready line, and the process exits with [`EXIT_UNSUPPORTED`].
//!
//! The datagram model (`udp`) has no listener: the contract binds one UDP
//! socket instead and hands it over ([`main_datagrams_with`], [`run_datagrams_with`]);
//! everything else (options, signals, ready line, exit codes) is the same.

use crate::BACKLOG;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, Signal};
use socket2::{Domain, Socket, Type};
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::sync::{Mutex, PoisonError};

/// A model's `serve` function: the caller binds, the model serves.
pub type Serve<O> = fn(TcpListener, &O) -> io::Result<()>;

/// The datagram model's `serve`: the caller binds one UDP socket.
pub type ServeDatagrams<O> = fn(UdpSocket, &O) -> io::Result<()>;

/// What the process contract binds before the model serves: a TCP listener,
/// or the datagram model's UDP socket.
pub trait Endpoint: Sized {
    /// Whether it carries a byte stream, which the protocol step drives
    /// (`--protocol`, `--work`); a datagram socket echoes datagrams only.
    const STREAM: bool;
    /// Binds exactly `addr` (and listens, for TCP), with SO_REUSEPORT if asked.
    fn bind_exactly(addr: SocketAddr, reuse_port: bool) -> io::Result<Self>;
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Endpoint for TcpListener {
    const STREAM: bool = true;
    fn bind_exactly(addr: SocketAddr, reuse_port: bool) -> io::Result<Self> {
        listen_on(addr, reuse_port)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

impl Endpoint for UdpSocket {
    const STREAM: bool = false;
    fn bind_exactly(addr: SocketAddr, reuse_port: bool) -> io::Result<Self> {
        udp_socket_on(addr, reuse_port)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }
}

/// Exit status of a model this machine cannot run (io_uring disabled or
/// missing, say): the harness records the cell as `unsupported`, not failed.
pub const EXIT_UNSUPPORTED: i32 = 3;

/// Who receives SIGTERM and SIGINT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Signals {
    /// A `signals` thread, started before `serve`, waits for them, runs the
    /// [`on_stop`] hooks and exits 0 ([`stop_on_signals`]).
    #[default]
    Thread,
    /// The model's: both are blocked (so they stay pending, never lost) and
    /// no thread is started, so `serve` runs in a single-threaded process and
    /// may fork. The model must take them itself (signalfd, sigwait, or
    /// unblocking them in children) and exit 0.
    Model,
}

/// What a model asks of the process contract beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Setup<O> {
    pub signals: Signals,
    /// Whether the listener gets SO_REUSEPORT (set before bind), given the
    /// model's options, so that more listeners can bind the same port
    /// ([`listen_on`]).
    pub reuse_port: fn(&O) -> bool,
    /// Runs before anything else: `Err(sentence)` means this machine cannot
    /// run the model. The sentence (the cause and the fix) is printed on
    /// stderr and the process exits with [`EXIT_UNSUPPORTED`], before any
    /// ready line.
    pub supported: fn(&O) -> Result<(), String>,
}

impl<O> Default for Setup<O> {
    fn default() -> Self {
        Setup {
            signals: Signals::Thread,
            reuse_port: |_| false,
            supported: |_| Ok(()),
        }
    }
}

#[derive(Debug, Parser)]
#[command(disable_version_flag = true)]
struct Cli<O: Args> {
    /// Address to listen on, HOST:PORT; port 0 picks any free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    addr: String,

    #[command(flatten)]
    options: O,

    #[command(flatten)]
    service: crate::service::ServiceArgs,
}

/// A model's options parsed from `args` (its options alone, as after
/// `server-MODEL`), the way its binary parses them: for tests of defaults
/// and bounds.
pub fn parse_options<O: Args>(args: &[&str]) -> Result<O, clap::Error> {
    Cli::<O>::try_parse_from(std::iter::once("server").chain(args.iter().copied())).map(|cli| cli.options)
}

/// Entry point of a model binary: `fn main() { echo_core::process::main("epoll", serve) }`.
pub fn main<O: Args>(model: &str, serve: Serve<O>) -> ! {
    run(model, std::env::args_os(), serve)
}

/// Entry point of a model binary that needs a [`Setup`] of its own.
pub fn main_with<O: Args>(model: &str, setup: Setup<O>, serve: Serve<O>) -> ! {
    run_with(model, setup, std::env::args_os(), serve)
}

/// Entry point of the datagram model's binary.
pub fn main_datagrams_with<O: Args>(model: &str, setup: Setup<O>, serve: ServeDatagrams<O>) -> ! {
    run_datagrams_with(model, setup, std::env::args_os(), serve)
}

/// Parses `args` (the first one is the program name), then runs the model
/// under the process contract. Never returns: exits 0 on SIGTERM/SIGINT,
/// 2 on bad arguments (a `--root` that is not a directory included), 1 when the address cannot be bound or `serve` fails.
pub fn run<O: Args, I, T>(model: &str, args: I, serve: Serve<O>) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(model, Setup::default(), args, serve)
}

/// [`run`] with a model's own [`Setup`]; also exits [`EXIT_UNSUPPORTED`]
/// when `setup.supported` says this machine cannot run the model.
pub fn run_with<O: Args, I, T>(model: &str, setup: Setup<O>, args: I, serve: Serve<O>) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_endpoint(model, setup, args, serve)
}

/// [`run_with`] for the datagram model: binds a UDP socket, not a listener.
pub fn run_datagrams_with<O: Args, I, T>(model: &str, setup: Setup<O>, args: I, serve: ServeDatagrams<O>) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_endpoint(model, setup, args, serve)
}

fn run_endpoint<O: Args, E: Endpoint, I, T>(
    model: &str,
    setup: Setup<O>,
    args: I,
    serve: fn(E, &O) -> io::Result<()>,
) -> !
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let about = format!(
        "The echolab `{model}` server: prints `listening on HOST:PORT`, echoes every byte \
         back (or speaks HTTP/1.1 with --protocol http), and exits 0 on SIGTERM or SIGINT."
    );
    let cli = Cli::<O>::command()
        .about(about)
        .try_get_matches_from(args)
        .and_then(|matches| Cli::<O>::from_arg_matches(&matches))
        .unwrap_or_else(|error| error.exit());
    match crate::service::Service::new(model, &cli.service) {
        Ok(service) if !E::STREAM && (service.protocol, service.work) != Default::default() => {
            eprintln!(
                "{model}: --protocol and --work apply to the TCP models; {model} echoes datagrams only"
            );
            std::process::exit(2);
        }
        Ok(service) => crate::service::install(service),
        Err(sentence) => {
            eprintln!("{model}: {sentence}");
            std::process::exit(2);
        }
    }
    if let Err(sentence) = (setup.supported)(&cli.options) {
        eprintln!("{model}: unsupported on this machine: {sentence}");
        std::process::exit(EXIT_UNSUPPORTED);
    }
    if let Err(error) = raise_fd_limit() {
        eprintln!("{model}: cannot raise the open-file limit: {error}");
    }
    let signals = match setup.signals {
        Signals::Thread => stop_on_signals(),
        Signals::Model => stop_signals().thread_block().map_err(io::Error::from),
    };
    if let Err(error) = signals {
        fail(model, format_args!("cannot install signal handling: {error}"));
    }
    let listener = match bind_first::<E>(&cli.addr, (setup.reuse_port)(&cli.options)) {
        Ok(listener) => listener,
        Err(error) => fail(model, format_args!("cannot listen on {}: {error}", cli.addr)),
    };
    if let Err(error) = listener.local_addr().and_then(announce_addr) {
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
    bind_with(addr, false)
}

/// [`bind`], with SO_REUSEPORT too when `reuse_port` is set.
pub fn bind_with(addr: &str, reuse_port: bool) -> io::Result<TcpListener> {
    bind_first(addr, reuse_port)
}

/// Resolves `addr` and binds a UDP socket on the first address that binds,
/// with SO_REUSEPORT when `reuse_port` is set ([`udp_socket_on`]).
pub fn bind_udp(addr: &str, reuse_port: bool) -> io::Result<UdpSocket> {
    bind_first(addr, reuse_port)
}

fn bind_first<E: Endpoint>(addr: &str, reuse_port: bool) -> io::Result<E> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|error| io::Error::new(error.kind(), format!("bad address: {error}")))?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing");
    for addr in addrs {
        match E::bind_exactly(addr, reuse_port) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Listens on exactly `addr` with SO_REUSEADDR, the shared [`BACKLOG`] and,
/// if asked, SO_REUSEPORT: another listener of this process with
/// SO_REUSEPORT on the same port gets a share of its connections, spread by
/// a hash of the connection's addresses (`reuseport`, `process --prefork`).
pub fn listen_on(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// `first`, bound with SO_REUSEPORT, then `count - 1` more SO_REUSEPORT
/// listeners on its address (see [`listen_on`]): `count` in all (at least
/// `first`), each given its share of the connections.
pub fn reuse_port_listeners(first: TcpListener, count: usize) -> io::Result<Vec<TcpListener>> {
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(listen_on(addr, true)?);
    }
    Ok(listeners)
}

/// A UDP socket bound to exactly `addr`, with SO_REUSEPORT if asked: then
/// more sockets of this process on the same port each get a share of the
/// peers, spread by a hash of the datagram's addresses (`udp --workers`).
/// The receive buffer stays the kernel's default (`net.core.rmem_default`),
/// so what a burst overflows is the machine's setting, not ours.
pub fn udp_socket_on(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// `first`, bound with SO_REUSEPORT, then `count - 1` more UDP sockets on its
/// address (see [`udp_socket_on`]): `count` in all (at least `first`).
pub fn reuse_port_udp_sockets(first: UdpSocket, count: usize) -> io::Result<Vec<UdpSocket>> {
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(udp_socket_on(addr, true)?);
    }
    Ok(sockets)
}

/// Prints the ready line, `listening on HOST:PORT`, and flushes it.
pub fn announce(listener: &TcpListener) -> io::Result<()> {
    announce_addr(listener.local_addr()?)
}

fn announce_addr(addr: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
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

/// The signals that stop a server: SIGTERM and SIGINT.
pub fn stop_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
}

/// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
/// starts later, and starts one thread that waits for them, runs the
/// [`on_stop`] hooks, and exits 0.
///
/// Call it before starting any other thread (runtimes included): a thread
/// started earlier would still receive the signal's default action.
pub fn stop_on_signals() -> io::Result<()> {
    let signals = stop_signals();
    signals.thread_block()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // The only way out of a blocking model's accept loop is this exit.
            let _ = signals.wait();
            run_stop_hooks();
            let _ = io::stdout().flush();
            std::process::exit(0);
        })?;
    Ok(())
}

type StopHook = Box<dyn Fn() + Send>;

static STOP_HOOKS: Mutex<Vec<StopHook>> = Mutex::new(Vec::new());

/// Registers `hook` to run when the `signals` thread stops the server, just
/// before it exits 0: a model's last log lines (what each worker did). Keep
/// it short; it must not wait for the model's threads, which are still
/// running.
pub fn on_stop(hook: impl Fn() + Send + 'static) {
    STOP_HOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

fn run_stop_hooks() {
    let hooks = STOP_HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
    for hook in hooks.iter() {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Args)]
    struct Edge {
        #[arg(long)]
        edge: bool,
    }

    fn parse(args: &[&str]) -> Result<Cli<Edge>, clap::Error> {
        Cli::<Edge>::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
    }

    #[test]
    fn every_model_takes_protocol_root_and_work_beside_its_own_options() {
        use crate::service::{Protocol, Work};
        let cli = parse(&[
            "--edge",
            "--protocol",
            "http",
            "--root",
            "/tmp",
            "--work",
            "wait:1000",
        ])
        .unwrap();
        assert!(cli.options.edge);
        assert_eq!(cli.service.protocol, Protocol::Http);
        assert_eq!(cli.service.root, std::path::PathBuf::from("/tmp"));
        assert_eq!(cli.service.work, Work::Wait(std::time::Duration::from_millis(1)));
        let default = parse(&[]).unwrap();
        assert_eq!(
            (default.service.protocol, default.service.work),
            (Protocol::Echo, Work::None)
        );
        for bad in [
            &["--protocol", "gopher"][..],
            &["--work", "wait:-1"],
            &["--work", "nap:5"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

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
    fn reuse_port_listeners_share_a_port_and_plain_ones_do_not() {
        let first = bind_with("127.0.0.1:0", true).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listen_on(addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        let error = listen_on(addr, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn reuse_port_udp_sockets_share_a_port_and_plain_ones_do_not() {
        let first = bind_udp("127.0.0.1:0", true).unwrap();
        let addr = first.local_addr().unwrap();
        let sockets = reuse_port_udp_sockets(first, 3).unwrap();
        assert_eq!(sockets.len(), 3);
        assert!(sockets.iter().all(|socket| socket.local_addr().unwrap() == addr));
        let error = udp_socket_on(addr, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_bad_address_is_an_error() {
        assert!(bind("not an address").is_err());
        assert!(bind("127.0.0.1:99999").is_err());
    }
}
