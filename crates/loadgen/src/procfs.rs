//! CPU time and memory of a process, read from `/proc` (Linux only).
//!
//! CPU is `utime + stime` from `/proc/<pid>/stat`, which includes threads that have exited, in
//! clock ticks of 10 ms (USER_HZ is 100 on every mainstream Linux architecture): precise to
//! 0.1 % over the multi-second windows a step measures. RSS and its anonymous part come from
//! `/proc/<pid>/status`.

use serde::Serialize;

const TICK_SECONDS: f64 = 0.01;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub cpu_s: f64,
    pub rss_kb: u64,
    pub rss_anon_kb: u64,
    pub threads: u64,
}

/// `pid` 0 means this process.
pub fn sample(pid: u32) -> Option<Sample> {
    let dir = if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name, which may itself hold spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    let cpu_s = (ticks(14)? + ticks(15)?) as f64 * TICK_SECONDS;
    let threads = ticks(20).unwrap_or(0);
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        cpu_s,
        rss_kb: kb("VmRSS:"),
        rss_anon_kb: kb("RssAnon:"),
        threads,
    })
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample(0).expect("/proc/self");
        assert!(s.rss_kb > 0);
        assert!(s.threads >= 1);
        assert!(open_files_limit().expect("limits") > 0);
    }
}
