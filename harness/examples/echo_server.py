#!/usr/bin/env python3
"""A TCP echo server of your own, to try `harness bench --server-cmd` with.

    python3 harness/examples/echo_server.py --port 7000            # a thread per client
    python3 harness/examples/echo_server.py --port 7000 --fork     # a process per client

Like most servers it prints nothing when ready: the harness sees it is ready
when its port accepts a connection. It exits 0 on SIGTERM or SIGINT; with
--fork its children exit with it (they are in its process group, which the
harness signals as a whole).
"""

import argparse
import signal
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socketserver.socket.IPPROTO_TCP, socketserver.socket.TCP_NODELAY, 1)
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fork", action="store_true", help="a process per client (socketserver.ForkingTCPServer)")
    args = parser.parse_args()

    base = socketserver.ForkingTCPServer if args.fork else socketserver.ThreadingTCPServer
    base.allow_reuse_address = True
    base.daemon_threads = True
    base.request_queue_size = 1024
    server = base((args.host, args.port), Echo)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
