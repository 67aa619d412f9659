//! An exclusive lock on a directory, held for the life of the process (as etcd and LevelDB
//! do): `DIR/LOCK`, locked with `flock` (std's `File::try_lock`) and holding the holder's pid.
//!
//! The lock is released by the operating system when the process ends, however it ends, so a
//! stale `LOCK` file left by a killed process never blocks a restart; the pid inside it is only
//! information for the error message.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the locked directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another open in this one) holds the lock.
    #[error(
        "{dir} is in use by another process ({}; lock file {lock})",
        holder(*.pid)
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        pid: Option<u32>,
    },
    #[error("{path}: cannot {op}: {error}")]
    Io {
        path: PathBuf,
        op: &'static str,
        error: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

impl DirLock {
    /// Creates `dir` if needed and locks it, without waiting: a directory locked by anyone
    /// else is refused at once with [`LockError::Held`], naming the holder's pid when it has
    /// written it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io_err = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |error| LockError::Io { path, op, error }
        };
        fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let path = dir.join(LOCK_FILE_NAME);
        // Never truncated before the lock is ours: the holder's pid stays readable.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path, "open lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock: path,
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, "lock")(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io_err(&path, "write pid to lock file"))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DirLock::acquire(&data).expect("first lock");
        let text = fs::read_to_string(first.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        let err = DirLock::acquire(&data).expect_err("second lock refused");
        let shown = err.to_string();
        assert!(
            matches!(err, LockError::Held { pid: Some(p), .. } if p == std::process::id()),
            "{shown}"
        );
        assert!(shown.contains(&data.display().to_string()), "{shown}");
        assert!(
            shown.contains(&format!("pid {}", std::process::id())),
            "{shown}"
        );
        drop(first);
        DirLock::acquire(&data).expect("free again after drop");
    }

    #[test]
    fn a_stale_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOCK_FILE_NAME), "999999\n").unwrap();
        let lock = DirLock::acquire(dir.path()).expect("stale file, no lock held");
        let text = fs::read_to_string(lock.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }
}
