//! The ring and its provided buffers: set up once, the `unsafe` wrapper the
//! loop in `lib.rs` uses. How a ring is built with the flags a single
//! thread wants, which operations the kernel must have, why a machine cannot
//! run the model (in one sentence with its fix), and the buffer ring the
//! kernel receives into.

use io_uring::register::Probe;
use io_uring::types::BufRingEntry;
use io_uring::{IoUring, opcode};
use nix::unistd::{SysconfVar, sysconf};
use std::io::{self, ErrorKind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// Submission queue entries; a full queue is submitted, never dropped.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: room for a round of completions.
pub const CQ_ENTRIES: u32 = 8 * SQ_ENTRIES;
/// Provided buffers (a power of two) and the size of each.
const BUFFERS: u16 = 2048;
pub const BUFFER_LEN: usize = 4096;
/// The provided-buffer group every receive takes from.
pub const GROUP: u16 = 0;
/// How long the SQPOLL thread spins without work before it sleeps.
const SQPOLL_IDLE_MS: u32 = 1000;

/// Provided buffers in a ring shared with the kernel: it takes a buffer for
/// each receive completion and names it in the completion's flags; the
/// server copies the bytes out and puts the buffer back at the tail.
pub struct BufferRing {
    /// `BUFFERS` entries, page-aligned, read by the kernel.
    entries: NonNull<BufRingEntry>,
    /// `BUFFERS * BUFFER_LEN` bytes the kernel receives into.
    memory: NonNull<u8>,
    /// Entries written but not yet published to the kernel.
    tail: u16,
}

impl BufferRing {
    /// Allocates the ring and its buffers (for the life of the process: the
    /// kernel may use them until the ring is gone) and registers them.
    pub fn register(ring: &IoUring) -> io::Result<BufferRing> {
        let layout = std::alloc::Layout::from_size_align(
            usize::from(BUFFERS) * size_of::<BufRingEntry>(),
            page_size(),
        )
        .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let entries = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            .ok_or_else(|| io::Error::from(ErrorKind::OutOfMemory))?
            .cast::<BufRingEntry>();
        let memory = Box::leak(vec![0u8; usize::from(BUFFERS) * BUFFER_LEN].into_boxed_slice());
        let memory = NonNull::from(memory).cast::<u8>();
        // SAFETY: `entries` holds BUFFERS entries, page-aligned, and is
        // never freed.
        unsafe {
            let address = entries.as_ptr() as u64;
            ring.submitter()
                .register_buf_ring_with_flags(address, BUFFERS, GROUP, 0)?;
        }
        let mut buffers = BufferRing {
            entries,
            memory,
            tail: 0,
        };
        for id in 0..BUFFERS {
            buffers.give_back(id);
        }
        buffers.publish();
        Ok(buffers)
    }

    /// The `length` bytes the kernel received into buffer `id`.
    pub fn received(&self, id: u16, length: usize) -> &[u8] {
        let length = length.min(BUFFER_LEN);
        // SAFETY: a completion handed buffer `id` to us; the kernel does not
        // write to it again until it is given back, and it lies within
        // `memory`.
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr().add(usize::from(id) * BUFFER_LEN), length) }
    }

    /// Puts buffer `id` back at the tail (seen by the kernel at `publish`).
    pub fn give_back(&mut self, id: u16) {
        let slot = usize::from(self.tail & (BUFFERS - 1));
        // SAFETY: `slot` is within the ring; the kernel reads only entries
        // between its head and the published tail, and this one is past it.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        let address = self.memory.as_ptr() as u64 + u64::from(id) * BUFFER_LEN as u64;
        entry.set_addr(address);
        entry.set_len(BUFFER_LEN as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the buffers given back since the last call.
    pub fn publish(&self) {
        // SAFETY: the ring's tail is the 16-bit word the kernel's layout puts
        // in the first entry's reserved field; the kernel reads it
        // concurrently, so it is stored atomically, after the entries.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

fn page_size() -> usize {
    let size = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096);
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// Sets up the ring with the flags that matter for one thread, where the
/// kernel has them, and checks the operations this server needs. Returns
/// the ring and whether receives can be multishot; `Err` is the sentence
/// saying why this machine cannot run the model, and how to fix it.
pub fn probe(sqpoll: bool) -> Result<(IoUring, bool), String> {
    let ring = build_ring(sqpoll).map_err(|error| explain_setup(&error))?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|error| {
        format!("cannot probe io_uring's operations ({error}): io_uring is too old; use kernel 6.0 or newer")
    })?;
    // Multishot flags have no probe of their own: an opcode that came in the
    // same kernel release stands for them.
    let needed = [
        (opcode::AcceptMulti::CODE, "IORING_OP_ACCEPT"),
        (opcode::Recv::CODE, "IORING_OP_RECV"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (opcode::Timeout::CODE, "IORING_OP_TIMEOUT"),
        // 5.19, with multishot accept and provided buffer rings.
        (
            opcode::Socket::CODE,
            "IORING_OP_SOCKET (kernel 5.19: multishot accept, buffer rings)",
        ),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(format!(
                "this kernel's io_uring lacks {name}: use kernel 6.0 or newer"
            ));
        }
    }
    // 6.0, with multishot receive; without it, one receive per completion.
    let multishot_recv = probe.is_supported(opcode::SendZc::CODE);
    Ok((ring, multishot_recv))
}

/// The ring, with SINGLE_ISSUER (one thread submits), DEFER_TASKRUN (the
/// kernel finishes requests only when this thread enters, in a batch) and
/// COOP_TASKRUN (no interrupt to run them), dropping the newest ones a kernel
/// rejects; with `sqpoll`, a polling kernel thread instead.
fn build_ring(sqpoll: bool) -> io::Result<IoUring> {
    let mut last_error = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in 0..4 {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES);
        if sqpoll {
            builder.setup_sqpoll(SQPOLL_IDLE_MS);
            if flags < 3 {
                builder.setup_single_issuer();
            }
        } else {
            if flags < 3 {
                builder.setup_coop_taskrun();
            }
            if flags < 2 {
                builder.setup_single_issuer();
            }
            if flags < 1 {
                builder.setup_defer_taskrun();
            }
        }
        match builder.build(SQ_ENTRIES) {
            Ok(ring) => return Ok(ring),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => last_error = error,
            Err(error) => return Err(error),
        }
    }
    Err(last_error)
}

/// Why `io_uring_setup` failed, and what to do about it, in one sentence.
fn explain_setup(error: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|value| value.trim().to_owned())
        .unwrap_or_default();
    match error.raw_os_error() {
        Some(libc::EPERM) if disabled == "2" => format!(
            "io_uring_setup: {error}: io_uring is disabled (kernel.io_uring_disabled = 2); \
             enable it with `sysctl -w kernel.io_uring_disabled=0`"
        ),
        Some(libc::EPERM) if disabled == "1" => format!(
            "io_uring_setup: {error}: io_uring is limited to the group in kernel.io_uring_group \
             (kernel.io_uring_disabled = 1); run as a member of that group, or set \
             `sysctl -w kernel.io_uring_disabled=0`"
        ),
        Some(libc::EPERM) => format!(
            "io_uring_setup: {error}: a seccomp profile (a container's default, say) or a \
             security module forbids io_uring; run with a profile that allows io_uring_setup, \
             io_uring_enter and io_uring_register"
        ),
        Some(libc::ENOSYS) => format!(
            "io_uring_setup: {error}: this kernel has no io_uring (built without it, or older \
             than 5.1), or a seccomp profile hides it; use kernel 6.0 or newer, or a profile \
             that allows the io_uring system calls"
        ),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup: {error}: no memory for the rings; kernels before 5.12 charge them \
             to the locked-memory limit: raise it (`ulimit -l`) or use a newer kernel"
        ),
        _ => {
            format!("io_uring_setup: {error}: io_uring is too old or unusable here; use kernel 6.0 or newer")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_name_the_cause_and_the_fix() {
        let enosys = explain_setup(&io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(
            enosys.contains("no io_uring") && enosys.contains("kernel 6.0"),
            "{enosys}"
        );
        let enomem = explain_setup(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(enomem.contains("ulimit -l"), "{enomem}");
        let eperm = explain_setup(&io::Error::from_raw_os_error(libc::EPERM));
        assert!(
            eperm.contains("io_uring_disabled") || eperm.contains("seccomp"),
            "{eperm}"
        );
    }
}
