//! Helpers shared by the benchmark example (`cargo run --release -p pek-operator --example bench`).

/// Peak resident set size of this process in KiB (`VmHWM`), when the kernel reports it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
