"""py-pool: a fixed pool of threads fed by a queue.

Model. The main thread accepts and puts each connection on a queue;
`--workers` threads (16 by default) take one each and echo it, blocking,
until it leaves. Clients beyond the workers wait in the queue.

System calls. Per connection: accept4, setsockopt, close, and a futex to
wake a waiting worker (queue.Queue is a lock and a condition). Per message:
one recvfrom, one sendto, like the single server.

Costs. The workers' threads, made once; per connection, a socket and a
queue entry.

Limits. Sixteen clients at once: the seventeenth waits until one leaves, so
long-lived idle clients starve the others. The GIL, as for threads.

Compare with. The Rust `pool` (a crossbeam channel instead of the queue);
`threaded_server.py`, unbounded; `prefork_server.py`, the same pool with
processes.
"""

import queue

import contract


def worker(connections, work):
    while True:
        connection, peer = connections.get()
        contract.echo_blocking(connection, peer, work)


def serve(listener, args):
    connections = queue.Queue()
    for _ in range(args.workers):
        contract.start_thread(worker, connections, args.work)
    exhaustion = contract.Exhaustion(args.model)
    while True:
        connections.put(contract.accept_blocking(listener, exhaustion))


def main():
    def options(parser):
        parser.add_argument("--workers", type=contract.positive, default=16, help="threads in the pool (default 16)")

    args = contract.parse("pool", options)
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
