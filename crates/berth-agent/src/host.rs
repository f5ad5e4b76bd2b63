//! Facts about the machine the agent runs on: CPUs, memory, disk, process IDs, kernel and OS.
//!
//! Owns the [`Host`] trait, its Linux implementation reading `/proc`, `/etc/os-release` and
//! `statvfs` ([`LinuxHost`]), a settable fake ([`FakeHost`]), and the pressure thresholds the node
//! conditions use. Must not talk to the API server or the container engine.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors reading host facts.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A file under `/proc` or `/etc` could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file did not hold what was expected.
    #[error("{path} has no {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was missing.
        what: String,
    },
    /// `statvfs` of the data directory failed.
    #[error("statvfs {path}: {source}")]
    Statvfs {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Static facts, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Logical CPUs.
    pub cpus: u32,
    /// Kernel release (`uname -r`).
    pub kernel_version: String,
    /// OS image, e.g. `Debian GNU/Linux 13 (trixie)`.
    pub os_image: String,
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture in Go's naming (`amd64`, `arm64`).
    pub arch: String,
    /// Machine ID.
    pub machine_id: String,
    /// Boot ID (changes at every boot).
    pub boot_id: String,
    /// Host name.
    pub hostname: String,
}

/// Facts that change, read at every status update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostUsage {
    /// Total memory in bytes.
    pub memory_total: u64,
    /// Available memory in bytes.
    pub memory_available: u64,
    /// Size of the filesystem holding the data directory, in bytes.
    pub disk_total: u64,
    /// Bytes available to unprivileged users on it.
    pub disk_available: u64,
    /// Highest process ID + 1 (`/proc/sys/kernel/pid_max`).
    pub pid_max: u64,
    /// Processes running now.
    pub processes: u64,
}

/// Below this much available memory the node reports MemoryPressure (the kubelet's default
/// hard eviction threshold `memory.available<100Mi`).
pub const MEMORY_PRESSURE_BYTES: u64 = 100 * 1024 * 1024;
/// Below this share of available disk the node reports DiskPressure (`nodefs.available<10%`).
pub const DISK_PRESSURE_PERCENT: u64 = 10;
/// Below this share of free process IDs the node reports PIDPressure.
pub const PID_PRESSURE_PERCENT: u64 = 10;

impl HostUsage {
    /// Whether available memory is under [`MEMORY_PRESSURE_BYTES`].
    pub fn memory_pressure(&self) -> bool {
        self.memory_total > 0 && self.memory_available < MEMORY_PRESSURE_BYTES
    }

    /// Whether available disk is under [`DISK_PRESSURE_PERCENT`] of the total.
    pub fn disk_pressure(&self) -> bool {
        self.disk_total > 0 && self.disk_available * 100 < self.disk_total * DISK_PRESSURE_PERCENT
    }

    /// Whether free process IDs are under [`PID_PRESSURE_PERCENT`] of `pid_max`.
    pub fn pid_pressure(&self) -> bool {
        self.pid_max > 0
            && self.pid_max.saturating_sub(self.processes) * 100
                < self.pid_max * PID_PRESSURE_PERCENT
    }
}

/// The machine, as the node agent sees it.
pub trait Host: Send + Sync {
    /// Static facts.
    fn info(&self) -> Result<HostInfo, HostError>;
    /// Current use of memory, disk and process IDs.
    fn usage(&self) -> Result<HostUsage, HostError>;
}

/// The Linux machine the process runs on.
#[derive(Clone, Debug)]
pub struct LinuxHost {
    data_dir: PathBuf,
}

impl LinuxHost {
    /// Reads disk facts of the filesystem holding `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }
}

fn read(path: &str) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.into(),
        source,
    })
}

