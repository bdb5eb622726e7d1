//! What several injectors do with their client sockets: open many within
//! the fault's time, shrink their buffers, reset them, read an echo back and
//! check it against the payload that was sent.

use super::Injection;
use crate::load::connect::{IN_FLIGHT, connect_all_by, finish_connect};
use crate::load::payload;
use crate::protocol::Protocol;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::SockRef;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// First payload stream id of fault clients, far from the background load's.
pub const FAULT_STREAMS: u64 = 1 << 52;

/// The longest a fault's connect phase may take: a quarter of what is left
/// of the fault (at least 200 ms). A server that stops accepting (it serves
/// one client, or is out of descriptors) lets only its listen backlog
/// connect; the others wait for a SYN retry, and the fault must go on
/// without them.
pub fn connect_deadline(injection: &Injection) -> Instant {
    let phase = (injection.left() / 4).max(Duration::from_millis(200));
    (Instant::now() + phase).min(injection.until)
}

/// Opens `count` connections (at most 256 connecting at once), giving up on
/// those not connected by `deadline`. Returns the open ones.
pub fn connect_by(injection: &Injection, count: usize, deadline: Instant) -> anyhow::Result<Vec<TcpStream>> {
    let (streams, _errors) = connect_all_by(injection.addr, None, count, deadline)?;
    Ok(streams.into_iter().flatten().collect())
}

/// [`connect_by`] the [`connect_deadline`], then every stream registered
/// with a new poll for `interest` under its index as token; with `buffers`,
/// its (receive, send) buffers shrunk first.
pub fn connect_polled(
    injection: &Injection,
    count: usize,
    interest: Interest,
    buffers: Option<(usize, usize)>,
) -> anyhow::Result<(Vec<TcpStream>, Poll)> {
    connect_polled_by(injection, count, connect_deadline(injection), interest, buffers)
}

/// [`connect_polled`], giving up on the connects not done by `deadline`.
pub fn connect_polled_by(
    injection: &Injection,
    count: usize,
    deadline: Instant,
    interest: Interest,
    buffers: Option<(usize, usize)>,
) -> anyhow::Result<(Vec<TcpStream>, Poll)> {
    let mut streams = connect_by(injection, count, deadline)?;
    let poll = Poll::new()?;
    for (index, stream) in streams.iter_mut().enumerate() {
        if let Some((receive, send)) = buffers {
            shrink_buffers(stream, receive, send)?;
        }
        poll.registry().register(stream, Token(index), interest)?;
    }
    Ok((streams, poll))
}

/// A connect not finished after this long is abandoned and issued again:
/// its SYN was most likely dropped by a full accept queue, and the kernel
/// would retry it only a second later.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);

/// What [`connect_persistently`] opened.
pub struct Opened {
    pub streams: Vec<TcpStream>,
    /// Connects abandoned after [`RECONNECT_AFTER`] and issued again.
    pub reissued: u64,
}

/// The note's clause on `reissued` connects (empty when there were none).
pub fn reissued_note(reissued: u64) -> String {
    if reissued == 0 {
        return String::new();
    }
    format!("; {reissued} connects were issued again after 100 ms (their SYN dropped by a full accept queue)")
}

/// Opens `count` connections, [`IN_FLIGHT`] at a time, issuing again
/// any connect not finished within [`RECONNECT_AFTER`], until all are open
/// or the fault ends: a burst of thousands keeps coming whatever the accept
/// queue drops, at the pace the server accepts.
pub fn connect_persistently(injection: &Injection, count: usize) -> anyhow::Result<Opened> {
    connect_persistently_by(injection, count, injection.until)
}

/// [`connect_persistently`], giving up at `deadline` (or the fault's end,
/// if sooner): connects still unfinished then are dropped and not counted.
pub fn connect_persistently_by(
    injection: &Injection,
    count: usize,
    deadline: Instant,
) -> anyhow::Result<Opened> {
    let deadline = deadline.min(injection.until);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<(TcpStream, Instant)>> = (0..IN_FLIGHT.min(count)).map(|_| None).collect();
    let mut opened = Opened {
        streams: Vec::with_capacity(count),
        reissued: 0,
    };
    loop {
        let in_flight = slots.iter().filter(|slot| slot.is_some()).count();
        if opened.streams.len() + in_flight < count {
            let mut wanted = count - opened.streams.len() - in_flight;
            for (index, slot) in slots.iter_mut().enumerate() {
                if wanted == 0 {
                    break;
                }
                if slot.is_none() {
                    // A connect that fails outright is issued again next pass.
                    if let Ok(mut stream) = TcpStream::connect(injection.addr) {
                        poll.registry()
                            .register(&mut stream, Token(index), Interest::WRITABLE)?;
                        *slot = Some((stream, Instant::now()));
                    }
                    wanted -= 1;
                }
            }
        }
        let now = Instant::now();
        if opened.streams.len() >= count || now >= deadline {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(10).min(deadline - now)))?;
        for event in events.iter() {
            let index = event.token().0;
            let Some((stream, _)) = slots[index].as_ref() else {
                continue;
            };
            match finish_connect(stream) {
                Ok(false) => {}
                Ok(true) => {
                    let (mut stream, _) = slots[index].take().expect("checked above");
                    poll.registry().deregister(&mut stream)?;
                    opened.streams.push(stream);
                }
                Err(_) => slots[index] = None,
            }
        }
        for slot in &mut slots {
            if slot
                .as_ref()
                .is_some_and(|(_, started)| started.elapsed() >= RECONNECT_AFTER)
            {
                *slot = None;
                opened.reissued += 1;
            }
        }
    }
    Ok(opened)
}

