"""The process contract every Python server honours, written once.

Everything here is *not* the model, so that each `*_server.py` file stays the
lesson of its model (the same split as the Rust crate `echo-core`):

- `parse`: `--host`/`--port` or `--addr HOST:PORT` (the Rust models' option),
  `--work none|cpu:MICROS|wait:MICROS`, and the model's own options; a bad
  option is one line on stderr and exit status 2.
- `listen`: raises the open-file limit, binds (a port in use is one line and
  exit status 1), listens with the models' backlog and prints the ready line
  `listening on HOST:PORT`.
- `bind_datagrams`: the same for the UDP server: binds a datagram socket
  and prints the ready line; `survive_datagram_error` tells one peer's
  error (logged, survived) from the socket's (raised).
- `stop_on_signals`: SIGTERM and SIGINT end the process at once with status
  0 (a model that forks first stops its children); a thread of their own
  takes them with `sigwait`, so they are never lost in a race.
- `require`: a third-party package that is missing is one line naming it and
  its `pip install`, and exit status `EXIT_UNSUPPORTED` before the ready line.
- `Work`: the cost of one message, computed (`cpu:`) or waited for (`wait:`).
- `Exhaustion`: out of file descriptors in `accept`: one log line per
  episode and a pause, never a spin.
"""

import argparse
import errno
import hashlib
import os
import resource
import signal
import socket
import sys
import threading
import time

# Bytes read at once, and the most a connection holds unsent (echo-core's
# BUFFER_SIZE): a slow reader gets backpressure, not a growing buffer.
BUFFER_SIZE = 16 * 1024
# listen(2) backlog of every model (echo-core's BACKLOG).
BACKLOG = 1024
# The harness's "unsupported on this machine" status (echo_core::process).
EXIT_UNSUPPORTED = 3
# How long accepting stops after running out of descriptors (echo-core's PAUSE).
PAUSE = 0.1

# Where `.ci/run` installs requirements.txt: a virtual environment under the
# workspace's target/ directory.
HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.normpath(os.path.join(HERE, "..", "..", "target", "python"))


def log(line):
    """One line on stderr in a single write, so processes never interleave."""
    os.write(2, (line + "\n").encode(errors="replace"))


