"""py-greenlet: greenlets switched by hand over epoll.

Model. Each client runs the plain blocking echo in a greenlet: a coroutine
with a stack of its own, so any function, however deep, can wait. Where a
call would block, `wait` registers the socket with epoll and switches to the
hub greenlet, which runs the epoll loop and switches back to whichever
greenlet's socket is ready. The course's step from `yield` to greenlets,
before gevent does it for you.

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt,
epoll_ctl(ADD) on its first wait, epoll_ctl(DEL) at close. Per message: one
recvfrom, one sendto, a share of one epoll_wait, and epoll_ctl(MOD) when a
greenlet waits for the other direction than last time. A switch is no
system call: greenlet copies the C stack slice in user space.

Costs. Per connection: a greenlet (its saved stack slice, a few KiB), a
registered fd, at most one 16 KiB read unsent.

Limits. One thread, one core; nothing preempts a greenlet, so one that
computes (`--work cpu:`) stops all the others. Needs the `greenlet` wheel.

Compare with. `coroutine_server.py`, where every waiting function must be
a generator; `gevent_server.py`, this hub and this `wait` done by a library
under unchanged blocking code; the Rust `coroutine` (`may`, stackful too).
"""

import heapq
import select
import time

import contract

greenlet = contract.require("greenlet", "greenlet")


class Hub:
    """The epoll loop, in a greenlet of its own. Others switch to it to wait."""

    def __init__(self):
        self.poller = select.epoll()
        self.waiting = {}  # fd -> (greenlet, registered events)
        self.sleeping = []  # heap of (deadline, order, greenlet)
        self.order = 0
        self.starting = []  # new greenlets and their arguments
        self.greenlet = greenlet.greenlet(self.run)

    def spawn(self, function, *args):
        """A new greenlet, started by the hub on its next turn; the hub is
        its parent, so when it returns, the hub carries on."""
        self.starting.append((greenlet.greenlet(function, parent=self.greenlet), args))

    def wait(self, sock, events):
        """Blocks the calling greenlet until `sock` is ready for `events`."""
        fd = sock.fileno()
        previous = self.waiting.get(fd)
        if previous is None:
            self.poller.register(fd, events)
        elif previous[1] != events:
            self.poller.modify(fd, events)
        self.waiting[fd] = (greenlet.getcurrent(), events)
        self.greenlet.switch()

    def sleep(self, seconds):
        self.order += 1
        heapq.heappush(self.sleeping, (time.monotonic() + seconds, self.order, greenlet.getcurrent()))
        self.greenlet.switch()

    def closing(self, sock):
        self.closing_fd(sock.fileno())

    def closing_fd(self, fd):
        if self.waiting.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def run(self):
        while True:
            while self.starting:
                started, args = self.starting.pop()
                started.switch(*args)
            timeout = max(0.0, self.sleeping[0][0] - time.monotonic()) if self.sleeping else -1
            for fd, _ in self.poller.poll(timeout, 1024):
                waiter, events = self.waiting.get(fd, (None, 0))
                if waiter is None:
                    # Its greenlet waits for something else now (a timer):
                    # stop watching, or a level-triggered fd would spin.
                    self.closing_fd(fd)
                    continue
                self.waiting[fd] = (None, events)
                waiter.switch()
            now = time.monotonic()
            while self.sleeping and self.sleeping[0][0] <= now:
                heapq.heappop(self.sleeping)[2].switch()


def echo(hub, connection, peer, work):
    """The blocking echo; `hub.wait` where it would block."""
    connection.setblocking(False)
    contract.no_delay(connection)
    try:
        while True:
            try:
                data = connection.recv(contract.BUFFER_SIZE)
            except BlockingIOError:
                hub.wait(connection, select.EPOLLIN)
                continue
            if not data:
                return
            if work.waits:
                hub.sleep(work.seconds)
            else:
                work.compute()
            while data:
                try:
                    data = data[connection.send(data) :]
                except BlockingIOError:
                    hub.wait(connection, select.EPOLLOUT)
    except OSError as error:
        contract.log_connection_error(peer, error)
    finally:
        hub.closing(connection)
        connection.close()


def accept_forever(hub, listener, args):
    exhaustion = contract.Exhaustion(args.model)
    while True:
        try:
            connection, peer = listener.accept()
        except BlockingIOError:
            hub.wait(listener, select.EPOLLIN)
            continue
        except OSError as error:
            if not exhaustion.exhausted(error):
                raise
            hub.sleep(contract.PAUSE)
            continue
        exhaustion.accepted()
        hub.spawn(echo, hub, connection, peer, args.work)


def main():
    args = contract.parse("greenlet")
    contract.stop_on_signals()
    listener = contract.listen(args)
    listener.setblocking(False)
    hub = Hub()
    hub.spawn(accept_forever, hub, listener, args)
    hub.greenlet.switch()


if __name__ == "__main__":
    main()
