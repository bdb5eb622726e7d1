"""py-single: one client at a time, blocking.

Model. One thread accepts a client and echoes it until it leaves; the next
client waits in the listen queue meanwhile.

System calls. Per connection: accept4, setsockopt(TCP_NODELAY), close.
Per message: one recvfrom and one sendto (sendall loops on a short write),
each blocking the only thread. Nothing else: the fewest calls of any model.

Costs. One socket and one 16 KiB read at a time; no thread, no table.

Limits. One client at a time: the second one connects (the kernel completes
the handshake into the backlog) and then waits, unserved, until the first
closes. With `--work wait:` every wait stops the whole server.

Compare with. The Rust `single`, the same calls through another language;
`threaded_server.py`, the course's next step: a thread per client.
"""

import contract


def serve(listener, args):
    exhaustion = contract.Exhaustion(args.model)
    while True:
        connection, peer = contract.accept_blocking(listener, exhaustion)
        contract.echo_blocking(connection, peer, args.work)


def main():
    args = contract.parse("single")
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
