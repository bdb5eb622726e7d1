"""py-threaded: a thread per client.

Model. The main thread accepts; each client gets a thread of its own that
blocks in recv and sendall, as in the single server.

System calls. Per connection: accept4, clone3 (the thread; plus mmap and
mprotect for its stack), setsockopt, close. Per message: one recvfrom, one
sendto, and the GIL handed between threads (futex) when several are busy.

Costs. Per connection: a thread with a 256 KiB stack (set here with
threading.stack_size), a kernel task, a socket.

Limits. The GIL: only one thread runs Python at a time, so with `--work
cpu:` a second core does not help; waits (`--work wait:`, recv, sendall)
release it, so threads overlap them. Thousands of threads cost memory and
scheduler work; a failed thread start closes that client with one line.

Compare with. The Rust `threaded` (no GIL: its threads use every core);
`process_server.py` (no shared GIL, a process each); `pool_server.py`,
which bounds the threads.
"""

import threading

import contract

STACK_SIZE = 256 * 1024


def serve(listener, args):
    threading.stack_size(STACK_SIZE)
    exhaustion = contract.Exhaustion(args.model)
    while True:
        connection, peer = contract.accept_blocking(listener, exhaustion)
        try:
            contract.start_thread(contract.echo_blocking, connection, peer, args.work)
        except RuntimeError as error:  # can't start new thread
            contract.log(f"{contract.peer_name(peer)}: closed, no thread for it: {error}")
            connection.close()


def main():
    args = contract.parse("threaded")
    contract.stop_on_signals()
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
