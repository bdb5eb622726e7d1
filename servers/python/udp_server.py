"""py-udp: one socket serves every peer.

Model. No connection and no accept: one UDP socket and one thread recvfrom
a datagram and sendto it back, whole, to the address it came from.

System calls. Per peer: none. Per datagram: one recvfrom and one sendto,
each blocking the only thread.

Costs. One socket and one 64 KiB buffer, large enough for the largest
datagram (65,507 bytes); nothing per peer.

Limits. No flow control: a peer faster than the server fills the socket's
receive buffer and the kernel drops what follows; nobody resends. A send
that fails for one peer (an ICMP error for a peer that left) is one line on
stderr, and the server serves the others. One thread is one core.

Compare with. The Rust `udp`, the same calls through another language,
which adds recvmmsg batches and a SO_REUSEPORT socket per core;
`single_server.py`, the same blocking loop, which serves one TCP client at
a time where this serves every peer, since a datagram is a whole request.
"""

import contract


def serve(sock):
    while True:
        try:
            datagram, peer = sock.recvfrom(contract.DATAGRAM_BUFFER)
        except OSError as error:
            contract.survive_datagram_error("receive", error)
            continue
        try:
            sock.sendto(datagram, peer)
        except OSError as error:
            contract.survive_datagram_error(contract.peer_name(peer), error)


def main():
    args = contract.parse("udp")
    contract.stop_on_signals()
    serve(contract.bind_datagrams(args))


if __name__ == "__main__":
    main()
