//! The narrow interface the ring protocol needs from the memory it runs over.
//!
//! The producer and consumer logic (`writer.rs`, `reader.rs`) is safe code written against
//! this trait. The shared-memory implementation lives in `shm.rs` (the only module with
//! `unsafe`); a heap implementation backs the model-based tests.

use crate::layout::Field;

/// Access to a ring's header fields and data area.
///
/// Header fields are 8-byte atomics: `load` is Acquire, `store` is Release, `add` is a
/// relaxed counter increment. Data copies take an offset and length that the caller
/// (through [`crate::cursor::Cursor::split`]) guarantees to lie inside the data area.
pub trait Region {
    /// Data-area size in bytes (a power of two).
    fn capacity(&self) -> u64;
    /// Acquire-load of a header field.
    fn load(&self, field: Field) -> u64;
    /// Release-store of a header field.
    fn store(&self, field: Field, value: u64);
    /// Relaxed add to a header counter; returns the previous value.
    fn add(&self, field: Field, value: u64) -> u64;
    /// Copies `src` into the data area at `offset`.
    fn write_data(&self, offset: u64, src: &[u8]);
    /// Copies from the data area at `offset` into `dst`.
    fn read_data(&self, offset: u64, dst: &mut [u8]);
}

impl<T: Region + ?Sized> Region for &T {
    fn capacity(&self) -> u64 {
        (**self).capacity()
    }
    fn load(&self, field: Field) -> u64 {
        (**self).load(field)
    }
    fn store(&self, field: Field, value: u64) {
        (**self).store(field, value);
    }
    fn add(&self, field: Field, value: u64) -> u64 {
        (**self).add(field, value)
    }
    fn write_data(&self, offset: u64, src: &[u8]) {
        (**self).write_data(offset, src);
    }
    fn read_data(&self, offset: u64, dst: &mut [u8]) {
        (**self).read_data(offset, dst);
    }
}

/// A ring held in ordinary memory, for tests of the protocol without a file.
#[cfg(test)]
pub mod heap {
    use super::Region;
    use crate::layout::{Field, HEADER_LEN};
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    /// Heap-backed [`Region`]; data bytes are relaxed atomics so it stays safe and `Sync`.
    pub struct HeapRegion {
        header: Vec<AtomicU64>,
        data: Vec<AtomicU8>,
    }

    impl HeapRegion {
        /// A zeroed region with `capacity` data bytes.
        pub fn new(capacity: u64) -> Self {
            let header = (0..HEADER_LEN / 8).map(|_| AtomicU64::new(0)).collect();
            let data = (0..capacity).map(|_| AtomicU8::new(0)).collect();
            let r = Self { header, data };
            r.store(Field::Capacity, capacity);
            r
        }

        /// Overwrites one data byte, to simulate corruption.
        pub fn poke(&self, offset: u64, value: u8) {
            self.data[offset as usize].store(value, Ordering::Relaxed);
        }
    }

    impl Region for HeapRegion {
        fn capacity(&self) -> u64 {
            self.data.len() as u64
        }
        fn load(&self, field: Field) -> u64 {
            self.header[(field.offset() / 8) as usize].load(Ordering::Acquire)
        }
        fn store(&self, field: Field, value: u64) {
            self.header[(field.offset() / 8) as usize].store(value, Ordering::Release);
        }
        fn add(&self, field: Field, value: u64) -> u64 {
            self.header[(field.offset() / 8) as usize].fetch_add(value, Ordering::Relaxed)
        }
        fn write_data(&self, offset: u64, src: &[u8]) {
            for (i, b) in src.iter().enumerate() {
                self.data[offset as usize + i].store(*b, Ordering::Relaxed);
            }
        }
        fn read_data(&self, offset: u64, dst: &mut [u8]) {
            for (i, b) in dst.iter_mut().enumerate() {
                *b = self.data[offset as usize + i].load(Ordering::Relaxed);
            }
        }
    }
}
