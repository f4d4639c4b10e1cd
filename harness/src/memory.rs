//! Peak memory of a server process, for checks that memory stays flat
//! while it streams large payloads.
//!
//! Linux only: it reads `/proc`. Elsewhere every answer is `None`, and the
//! checks that need it say they could not measure.

/// The peak resident set size (`VmHWM`) of process `pid`, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The highest [`peak_rss`] among the processes of process group `group`.
/// A command started through a shell is a group of the shell and the
/// server; the server is the one that counts, and it is the largest.
pub fn peak_rss_of_group(group: u32) -> Option<u64> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process_group(pid) == Some(group))
        .filter_map(peak_rss)
        .max()
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // fields after the last ')' are state, ppid, pgrp, ...
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}
