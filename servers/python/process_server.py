"""py-process: a process per client, with os.fork, as the course does it.

Model. The parent accepts; for each client it forks a child that echoes that
client, blocking, then exits. The parent closes its copy of the connection
at once and reaps children when SIGCHLD says one ended.

System calls. Per connection: accept4, clone (fork: the page tables of the
whole interpreter copied, pages shared copy-on-write), close in the parent,
prctl(PR_SET_PDEATHSIG) and exit_group in the child, wait4 in the parent.
Per message: one recvfrom and one sendto in the child, no lock shared.

Costs. Per connection: a process, its page tables, and every page Python
touches there: reference counting writes to objects, so copy-on-write copies
far more than in C or Rust.

Limits. Fork per connection makes the accept path slow (watch churn). No
GIL between clients: with `--work cpu:` the children use every core. A
failed fork closes that client with one line.

Compare with. The Rust `process` (the same calls, a much smaller process to
copy); `threaded_server.py`, one address space and one GIL;
`prefork_server.py`, which forks once at start.
"""

import os
import time

import contract


def serve(listener, args):
    children = contract.Children()
    contract.stop_on_signals(children.stop)
    exhaustion = contract.Exhaustion(args.model)
    while True:
        connection, peer = contract.accept_blocking(listener, exhaustion)
        try:
            pid = children.fork()
        except OSError as error:
            contract.log(f"{contract.peer_name(peer)}: closed, cannot fork: {error.strerror}")
            connection.close()
            time.sleep(contract.PAUSE)
            continue
        if pid == 0:
            listener.close()
            contract.echo_blocking(connection, peer, args.work)
            os._exit(0)
        connection.close()


def main():
    args = contract.parse("process")
    serve(contract.listen(args), args)


if __name__ == "__main__":
    main()
