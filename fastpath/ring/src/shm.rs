//! The ring's memory-mapped file: the only module that touches the shared mapping.
//!
//! Shared memory follows rust-vmm/vm-memory's rules: the other process may write any byte at
//! any time, so no `&`/`&mut` reference to plain bytes of the mapping is ever formed. Header
//! fields are reached only as `AtomicU64` (a shared reference to an atomic is sound under
//! concurrent modification), and the data area only through raw-pointer copies into or out
//! of private buffers, which the protocol then validates (length, version, CRC) on the
//! private copy. The SPSC protocol guarantees the two processes never copy the same data
//! bytes at once (Acquire/Release on head and tail, see `docs/design/ring.md`); a buggy or
//! hostile peer breaking that can only produce garbage bytes, caught by the CRC.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::cursor::Cursor;
use crate::error::RingError;
use crate::layout::{Field, HEADER_LEN, LAYOUT_VERSION, MAGIC};
use crate::region::Region;

/// A mapped ring file.
pub struct ShmRegion {
    map: MmapRaw,
    capacity: u64,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> RingError + 'a {
    move |source| RingError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn map(path: &Path, file: &File, len: u64) -> Result<MmapRaw, RingError> {
    let len = usize::try_from(len).map_err(|_| RingError::InvalidCapacity { capacity: len })?;
    MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(io(path, "mmap"))
}

impl ShmRegion {
    /// Creates and initialises a new ring file at `path` (which must not be visible to a
    /// consumer yet: the caller renames it into place). The magic is stored last, with
    /// Release, so a consumer that sees it sees the whole header.
    pub fn create(path: &Path, capacity: u64) -> Result<Self, RingError> {
        Cursor::new(capacity).ok_or(RingError::InvalidCapacity { capacity })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io(path, "create"))?;
        file.set_len(HEADER_LEN + capacity)
            .map_err(io(path, "set length"))?;
        let region = Self {
            map: map(path, &file, HEADER_LEN + capacity)?,
            capacity,
        };
        region.store(Field::LayoutVersion, LAYOUT_VERSION);
        region.store(Field::Capacity, capacity);
        region.store(Field::HeaderLen, HEADER_LEN);
        region.store(Field::Magic, MAGIC);
        Ok(region)
    }

    /// Maps an existing ring file and checks its header against this build.
    pub fn open(path: &Path) -> Result<Self, RingError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path, "open"))?;
        let len = file.metadata().map_err(io(path, "stat"))?.len();
        let bad = |field, offset, found, expected| RingError::BadHeader {
            path: path.to_path_buf(),
            field,
            offset,
            found,
            expected,
        };
        if len < HEADER_LEN {
            return Err(bad(
                "file length",
                0,
                len,
                "at least the 4096-byte header page",
            ));
        }
        // Map the header first; the data-area size comes from it.
        let header = Self {
            map: map(path, &file, HEADER_LEN)?,
            capacity: 0,
        };
        let check = |field: Field, name, want: u64, expected| {
            let found = header.load(field);
            if found == want {
                Ok(())
            } else {
                Err(bad(name, field.offset(), found, expected))
            }
        };
        check(Field::Magic, "magic", MAGIC, "\"TORTRING\"")?;
        check(
            Field::LayoutVersion,
            "layout_version",
            LAYOUT_VERSION,
            "this build's layout",
        )?;
        check(Field::HeaderLen, "header_len", HEADER_LEN, "4096")?;
        let capacity = header.load(Field::Capacity);
        if Cursor::new(capacity).is_none() {
            let offset = Field::Capacity.offset();
            return Err(bad("capacity", offset, capacity, "a power of two >= 64"));
        }
        if len != HEADER_LEN + capacity {
            return Err(bad("file length", 0, len, "4096 + capacity"));
        }
        Ok(Self {
            map: map(path, &file, HEADER_LEN + capacity)?,
            capacity,
        })
    }

    fn field(&self, field: Field) -> &AtomicU64 {
        let offset = field.offset() as usize;
        debug_assert!(offset + 8 <= HEADER_LEN as usize && offset.is_multiple_of(8));
        // SAFETY: the mapping is at least HEADER_LEN bytes long (checked or created so) and
        // lives as long as `self`, which bounds the returned reference; `offset` is a
        // multiple of 8 inside the header page and the mapping is page-aligned, so the
        // pointer is valid and aligned for an AtomicU64. Every access to these 8 bytes, in
        // this process and the peer, is atomic, which `AtomicU64::from_ptr` requires.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }

    fn data_ptr(&self, offset: u64, len: usize) -> *mut u8 {
        assert!(
            offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= self.capacity),
            "data copy out of bounds: {len} bytes at {offset}"
        );
        // SAFETY: HEADER_LEN + offset + len <= HEADER_LEN + capacity == mapping length
        // (asserted above), so the resulting pointer stays inside the mapping.
        unsafe { self.map.as_mut_ptr().add((HEADER_LEN + offset) as usize) }
    }
}

impl Region for ShmRegion {
    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn load(&self, field: Field) -> u64 {
        self.field(field).load(Ordering::Acquire)
    }

    fn store(&self, field: Field, value: u64) {
        self.field(field).store(value, Ordering::Release);
    }

    fn add(&self, field: Field, value: u64) -> u64 {
        self.field(field).fetch_add(value, Ordering::Relaxed)
    }

    fn write_data(&self, offset: u64, src: &[u8]) {
        let dst = self.data_ptr(offset, src.len());
        // SAFETY: `dst..dst + src.len()` lies inside the mapping (`data_ptr` checks it) and
        // cannot overlap `src`, a private buffer. The protocol gives the producer exclusive
        // use of these bytes (between head and tail + capacity) until it publishes the head.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }

    fn read_data(&self, offset: u64, dst: &mut [u8]) {
        let src = self.data_ptr(offset, dst.len());
        // SAFETY: `src..src + dst.len()` lies inside the mapping (`data_ptr` checks it) and
        // cannot overlap `dst`, a private buffer. The bytes are published (below the head,
        // Acquire-loaded) and the producer will not rewrite them until the tail moves past.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }
}