/// Small, fixed socket buffers (no autotuning): the server cannot park
/// megabytes of its echo in this client's receive buffer, so what it cannot
/// send stays with the server. Only for clients that never read: below
/// loopback's 64 KiB segment size the kernel holds back window updates, and
/// a client that does read would crawl.
pub fn shrink_buffers(stream: &TcpStream, receive: usize, send: usize) -> io::Result<()> {
    let socket = SockRef::from(stream);
    socket.set_recv_buffer_size(receive)?;
    socket.set_send_buffer_size(send)
}

/// Closes with a reset (SO_LINGER 0): no FIN, unread data discarded.
pub fn reset(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// What one nonblocking read of an echo brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echoed {
    /// This many more bytes, all as sent.
    Bytes(usize),
    /// Nothing to read now.
    Nothing,
    /// The server closed the connection (or reset it).
    Closed,
    /// A byte that was never sent at that offset.
    Wrong,
}

/// Reads what `stream` has echoed of payload stream `stream_id`, checking
/// it from offset `*received`, which it advances. Bytes beyond `sent` are
/// wrong.
pub fn read_echo(
    stream: &mut TcpStream,
    stream_id: u64,
    received: &mut u64,
    sent: u64,
    buffer: &mut [u8],
) -> Echoed {
    read_checked(stream, received, buffer, |at, bytes| {
        at + bytes.len() as u64 <= sent && payload::matches(stream_id, at, bytes)
    })
}

/// Reads what `stream` has, until it would block, passing each piece and
/// its offset (`*received`, which it advances) to `expected`: false is
/// [`Echoed::Wrong`].
fn read_checked(
    stream: &mut TcpStream,
    received: &mut u64,
    buffer: &mut [u8],
    expected: impl Fn(u64, &[u8]) -> bool,
) -> Echoed {
    let mut total = 0;
    loop {
        match stream.read(buffer) {
            Ok(0) => return Echoed::Closed,
            Ok(length) => {
                if !expected(*received, &buffer[..length]) {
                    return Echoed::Wrong;
                }
                *received += length as u64;
                total += length;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return if total > 0 {
                    Echoed::Bytes(total)
                } else {
                    Echoed::Nothing
                };
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Echoed::Closed,
        }
    }
}

/// Whether the server has closed `stream` (EOF or reset), without reading
/// anything that matters: used on connections that were meant to be silent.
pub fn closed_by_server(mut stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match stream.read(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    }
}

/// The request an HTTP fault client sends, pipelined again and again: the
/// background's own, `GET /plaintext`, kept alive.
pub const HTTP_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: echolab\r\n\r\n";

/// Bytes `*written..end` of what a fault client sends under `protocol`:
/// its payload stream `stream_id` (echo), or [`HTTP_REQUEST`] after
/// [`HTTP_REQUEST`] (http). As [`payload::send`].
pub fn send(
    protocol: Protocol,
    socket: &mut TcpStream,
    stream_id: u64,
    written: &mut u64,
    end: u64,
    buffer: &mut [u8],
) -> io::Result<bool> {
    match protocol {
        Protocol::Http => payload::send_from(socket, written, end, buffer, |offset, chunk| {
            for (index, byte) in chunk.iter_mut().enumerate() {
                *byte = HTTP_REQUEST[(offset as usize + index) % HTTP_REQUEST.len()];
            }
        }),
        Protocol::Echo | Protocol::Udp => payload::send(socket, stream_id, written, end, buffer),
    }
}

/// The start every HTTP response has.
const HTTP_RESPONSE: &[u8] = b"HTTP/1.";

/// Reads what `stream` answered under `protocol`: for echo,
/// [`read_echo`]; for HTTP, the responses to what it sent, of which only
/// the first bytes are checked (`HTTP/1.`): a fault client pipelines
/// without parsing, and the background load checks every response in full.
pub fn read_answer(
    protocol: Protocol,
    stream: &mut TcpStream,
    stream_id: u64,
    received: &mut u64,
    sent: u64,
    buffer: &mut [u8],
) -> Echoed {
    if protocol != Protocol::Http {
        return read_echo(stream, stream_id, received, sent, buffer);
    }
    read_checked(stream, received, buffer, |at, bytes| {
        let checked = (HTTP_RESPONSE.len() as u64).saturating_sub(at) as usize;
        let checked = checked.min(bytes.len());
        let from = at as usize;
        checked == 0 || bytes[..checked] == HTTP_RESPONSE[from..from + checked]
    })
}
