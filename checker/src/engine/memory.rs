//! Peak memory of this process, as the kernel counts it (`VmHWM`, the resident-set high-water
//! mark, in /proc/self/status). `None` where there is no /proc (not Linux).

pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
