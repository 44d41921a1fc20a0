//! The uploaded video, held in a Linux memfd: RAM-backed, never on a filesystem, and readable by
//! ffmpeg as `/dev/fd/N` with seeking (an MP4 whose index is at the end cannot be read from a
//! pipe). Closing the last descriptor frees the pages; nothing can be recovered afterwards.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    os::{
        fd::{AsRawFd, RawFd},
        unix::fs::FileExt,
    },
};

use memfd::{FileSeal, Memfd, MemfdOptions};
use zeroize::Zeroizing;

/// An anonymous in-memory file. Named after the job so leaks are attributable in
/// `/proc/self/fd` (`memfd:dodolens-…`).
pub struct MemFile {
    memfd: Memfd,
    len: u64,
}

impl MemFile {
    pub fn create(name: &str) -> std::io::Result<Self> {
        let memfd = MemfdOptions::default()
            .close_on_exec(true)
            .allow_sealing(true)
            .create(name)
            .map_err(std::io::Error::other)?;
        Ok(MemFile { memfd, len: 0 })
    }

    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.memfd.as_file().write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Forbids any further write or growth: what ffmpeg reads is exactly what was received.
    pub fn seal(&self) -> std::io::Result<()> {
        self.memfd
            .add_seals(&[FileSeal::SealWrite, FileSeal::SealGrow, FileSeal::SealSeal])
            .map_err(std::io::Error::other)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn raw_fd(&self) -> RawFd {
        self.memfd.as_raw_fd()
    }

    /// The file's size, including what a child wrote through its own descriptor.
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.memfd.as_file().metadata()?.len())
    }

    /// Up to `len` bytes from `offset` (fewer at the end), into a wiping buffer.
    pub fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        let mut filled = 0;
        while filled < len {
            let n = self
                .memfd
                .as_file()
                .read_at(&mut out[filled..], offset + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        out.truncate(filled);
        Ok(out)
    }

    /// Reads everything a child wrote through its own descriptor into a wiping buffer.
    pub fn read_all(&self) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut file = self.memfd.as_file();
        let size = file.metadata()?.len() as usize;
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // Release the pages now, even if a killed child still holds a descriptor for a moment.
        let _ = self.memfd.as_file().set_len(0);
    }
}