def peer_name(address):
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad option as one line on stderr and status 2."""

    def error(self, message):
        log(f"{self.prog}: {message} (try --help)")
        sys.exit(2)


class Work:
    """What each echoed message costs the server: nothing, about MICROS µs of
    its own CPU (SHA-256 over a small block, calibrated once at start), or a
    wait of MICROS µs for something outside it (a database, a backend)."""

    def __init__(self, kind, micros):
        self.kind = kind
        self.micros = micros
        self.seconds = micros / 1e6
        self.rounds = calibrate(micros) if kind == "cpu" else 0

    @property
    def waits(self):
        return self.kind == "wait"

    def compute(self):
        """Spends the CPU part of the work (a no-op unless `cpu:`). Pure
        Python and small blocks, so it holds the GIL: that is the lesson."""
        block = b"echolab"
        for _ in range(self.rounds):
            block = hashlib.sha256(block).digest()
        return block


def calibrate(micros):
    rounds = 20_000
    block = b"echolab"
    started = time.process_time()
    for _ in range(rounds):
        block = hashlib.sha256(block).digest()
    per_round = max(time.process_time() - started, 1e-6) / rounds
    return max(1, round(micros / 1e6 / per_round))


def parse_work(text):
    if text == "none":
        return Work("none", 0)
    kind, _, value = text.partition(":")
    if kind in ("cpu", "wait") and value.isdigit() and int(value) > 0:
        return Work(kind, int(value))
    raise argparse.ArgumentTypeError(f"'{text}' is not none, cpu:MICROS or wait:MICROS (MICROS a whole number > 0)")


def parse(model, add_options=None):
    """Parses the command line: the contract's options and the model's own
    (`add_options(parser)`). Returns the argparse namespace, with `host`,
    `port` and `work` set whichever way the address was given."""
    parser = OneLineParser(
        prog=f"{model}_server.py",
        description=f"The echolab `py-{model}` echo server: prints `listening on HOST:PORT`, "
        "echoes every byte back, and exits 0 on SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks any free port")
    parser.add_argument("--addr", metavar="HOST:PORT", help="both at once, as the Rust models take them")
    parser.add_argument("--work", type=parse_work, default=Work("none", 0), metavar="none|cpu:MICROS|wait:MICROS")
    if add_options:
        add_options(parser)
    args = parser.parse_args()
    if args.addr is not None:
        host, sep, port = args.addr.rpartition(":")
        if not sep or not port.isdigit():
            parser.error(f"argument --addr: '{args.addr}' is not HOST:PORT")
        args.host, args.port = host.strip("[]"), int(port)
    if not 0 <= args.port <= 65535:
        parser.error(f"argument --port: {args.port} is not a port")
    args.model = model
    return args


def require(model, package):
    """Imports a third-party package, or says which one is missing and how
    to install it, and exits with EXIT_UNSUPPORTED. Tries the virtual
    environment `.ci/run` makes under target/ before giving up."""
    try:
        return __import__(package)
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python3")
    if os.path.exists(python) and os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(python, [python, *sys.argv])
    log(
        f"py-{model}: unsupported on this machine: the Python package '{package}' is missing; "
        f"install it with: pip install -r servers/python/requirements.txt (or: pip install {package})"
    )
    sys.exit(EXIT_UNSUPPORTED)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listen(args):
    """Binds and listens, then prints the ready line. A port in use (or any
    bind failure) is one line on stderr and exit status 1."""
    raise_fd_limit()
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(BACKLOG)
    except OSError as error:
        log(f"py-{args.model}: cannot listen on {args.host}:{args.port}: {error.strerror or error}")
        sys.exit(1)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    os.write(1, f"listening on {shown}:{port}\n".encode())
    return listener


# Bytes for one datagram: more than the largest UDP payload (65,507 bytes).
DATAGRAM_BUFFER = 64 * 1024
# Errors of one peer or one datagram, which a UDP server logs and survives.
PEER_ERRNOS = {
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
    errno.EMSGSIZE, errno.ENOBUFS, errno.ENOMEM, errno.EPERM, errno.EACCES,
    errno.EADDRNOTAVAIL, errno.EAGAIN,
}


def bind_datagrams(args):
    """Binds a UDP socket, then prints the ready line. A bind failure is one
    line on stderr and exit status 1."""
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((args.host, args.port))
    except OSError as error:
        log(f"py-{args.model}: cannot bind {args.host}:{args.port}: {error.strerror or error}")
        sys.exit(1)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    os.write(1, f"listening on {shown}:{port}\n".encode())
    return sock


def survive_datagram_error(whom, error):
    """Logs one peer's error and returns; re-raises an error of the socket
    itself (a bad descriptor, say), which ends the server."""
    if error.errno not in PEER_ERRNOS:
        raise error
    log(f"{whom}: {error.strerror or error}")


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def stop_on_signals(before_exit=None):
    """SIGTERM and SIGINT exit the process at once with status 0: every
    thread goes with it. `before_exit` runs first (a forking model stops
    and reaps its children there). Call it before any other thread starts.

    Why not `signal.signal`: Python runs a handler in the main thread,
    between two bytecodes. A signal that lands after the main thread's last
    check and before it enters a blocking call (accept, or epoll_wait with
    no timeout) waits for that call to return: on an idle server, forever.
    So every thread blocks the two signals (threads started later inherit
    the mask) and one thread of their own takes them with `sigwait`, where
    a pending signal cannot be missed."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def stop():
        signal.sigwait(STOP_SIGNALS)
        if before_exit:
            before_exit()
        os._exit(0)

    threading.Thread(target=stop, name="stop", daemon=True).start()


def start_thread(target, *args):
    """Starts a daemon thread. It inherits the main thread's signal mask, so
    after `stop_on_signals` it never takes SIGTERM or SIGINT."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def no_delay(connection):
    try:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Exhaustion:
    """Out of file descriptors in accept: the connection stays in the listen
    queue, so the listener stays readable, and retrying at once would spin.
    The model pauses accepting for PAUSE; this logs one line per episode."""

    def __init__(self, model):
        self.model = model
        self.since = None

    def exhausted(self, error):
        """True (and logged, once per episode) when `error` from accept means
        out of descriptors or memory; the caller then pauses accepting."""
        if error.errno not in EXHAUSTED:
            return False
        if self.since is None:
            self.since = time.monotonic()
            log(f"py-{self.model}: accept failed: {error.strerror}; pausing accept while out of descriptors")
        return True

    def accepted(self):
        if self.since is not None:
            log(f"py-{self.model}: accepting again after {time.monotonic() - self.since:.1f} s")
            self.since = None


def set_parent_death_signal(parent):
    """In a forked child: the kernel kills it when its parent dies, even by
    SIGKILL (prctl PR_SET_PDEATHSIG; no wrapper in the standard library)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the prctl
        os._exit(0)


def log_connection_error(peer, error):
    log(f"{peer_name(peer)}: {error.strerror if isinstance(error, OSError) and error.strerror else error}")


def echo_blocking(connection, peer, work):
    """The echo of every blocking model: read up to BUFFER_SIZE, do the
    message's work (a wait sleeps this thread), write it all back; an empty
    read is the peer closing (or half-closing: everything was echoed). One
    connection's error is one line on stderr and closes it only."""
    try:
        no_delay(connection)
        while True:
            data = connection.recv(BUFFER_SIZE)
            if not data:
                return
            if work.waits:
                time.sleep(work.seconds)
            else:
                work.compute()
            connection.sendall(data)
    except OSError as error:
        log_connection_error(peer, error)
    finally:
        connection.close()


