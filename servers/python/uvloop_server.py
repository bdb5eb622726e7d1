"""py-uvloop: the asyncio server, unchanged, on uvloop's event loop.

Model. `asyncio_server.py`'s code (streams, or `asyncio.Protocol` with
`--protocol-api`), run on uvloop: the event loop rewritten in Cython over
libuv, which waits on epoll too. Only the loop changes, so the difference is
the cost of asyncio's pure-Python loop.

System calls. As asyncio: per message one recvfrom, one sendto and a share
of one epoll_wait (libuv's). Per connection: accept4, setsockopt,
epoll_ctl(ADD, DEL), close.

Costs. Per connection: a libuv handle and the same protocol objects (a
task and two stream objects more with streams).

Limits. One thread, one core, as asyncio. libuv keeps a spare descriptor
for running out of them: it closes the waiting connections instead of
leaving them queued. Needs the `uvloop` wheel.

Compare with. `asyncio_server.py` (the claim to check: uvloop is "2-4x
faster"); the Rust `async`; `gevent_server.py`, libev's loop under
blocking-looking code.
"""

import contract

uvloop = contract.require("uvloop", "uvloop")

import asyncio_server  # noqa: E402  (after the check that uvloop exists)

if __name__ == "__main__":
    asyncio_server.main("uvloop", loop_factory=uvloop.new_event_loop)
