"""py-gevent: blocking code, monkey-patched onto gevent's event loop.

Model. `monkey.patch_all()` replaces the socket, time and threading modules
with cooperative ones, and gevent's `StreamServer` runs the plain blocking
echo (recv, sendall, time.sleep) in a greenlet per client; where it would
block, the greenlet switches to gevent's hub, a libev (or libuv) loop over
epoll: `greenlet_server.py`'s hub and wait, done by a library.

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt,
epoll_ctl(ADD) on its first wait, close. Per message: one recvfrom, one
sendto, a share of one epoll_wait, and epoll_ctl when a watcher starts or
stops (libev batches them).

Costs. Per connection: a greenlet (its saved stack slice) and a watcher.

Limits. One thread, one core; nothing preempts a greenlet, so `--work
cpu:` stops the others, while `time.sleep` (patched) overlaps waits. Out of
descriptors, StreamServer would log a traceback per try: here it stops
accepting for a pause instead. Needs the `gevent` wheel.

Compare with. `greenlet_server.py` (the same, by hand); `threaded_server.py`
(the same code with real threads); `uvloop_server.py`.
"""

import contract

gevent = contract.require("gevent", "gevent")

from gevent import monkey  # noqa: E402

monkey.patch_all()

import signal  # noqa: E402

from gevent.server import StreamServer  # noqa: E402


class EchoServer(StreamServer):
    """StreamServer, with out-of-descriptors as a pause, not a spin."""

    def do_read(self):
        try:
            accepted = super().do_read()
        except OSError as error:
            if self.exhaustion.exhausted(error):
                self.stop_accepting()
                gevent.spawn_later(contract.PAUSE, self.start_accepting)
                return None
            raise
        if accepted is not None:
            self.exhaustion.accepted()
        return accepted


def main():
    args = contract.parse("gevent")
    listener = contract.listen(args)
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, contract.os._exit, 0)

    def handle(connection, peer):
        contract.echo_blocking(connection, peer, args.work)  # time.sleep is gevent's now

    server = EchoServer(listener, handle)
    server.exhaustion = contract.Exhaustion(args.model)
    server.serve_forever()


if __name__ == "__main__":
    main()
