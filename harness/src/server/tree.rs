//! A server is a process tree: the process the harness started, every
//! process it forked (a forking server's children, a prefork pool's workers,
//! the programs a shell script runs), and anything still in its process
//! group. Found by scanning `/proc/*/stat` for parent and group links.

use std::collections::{BTreeMap, BTreeSet};

/// The fields of `/proc/PID/stat` the harness uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// `R`, `S`, `Z`, `T`, …
    pub state: char,
    /// utime + stime + cutime + cstime, in clock ticks: the process's own CPU
    /// time plus that of its children it has waited for, so a child's time
    /// is not lost when it exits and is reaped inside the tree.
    pub cpu_ticks: u64,
    pub threads: u64,
    pub rss_pages: u64,
}

/// Parses one `/proc/PID/stat` line.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    // Fields after the command name (which may contain spaces or ')'):
    // index 0 is field 3 (state) of proc_pid_stat(5).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3).and_then(|value| value.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        cpu_ticks: number(14)? + number(15)? + number(16)? + number(17)?,
        threads: number(20)?,
        rss_pages: number(24)?,
    })
}

/// Reads `/proc/PID/stat`; `None` once the process is gone.
pub fn read_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the machine.
pub fn scan() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The processes of the tree led by `root`, from a scan: `root`, its
/// descendants, and the members of its process group (the harness makes
/// every server the leader of its own group, so an orphan that stayed in it
/// is still found).
pub fn members_of(all: &[ProcStat], root: i32) -> Vec<ProcStat> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for process in all {
        children.entry(process.ppid).or_default().push(process.pid);
    }
    let mut found = BTreeSet::new();
    let mut pending = vec![root];
    for process in all.iter().filter(|process| process.pgrp == root) {
        pending.push(process.pid);
    }
    while let Some(pid) = pending.pop() {
        if found.insert(pid) {
            pending.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    all.iter()
        .filter(|process| found.contains(&process.pid))
        .copied()
        .collect()
}

/// The pids of the tree led by `root`, now.
pub fn members(root: i32) -> Vec<i32> {
    members_of(&scan(), root)
        .into_iter()
        .map(|process| process.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: i32, ppid: i32, pgrp: i32) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            pgrp,
            state: 'S',
            ..ProcStat::default()
        }
    }

    #[test]
    fn a_stat_line_with_a_hostile_name_parses() {
        let line = "4242 (my) server (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 3 0 \
                    1000 123456789 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.pid, stat.state, stat.ppid, stat.pgrp), (4242, 'S', 1, 4242));
        assert_eq!(stat.cpu_ticks, 250 + 50 + 7 + 3);
        assert_eq!((stat.threads, stat.rss_pages), (3, 512));
    }

    #[test]
    fn the_tree_holds_descendants_and_the_group_but_not_strangers() {
        let all = [
            process(1, 0, 1),
            process(100, 1, 100), // the server, leading its group
            process(101, 100, 100),
            process(102, 101, 102), // grandchild in a group of its own
            process(103, 1, 100),   // orphan, still in the group
            process(200, 1, 200),   // a stranger
        ];
        let pids: Vec<i32> = members_of(&all, 100).iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![100, 101, 102, 103]);
    }

    #[test]
    fn this_process_is_found_in_the_scan() {
        let me = std::process::id() as i32;
        let stat = scan().into_iter().find(|process| process.pid == me).unwrap();
        assert!(stat.threads >= 1 && stat.rss_pages > 0);
    }
}
