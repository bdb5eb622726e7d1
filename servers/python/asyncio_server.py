"""py-asyncio: async tasks on asyncio's event loop, streams or protocols.

Model. asyncio's loop waits on epoll (through `selectors`) and runs a task
per client: `await reader.read()`, `writer.write()`, `await
writer.drain()`, code that reads as if it blocked. `--protocol-api` drops
the streams for `asyncio.Protocol`: callbacks on the transport
(`data_received`, `pause_writing`), no task per client.

System calls. Per connection: accept4, ioctl(FIONBIO), setsockopt,
epoll_ctl(ADD) and, at close, epoll_ctl(DEL). Per message: one recvfrom, one
sendto (the transport writes at once, and buffers only what the kernel did
not take), a share of one epoll_wait.

Costs. Per connection: a transport, a protocol and (streams) a
StreamReader, a StreamWriter and a task, a few KiB of Python objects; the
transport's write buffer is bounded by its high-water mark (16 KiB here):
above it, reading stops until it drains.

Limits. One thread, one core, and every event goes through the loop's
Python code: the loop costs more than the system calls. A task that
computes (`--work cpu:`) stops every other; `await asyncio.sleep` overlaps
waits. Out of descriptors, the loop stops accepting for a second itself,
after trying accept `backlog` times in a row (each failure reported: one
line per episode here).

Compare with. The Rust `async` (tokio, on every core); `uvloop_server.py`,
this same protocol code on libuv's loop; `coroutine_server.py`, the same
idea by hand with generators.
"""

import asyncio
import socket

import contract


async def echo(reader, writer):
    """The blocking echo, awaiting where it would block."""
    work = echo.work
    peer = writer.get_extra_info("peername")
    writer.transport.set_write_buffer_limits(high=contract.BUFFER_SIZE)
    try:
        while data := await reader.read(contract.BUFFER_SIZE):
            if work.waits:
                await asyncio.sleep(work.seconds)
            else:
                work.compute()
            writer.write(data)
            await writer.drain()  # backpressure: waits while above the high-water mark
    except OSError as error:
        contract.log_connection_error(peer, error)
    finally:
        writer.close()  # after what is buffered has been sent


class Echo(asyncio.Protocol):
    """The echo as callbacks: what arrives is written back; while the
    transport's buffer is above its high-water mark, stop reading."""

    work = None

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=contract.BUFFER_SIZE)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        if self.work.waits:
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(self.work.seconds, self.waited, data)
        else:
            self.work.compute()
            self.transport.write(data)

    def waited(self, data):
        if not self.transport.is_closing():
            self.transport.write(data)
            self.transport.resume_reading()

    def eof_received(self):
        return False  # close once everything is written

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def connection_lost(self, error):
        if error is not None:
            contract.log_connection_error(self.transport.get_extra_info("peername"), error)


class LoopErrors:
    """The loop's own errors in one line each. Out of descriptors, CPython's
    loop tries accept up to `backlog` times and reports every failure, then
    again each second: one line per episode here (an episode ends when a
    second and a half passes without a report)."""

    def __init__(self, model):
        self.model = model
        self.last_exhausted = 0.0

    def __call__(self, loop, context):
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in contract.EXHAUSTED:
            now = loop.time()
            quiet = now - self.last_exhausted > 1.5
            self.last_exhausted = now
            if not quiet:
                return
        detail = f": {error.strerror if isinstance(error, OSError) else error}" if error else ""
        contract.log(f"py-{self.model}: {context['message']}{detail}")


async def serve(listener, args):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(LoopErrors(args.model))
    for signum in (contract.signal.SIGTERM, contract.signal.SIGINT):
        loop.add_signal_handler(signum, contract.os._exit, 0)
    if args.protocol_api:
        Echo.work = args.work
        server = await loop.create_server(Echo, sock=listener, backlog=contract.BACKLOG)
    else:
        echo.work = args.work
        server = await asyncio.start_server(echo, sock=listener, backlog=contract.BACKLOG)
    await server.serve_forever()


def options(parser):
    parser.add_argument("--protocol-api", action="store_true", help="asyncio.Protocol callbacks instead of streams")


def main(model="asyncio", loop_factory=None):
    args = contract.parse(model, options)
    listener = contract.listen(args)
    if loop_factory is None:
        asyncio.run(serve(listener, args))
    else:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(listener, args))


if __name__ == "__main__":
    main()