def accept_blocking(listener, exhaustion):
    """accept(), retried on a peer that gave up, paused while out of
    descriptors. Returns (connection, peer)."""
    while True:
        try:
            connection, peer = listener.accept()
        except OSError as error:
            if exhaustion.exhausted(error):
                time.sleep(PAUSE)
                continue
            if error.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                continue
            raise
        exhaustion.accepted()
        return connection, peer


def positive(text):
    """argparse type: a whole number > 0."""
    if not text.isdigit() or int(text) == 0:
        raise ValueError(text)
    return int(text)


class Children:
    """The processes a forking model started: reaped on SIGCHLD, stopped
    (SIGTERM, then waited for) when the server is."""

    def __init__(self):
        self.pids = set()
        signal.signal(signal.SIGCHLD, lambda signum, frame: self.reap())

    def fork(self):
        """os.fork with SIGCHLD held back until the child is in `pids` (so
        a stop cannot miss it); the child gets its own signal dispositions
        and mask (`become_child`)."""
        parent = os.getpid()
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            raise
        if pid:
            self.pids.add(pid)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        else:
            become_child(parent)
        return pid

    def reap(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.pids.clear()
                return
            if pid == 0:
                return
            self.pids.discard(pid)

    def stop(self):
        """Runs in the stop thread; the main thread may reap beside it, so
        a child already gone is no error."""
        for pid in list(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in list(self.pids):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def become_child(parent):
    """In a freshly forked child: default signal dispositions and an empty
    mask (the server's SIGTERM means the child dies; the parent's stop
    thread is not copied into the child), and death with the parent."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS | {signal.SIGCHLD})
    set_parent_death_signal(parent)


# What a readiness model's connection waits for next (Echo.pump's answer).
READ, WRITE, WAIT, DONE = "read", "write", "wait", "done"


class Echo:
    """The echo of a connection on a nonblocking socket, for the models that
    wait on readiness and must never block (echo-core's `Echo`): a pending
    buffer of at most one read, sent before the next read, so a slow reader
    gets backpressure. `pump` makes what progress it can and says what to
    wait for; a `wait:` work holds the message in `timers` until `release`."""

    def __init__(self, connection, peer, work, timers):
        connection.setblocking(False)
        no_delay(connection)
        self.connection = connection
        self.fd = connection.fileno()
        self.peer = peer
        self.work = work
        self.timers = timers
        self.pending = b""
        self.held = None
        self.closing = False

    def pump(self, drain=False):
        """Sends what is pending, then reads once (`drain`: until EAGAIN, as
        edge-triggered readiness needs). Returns READ, WRITE, WAIT or DONE;
        on DONE the connection is closed."""
        try:
            while True:
                while self.pending:
                    try:
                        sent = self.connection.send(self.pending)
                    except BlockingIOError:
                        return WRITE
                    self.pending = self.pending[sent:]
                if self.held is not None:
                    return WAIT
                if self.closing:
                    return self.close()
                try:
                    data = self.connection.recv(BUFFER_SIZE)
                except BlockingIOError:
                    return READ
                if not data:
                    self.closing = True
                elif self.work.waits:
                    self.held = data
                    self.timers.add(self.work.seconds, self)
                    return WAIT
                else:
                    self.work.compute()
                    self.pending = data
                    if not drain:
                        try:
                            sent = self.connection.send(self.pending)
                        except BlockingIOError:
                            return WRITE
                        self.pending = self.pending[sent:]
                        if not self.pending:
                            return READ
        except OSError as error:
            log_connection_error(self.peer, error)
            return self.close()

    def release(self):
        """The message's wait is over: it is now pending."""
        self.pending, self.held = self.held, None

    def close(self):
        self.connection.close()
        return DONE


class Timers:
    """Connections holding a message until its wait is over, in deadline
    order (a heap): the loop's poll timeout is the nearest deadline, so a
    readiness model waits without blocking its loop."""

    def __init__(self):
        import heapq

        self.heap = []
        self.push, self.pop = heapq.heappush, heapq.heappop
        self.count = 0

    def add(self, seconds, echo):
        self.count += 1
        self.push(self.heap, (time.monotonic() + seconds, self.count, echo))

    def timeout(self, limit=None):
        """Seconds until the nearest deadline (or `limit`); None: no timer."""
        if not self.heap:
            return limit
        left = max(0.0, self.heap[0][0] - time.monotonic())
        return left if limit is None else min(left, limit)

    def due(self):
        """Releases and returns the connections whose wait is over."""
        now = time.monotonic()
        released = []
        while self.heap and self.heap[0][0] <= now:
            echo = self.pop(self.heap)[2]
            echo.release()
            released.append(echo)
        return released
