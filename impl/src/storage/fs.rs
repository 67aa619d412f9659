//! The file operations the WAL and the snapshot writer need, as a trait, so that the very same
//! code runs on a real directory ([`DirFs`]) and on the deterministic simulator's fake disk
//! (raft-tests' `sim::disk`), which models what survives a crash: a file's bytes are durable
//! after its fsync, a name (create, rename, remove) after the directory's fsync.
//!
//! Files are named relative to the data directory; [`Fs::path`] gives the full path for
//! error messages.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file read in order, with a seek back now and then ([`Fs::read_stream`]).
pub trait ReadSeek: io::Read + io::Seek {}
impl<T: io::Read + io::Seek> ReadSeek for T {}

/// The read buffer of [`DirFs::read_stream`].
const READ_BUFFER_BYTES: usize = 256 << 10;

/// One directory of files.
pub trait Fs {
    /// An open file (a handle stays valid across a rename of its file).
    type File;
    /// The full path of `name`, for messages.
    fn path(&self, name: &str) -> PathBuf;
    /// The names of the directory's files.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// The whole contents of `name`.
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>>;
    /// `name` opened to be read in order (buffered), and its length: recovery reads a WAL
    /// segment frame by frame through it. The default reads the whole file into memory, as a
    /// fake disk holds it there anyway.
    fn read_stream(&mut self, name: &str) -> io::Result<(Box<dyn ReadSeek>, u64)> {
        let bytes = self.read(name)?;
        let len = bytes.len() as u64;
        Ok((Box::new(io::Cursor::new(bytes)), len))
    }
    /// Opens the existing file `name` for reading and writing.
    fn open(&mut self, name: &str) -> io::Result<Self::File>;
    /// Creates `name` empty (truncating an existing file of that name).
    fn create(&mut self, name: &str) -> io::Result<Self::File>;
    fn write_at(&mut self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, file: &Self::File, len: u64) -> io::Result<()>;
    /// Allocates `len` zero bytes from `offset` (fallocate, mode 0: the file's size grows).
    fn allocate(&mut self, file: &Self::File, offset: u64, len: u64) -> io::Result<()>;
    /// fdatasync: the file's bytes (and its size) are durable.
    fn sync_data(&mut self, file: &Self::File) -> io::Result<()>;
    /// fsync: the file's bytes and metadata are durable.
    fn sync_all(&mut self, file: &Self::File) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// fsync of the directory: its names (creations, renames, removals) are durable.
    fn sync_dir(&mut self) -> io::Result<()>;
    /// A random salt for a new WAL segment (a fake disk returns a reproducible one).
    fn salt(&mut self) -> u64;
}

/// A real directory.
#[derive(Debug)]
pub struct DirFs {
    dir: PathBuf,
}

impl DirFs {
    pub fn new(dir: &Path) -> Self {
        DirFs {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Fs for DirFs {
    type File = File;

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(name))
    }

    fn read_stream(&mut self, name: &str) -> io::Result<(Box<dyn ReadSeek>, u64)> {
        let file = File::open(self.path(name))?;
        let len = file.metadata()?.len();
        let reader = io::BufReader::with_capacity(READ_BUFFER_BYTES, file);
        Ok((Box::new(reader), len))
    }

    fn open(&mut self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name))
    }

    fn create(&mut self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name))
    }

    fn write_at(&mut self, file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        file.write_all_at(bytes, offset)
    }

    fn set_len(&mut self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn allocate(&mut self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, len)
            .map_err(io::Error::from)
    }

    fn sync_data(&mut self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_all(&mut self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir).and_then(|d| d.sync_all())
    }

    fn salt(&mut self) -> u64 {
        fastrand::u64(..)
    }
}
