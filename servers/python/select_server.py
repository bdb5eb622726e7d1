"""py-select: one thread, readiness from select(2).

Model. One loop hands select the sockets that may read (the listener, idle
connections) and the ones with unsent bytes, sleeps until one is ready, and
serves the ready ones: the course's `select.select(readers, writers, [])`.

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt, close.
Per message: one recvfrom, one sendto, and a share of one select, which
copies three fd_sets into the kernel and back and scans every descriptor up
to the highest: its cost grows with the connections, busy or idle.

Costs. Per connection: a socket, a dict entry and at most one 16 KiB read
unsent. Python builds the fd_sets from lists on every call, which costs
more than the call itself.

Limits. An fd_set holds descriptors below FD_SETSIZE (1024): a connection
whose descriptor is 1024 or more is closed with one line (Python's select
would raise). Idle connections slow every call.

Compare with. The Rust `select`; `nonblocking_server.py`, which tries every
socket; `epoll_server.py`, where the kernel keeps the interest list and
returns only the ready sockets.
"""

import select
import time

import contract

FD_SETSIZE = 1024


def serve(listener, args):
    listener.setblocking(False)
    exhaustion = contract.Exhaustion(args.model)
    timers = contract.Timers()
    connections = {}  # fd -> (Echo, what it waits for)
    accept_from = 0.0
    while True:
        readers = [fd for fd, (_, wanted) in connections.items() if wanted == contract.READ]
        writers = [fd for fd, (_, wanted) in connections.items() if wanted == contract.WRITE]
        paused = time.monotonic() < accept_from
        if not paused:
            readers.append(listener.fileno())
        limit = max(0.0, accept_from - time.monotonic()) if paused else None
        readable, writable, _ = select.select(readers, writers, [], timers.timeout(limit))
        ready = set(readable) | set(writable)
        for echo in timers.due():
            ready.add(echo.fd)
        if listener.fileno() in ready:
            ready.discard(listener.fileno())
            try:
                connection, peer = listener.accept()
            except BlockingIOError:
                connection = None
            except OSError as error:
                if not exhaustion.exhausted(error):
                    raise
                accept_from = time.monotonic() + contract.PAUSE
                connection = None
            if connection is not None:
                exhaustion.accepted()
                if connection.fileno() >= FD_SETSIZE:
                    contract.log(
                        f"{contract.peer_name(peer)}: closed: descriptor {connection.fileno()} "
                        f"is past FD_SETSIZE ({FD_SETSIZE}), select cannot wait on it"
                    )
                    connection.close()
                else:
                    echo = contract.Echo(connection, peer, args.work, timers)
                    connections[echo.fd] = (echo, contract.READ)
        for fd in ready:
            echo = connections[fd][0]
            wanted = echo.pump()
            if wanted == contract.DONE:
                del connections[fd]
            else:
                connections[fd] = (echo, wanted)


def main():
    args = contract.parse("select")
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
