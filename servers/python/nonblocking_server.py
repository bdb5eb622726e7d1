"""py-nonblocking: one thread busy-polling a list of nonblocking sockets.

Model. Every socket is nonblocking; one loop tries accept on the listener,
then tries each connection in turn (send what is pending, else recv), and
starts over, forever, whether or not anything happened.

System calls. Per connection: accept4, ioctl(FIONBIO) and setsockopt, close.
Per message: one recvfrom and one sendto, plus one recvfrom per idle
connection per pass that fails with EAGAIN, and an accept4 per pass that
does too: the calls grow with the connections, not with the messages.

Costs. Per connection: a socket, a list entry and its pending bytes (at
most one 16 KiB read: nothing is read while anything is unsent).

Limits. It never sleeps: a full core even with no client at all, and every
pass visits every connection, so a thousand idle ones slow the busy ones.

Compare with. The Rust `nonblocking`; `select_server.py`, which asks the
kernel which sockets are ready instead of trying them all.
"""

import time

import contract


def serve(listener, args):
    listener.setblocking(False)
    exhaustion = contract.Exhaustion(args.model)
    timers = contract.Timers()
    connections = []
    accept_from = 0.0
    while True:
        if time.monotonic() >= accept_from:
            try:
                connection, peer = listener.accept()
                exhaustion.accepted()
                connections.append(contract.Echo(connection, peer, args.work, timers))
            except BlockingIOError:
                pass
            except OSError as error:
                if exhaustion.exhausted(error):
                    accept_from = time.monotonic() + contract.PAUSE
        timers.due()
        connections = [echo for echo in connections if echo.pump() != contract.DONE]


def main():
    args = contract.parse("nonblocking")
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