fn read_or_empty(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A `Key: value kB` line of `/proc/meminfo`, in bytes.
fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// `PRETTY_NAME` of an os-release file.
fn os_pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let v = line.strip_prefix("PRETTY_NAME=")?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

/// Go's name for the architecture Rust was built for.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl Host for LinuxHost {
    fn info(&self) -> Result<HostInfo, HostError> {
        let cpus = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        Ok(HostInfo {
            cpus,
            kernel_version: read("/proc/sys/kernel/osrelease")?.trim().to_string(),
            os_image: os_pretty_name(&os_release).unwrap_or_else(|| "Linux".into()),
            os: std::env::consts::OS.to_string(),
            arch: go_arch().to_string(),
            machine_id: read_or_empty("/etc/machine-id"),
            boot_id: read_or_empty("/proc/sys/kernel/random/boot_id"),
            hostname: read_or_empty("/proc/sys/kernel/hostname"),
        })
    }

    fn usage(&self) -> Result<HostUsage, HostError> {
        let meminfo = read("/proc/meminfo")?;
        let field = |key: &str| {
            meminfo_field(&meminfo, key).ok_or_else(|| HostError::Parse {
                path: "/proc/meminfo".into(),
                what: key.into(),
            })
        };
        let memory_total = field("MemTotal")?;
        let memory_available = field("MemAvailable")?;
        let (disk_total, disk_available) = disk_space(&self.data_dir)?;
        let pid_max = read("/proc/sys/kernel/pid_max")?
            .trim()
            .parse()
            .unwrap_or(0);
        let processes = std::fs::read_dir("/proc")
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        Ok(HostUsage {
            memory_total,
            memory_available,
            disk_total,
            disk_available,
            pid_max,
            processes,
        })
    }
}

fn disk_space(dir: &Path) -> Result<(u64, u64), HostError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| HostError::Statvfs {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    Ok((
        st.f_blocks.saturating_mul(st.f_frsize),
        st.f_bavail.saturating_mul(st.f_frsize),
    ))
}

/// A host whose facts tests set.
#[derive(Debug, Default)]
pub struct FakeHost {
    info: Mutex<HostInfo>,
    usage: Mutex<HostUsage>,
}

impl FakeHost {
    /// A 2-CPU, 4 GiB machine with plenty of disk and process IDs.
    pub fn new() -> Self {
        Self {
            info: Mutex::new(HostInfo {
                cpus: 2,
                kernel_version: "6.1.0-test".into(),
                os_image: "Test Linux".into(),
                os: "linux".into(),
                arch: "amd64".into(),
                machine_id: "machine".into(),
                boot_id: "boot".into(),
                hostname: "fake".into(),
            }),
            usage: Mutex::new(HostUsage {
                memory_total: 4 << 30,
                memory_available: 3 << 30,
                disk_total: 100 << 30,
                disk_available: 50 << 30,
                pid_max: 4_194_304,
                processes: 200,
            }),
        }
    }

    /// Replaces the current usage.
    pub fn set_usage(&self, usage: HostUsage) {
        *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = usage;
    }
}

impl Host for FakeHost {
    fn info(&self) -> Result<HostInfo, HostError> {
        Ok(self.info.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn usage(&self) -> Result<HostUsage, HostError> {
        Ok(self.usage.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_os_release_parsing() {
        let m = "MemTotal:       24684296 kB\nMemFree:  100 kB\nMemAvailable:   24195444 kB\n";
        assert_eq!(meminfo_field(m, "MemTotal"), Some(24684296 * 1024));
        assert_eq!(meminfo_field(m, "MemAvailable"), Some(24195444 * 1024));
        assert_eq!(meminfo_field(m, "Buffers"), None);
        let os = "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            os_pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
    }

    #[test]
    fn pressure_thresholds() {
        let mut u = FakeHost::new().usage().unwrap();
        assert!(!u.memory_pressure() && !u.disk_pressure() && !u.pid_pressure());
        u.memory_available = 50 << 20;
        u.disk_available = 5 << 30;
        u.processes = u.pid_max - 10;
        assert!(u.memory_pressure() && u.disk_pressure() && u.pid_pressure());
    }

    #[test]
    fn the_real_machine_answers() {
        let dir = tempfile_dir();
        let host = LinuxHost::new(&dir);
        let info = host.info().unwrap();
        assert!(info.cpus >= 1 && !info.kernel_version.is_empty());
        let usage = host.usage().unwrap();
        assert!(usage.memory_total > 0 && usage.disk_total > 0 && usage.processes > 0);
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir()
    }
}
