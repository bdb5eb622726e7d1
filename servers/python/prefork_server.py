"""py-prefork: workers forked after listen, each accepting for itself.

Model. The parent binds and listens, then forks `--workers` processes (16 by
default) and waits. Each worker blocks in accept on the shared listening
socket and echoes one client at a time: Apache's prefork, the multi-process
server the course ends with.

System calls. At start: one clone per worker. Per connection: accept4 in
whichever worker the kernel wakes, setsockopt, close. Per message: one
recvfrom and one sendto, no lock, no GIL shared between workers.

Costs. Per worker: a whole interpreter (its pages shared copy-on-write with
the parent until written), made once, not per client.

Limits. As many clients at once as workers, the next ones wait in the listen
queue, as in the thread pool, but each worker has its own GIL: with `--work
cpu:` the workers use every core. Each worker runs out of descriptors on its
own.

Compare with. The Rust `process --prefork N --accept blocking`;
`pool_server.py`, the same pool with threads and one GIL;
`process_server.py`, which forks per client.
"""

import os
import signal

import contract


def worker(listener, args):
    exhaustion = contract.Exhaustion(args.model)
    while True:
        connection, peer = contract.accept_blocking(listener, exhaustion)
        contract.echo_blocking(connection, peer, args.work)


def serve(listener, args):
    children = contract.Children()
    contract.stop_on_signals(children.stop)
    for _ in range(args.workers):
        pid = children.fork()
        if pid == 0:
            try:
                worker(listener, args)
            finally:
                os._exit(1)
    while True:
        signal.pause()


def main():
    def options(parser):
        parser.add_argument("--workers", type=contract.positive, default=16, help="worker processes (default 16)")

    args = contract.parse("prefork", options)
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
