"""py-epoll: one thread, readiness from epoll(7), level- or edge-triggered.

Model. One loop keeps every socket in one epoll interest list and serves
the ones `epoll.poll` reports ready: level-triggered by default (a socket is
reported for as long as it is ready), edge-triggered with `--edge` (reported
once per change, so each wakeup drains until EAGAIN).

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt,
epoll_ctl(ADD), close. Per message: one recvfrom, one sendto and a share of
one epoll_wait that returns only the ready sockets. Level-triggered adds
epoll_ctl(MOD) when a slow reader flips a connection between reading and
writing; edge-triggered never modifies but reads once more to find EAGAIN.

Costs. Per connection: a registered fd (a kernel epitem), a dict entry and
at most one 16 KiB read unsent. No thread, no stack.

Limits. One thread: one core, and the interpreter's cost per event is most
of the cost per message. Idle connections cost nothing per call.

Compare with. The Rust `epoll` (the same calls, the same loop);
`select_server.py`, which scans every fd on every call;
`coroutine_server.py` and `greenlet_server.py`, which hide this loop behind
code that reads as if it blocked.
"""

import select
import time

import contract

INTEREST = {contract.READ: select.EPOLLIN, contract.WRITE: select.EPOLLOUT}


def serve(listener, args):
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    exhaustion = contract.Exhaustion(args.model)
    timers = contract.Timers()
    connections = {}  # fd -> (Echo, what it is registered for)
    accept_from = None
    while True:
        timeout = timers.timeout(None if accept_from is None else max(0.0, accept_from - time.monotonic()))
        events = poller.poll(-1 if timeout is None else timeout, 1024)
        if accept_from is not None and time.monotonic() >= accept_from:
            accept_from = None
            poller.register(listener.fileno(), select.EPOLLIN)
        ready = [fd for fd, _ in events] + [echo.fd for echo in timers.due()]
        for fd in ready:
            if fd == listener.fileno():
                if accept_from is None and not accept_all(listener, poller, connections, exhaustion, args, timers):
                    accept_from = time.monotonic() + contract.PAUSE
                    poller.unregister(listener.fileno())
                continue
            if fd not in connections:
                continue
            echo, registered = connections[fd]
            wanted = echo.pump(drain=args.edge)
            if wanted == contract.DONE:  # close() took it out of the interest list
                del connections[fd]
            elif args.edge:
                pass  # registered once for both directions
            elif wanted != registered:
                if wanted == contract.WAIT:
                    poller.unregister(fd)  # nothing to wait for but the timer
                elif registered == contract.WAIT:
                    poller.register(fd, INTEREST[wanted])
                else:
                    poller.modify(fd, INTEREST[wanted])
                connections[fd] = (echo, wanted)


def accept_all(listener, poller, connections, exhaustion, args, timers):
    """Accepts until EAGAIN; False when out of descriptors (pause)."""
    while True:
        try:
            connection, peer = listener.accept()
        except BlockingIOError:
            return True
        except OSError as error:
            if exhaustion.exhausted(error):
                return False
            raise
        exhaustion.accepted()
        echo = contract.Echo(connection, peer, args.work, timers)
        if args.edge:
            poller.register(echo.fd, select.EPOLLIN | select.EPOLLOUT | select.EPOLLET)
        else:
            poller.register(echo.fd, select.EPOLLIN)
        connections[echo.fd] = (echo, contract.READ)


def main():
    def options(parser):
        parser.add_argument("--edge", action="store_true", help="edge-triggered readiness (EPOLLET)")

    args = contract.parse("epoll", options)
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
