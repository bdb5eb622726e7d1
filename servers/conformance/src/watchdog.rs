//! Runs a check's body under a deadline, so a model that hangs fails.
//!
//! The body runs on its own thread with a shared handle to the server. If it
//! does not finish in time, the server is killed (which usually unblocks the
//! body's sockets) and the test fails with a message naming the check; the
//! stuck thread, if any, is left behind and ends with the test process.

use crate::server::{Launch, Server};
use crate::{Model, client};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once, mpsc};
use std::thread;
use std::time::Duration;

/// Starts the model with `launch`, then runs `body` against it within
/// `limit`. Panics (fails the test) with the body's error or panic message
/// followed by the server's state and stderr tail.
pub fn run_check<F>(model: &Model, check: &str, limit: Duration, launch: Launch, body: F)
where
    F: FnOnce(&Server) -> Result<(), String> + Send + 'static,
{
    raise_own_fd_limit();
    let server = match Server::start(*model, launch) {
        Ok(server) => Arc::new(server),
        Err(report) => panic!("{check}: the server did not start: {report}"),
    };
    let (done, finished) = mpsc::channel();
    let body_server = Arc::clone(&server);
    thread::Builder::new()
        .name(check.to_owned())
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&body_server)));
            // The test thread must hold the last handle, so that it (not this
            // thread, which the test process does not wait for) kills the child.
            drop(body_server);
            let _ = done.send(outcome);
        })
        .expect("cannot start the check's thread");
    let failure = match finished.recv_timeout(limit) {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(message))) => Some(message),
        Ok(Err(payload)) => Some(panic_message(payload.as_ref())),
        Err(_) => Some(format!(
            "did not finish within {} s: the server hangs, or is far too slow",
            limit.as_secs()
        )),
    };
    let report = failure.map(|failure| server.report(&failure));
    // Killed here, by the test thread, before the test counts as finished.
    server.kill();
    if let Some(report) = report {
        panic!("{check} ({model}): {report}");
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "the check panicked".to_owned()
    }
}

/// Raises this test process's own RLIMIT_NOFILE soft limit to the hard one
/// (once), so checks that hold a thousand connections can open them.
fn raise_own_fd_limit() {
    static RAISE: Once = Once::new();
    RAISE.call_once(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
            && soft < hard
        {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    });
}

/// Runs `work` on a new thread and returns a handle whose `join` turns a
/// panic into an error message.
pub fn spawn<T, F>(name: &str, work: F) -> Worker<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .expect("cannot start a client thread");
    Worker {
        name: name.to_owned(),
        handle,
    }
}

/// A client thread started by [`spawn`].
pub struct Worker<T> {
    name: String,
    handle: thread::JoinHandle<Result<T, String>>,
}

impl<T> Worker<T> {
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread; its error or panic becomes `Err` naming it.
    pub fn join(self) -> Result<T, String> {
        match self.handle.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(format!("{}: {message}", self.name)),
            Err(payload) => Err(format!("{}: {}", self.name, panic_message(payload.as_ref()))),
        }
    }
}

/// How long a reader waits before concluding that no echo is coming: used
/// only where the design promises that none comes (a client waiting its turn).
pub const QUIET_PERIOD: Duration = Duration::from_millis(500);

/// Expects no byte to arrive on `stream` for [`QUIET_PERIOD`].
pub fn expect_silence(stream: &mut std::net::TcpStream, why: &str) -> Result<(), String> {
    use std::io::{ErrorKind, Read};
    stream
        .set_read_timeout(Some(QUIET_PERIOD))
        .map_err(|error| error.to_string())?;
    let mut byte = [0u8; 1];
    let outcome = match stream.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
        Ok(0) => Err(format!("{why}, but the server closed the connection")),
        Ok(_) => Err(format!("{why}, but it was answered")),
        Err(error) => Err(format!("{why}, but reading failed: {error}")),
    };
    stream
        .set_read_timeout(Some(client::IO_TIMEOUT))
        .map_err(|error| error.to_string())?;
    outcome
}
