//! Making system calls fail in a child process, as a container's seccomp
//! profile, a full process table or an old kernel would: the way tests
//! reach the paths a healthy machine never takes (io_uring refused, `clone`
//! failing). The filter is compiled with `seccompiler` before the fork and
//! installed between fork and exec, so it holds for the program and
//! everything it starts, and for nothing else.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `syscalls` (numbers, e.g. `libc::SYS_clone`) fail with `errno` in
/// the process `command` starts and all its descendants; every other call
/// is allowed.
pub fn refuse(command: &mut Command, syscalls: &[i64], errno: i32) {
    let rules = syscalls
        .iter()
        .map(|&syscall| (syscall, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let arch = TargetArch::try_from(std::env::consts::ARCH).expect("a seccomp architecture");
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .expect("a valid seccomp filter");
    let program: BpfProgram = filter.try_into().expect("a seccomp program");
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes the prctl(2) and seccomp(2) calls of `apply_filter` on a program
    // compiled before the fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || seccompiler::apply_filter(&program).map_err(std::io::Error::other));
    }
}
