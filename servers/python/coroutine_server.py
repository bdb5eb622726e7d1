"""py-coroutine: generators driven by a small scheduler over epoll.

Model. Each client is a generator that reads like the blocking echo; where
it would block it yields what it waits for, `(READ, sock)`, `(WRITE, sock)`
or `(SLEEP, seconds)`, and a scheduler resumes it when epoll (or its timer
heap) says so: the course's coroutines by `yield`, made to serve sockets.
The accept loop is one more such generator.

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt,
epoll_ctl(ADD) on its first wait and epoll_ctl(DEL) at close. Per message:
one recvfrom, one sendto, a share of one epoll_wait, and an epoll_ctl(MOD)
whenever a coroutine waits for the other direction than last time.

Costs. Per connection: a generator frame (a few hundred bytes, no stack of
its own), a registered fd, at most one 16 KiB read unsent.

Limits. One thread, one core; a coroutine that computes (`--work cpu:`)
stops all the others. A generator can only yield from its own frame, so
every function that may wait must itself be a generator (`yield from`):
the colouring that greenlets remove.

Compare with. The Rust `coroutine` (stackful, on every core);
`epoll_server.py`, the same loop with the state kept by hand;
`greenlet_server.py`, which switches whole stacks instead.
"""

import heapq
import select
import time

import contract

READ, WRITE, SLEEP = "read", "write", "sleep"


def echo(connection, peer, work):
    """The blocking echo, with a yield wherever it would block."""
    connection.setblocking(False)
    contract.no_delay(connection)
    try:
        while True:
            try:
                data = connection.recv(contract.BUFFER_SIZE)
            except BlockingIOError:
                yield READ, connection
                continue
            if not data:
                return
            if work.waits:
                yield SLEEP, work.seconds
            else:
                work.compute()
            while data:
                try:
                    data = data[connection.send(data) :]
                except BlockingIOError:
                    yield WRITE, connection
    except OSError as error:
        contract.log_connection_error(peer, error)
    finally:
        connection.close()


def acceptor(listener, scheduler, args):
    exhaustion = contract.Exhaustion(args.model)
    while True:
        try:
            connection, peer = listener.accept()
        except BlockingIOError:
            yield READ, listener
            continue
        except OSError as error:
            if not exhaustion.exhausted(error):
                raise
            yield SLEEP, contract.PAUSE
            continue
        exhaustion.accepted()
        scheduler.spawn(echo(connection, peer, args.work))


class Scheduler:
    """Runs coroutines until they wait, then resumes them when epoll or the
    timer heap says what they wait for has come."""

    def __init__(self):
        self.poller = select.epoll()
        self.waiting = {}  # fd -> (coroutine, registered events)
        self.sleeping = []  # heap of (deadline, order, coroutine)
        self.order = 0

    def spawn(self, coroutine):
        self.step(coroutine)

    def step(self, coroutine):
        try:
            what, argument = next(coroutine)
        except StopIteration:
            return
        if what == SLEEP:
            self.order += 1
            heapq.heappush(self.sleeping, (time.monotonic() + argument, self.order, coroutine))
            return
        fd = argument.fileno()
        events = select.EPOLLIN if what == READ else select.EPOLLOUT
        previous = self.waiting.get(fd)
        if previous is None:
            self.poller.register(fd, events)
        elif previous[1] != events:
            self.poller.modify(fd, events)
        self.waiting[fd] = (coroutine, events)

    def run(self):
        while True:
            timeout = max(0.0, self.sleeping[0][0] - time.monotonic()) if self.sleeping else -1
            for fd, _ in self.poller.poll(timeout, 1024):
                coroutine, events = self.waiting[fd]
                # Step it; if it finished or went to sleep, forget its fd
                # (a closed fd has already left the interest list).
                self.waiting[fd] = (None, events)
                self.step(coroutine)
                if self.waiting.get(fd, (None,))[0] is None:
                    self.forget(fd)
            now = time.monotonic()
            while self.sleeping and self.sleeping[0][0] <= now:
                self.step(heapq.heappop(self.sleeping)[2])

    def forget(self, fd):
        del self.waiting[fd]
        try:
            self.poller.unregister(fd)
        except OSError:
            pass  # closed already


def main():
    args = contract.parse("coroutine")
    contract.stop_on_signals()
    listener = contract.listen(args)
    listener.setblocking(False)
    scheduler = Scheduler()
    scheduler.spawn(acceptor(listener, scheduler, args))
    scheduler.run()


if __name__ == "__main__":
    main()
