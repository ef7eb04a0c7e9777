//! The UMEM: one memory area per worker, shared by every [`Port`](crate::Port) of that worker,
//! divided into equal frames, plus the free list of frames userspace owns.
//!
//! # Ownership rule
//!
//! Each frame is, at any moment, in exactly one place: the [`FramePool`] free list, a kernel
//! ring (fill, RX, TX or completion), or one [`Desc`] value held by the pipeline. [`Desc`] is
//! deliberately neither `Clone` nor `Copy`, and handing it to a ring consumes it, so the borrow
//! checker enforces that userspace touches only frames the kernel is not using. Byte access
//! ([`Umem::bytes`], [`Umem::bytes_mut`]) borrows both the `Umem` and the `Desc`, so no
//! reference into the UMEM outlives the descriptor or survives its submission to a ring.
//!
//! # Layout (aligned mode)
//!
//! ```text
//! frame i: [ i*FRAME_SIZE ................................................. (i+1)*FRAME_SIZE )
//!          [ XDP_PACKET_HEADROOM = 256 bytes ][ packet data, up to FRAME_SIZE - 256 bytes ]
//!                                             ^ Desc::addr()
//! ```
#![allow(unsafe_code)]

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use xsk_rs::FrameDesc;
use xsk_rs::config::{FrameSize, QueueSize, UmemConfig};

use crate::error::XskError;

/// Bytes the kernel reserves in front of every packet (`XDP_PACKET_HEADROOM`). The packet data
/// of a received frame starts this far into the frame.
pub const HEADROOM: usize = 256;

static NEXT_UMEM_ID: AtomicU32 = AtomicU32::new(1);

/// Sizes for a [`Umem`].
#[derive(Debug, Clone, Copy)]
pub struct UmemSpec {
    /// Number of frames. The fill ring is sized to half of it (rounded down to a power of two).
    pub frames: u32,
    /// Frame size in bytes: a power of two, 2048 or 4096.
    pub frame_size: u32,
    /// Fill and completion ring size (a power of two).
    pub ring_size: u32,
}

impl Default for UmemSpec {
    fn default() -> Self {
        Self {
            frames: 4096,
            frame_size: 4096,
            ring_size: 2048,
        }
    }
}

impl UmemSpec {
    /// Check the sizes before touching the kernel.
    pub fn validate(&self) -> Result<(), XskError> {
        if self.frames == 0 {
            return Err(XskError::Config {
                field: "frames",
                reason: "must be > 0".into(),
            });
        }
        if !(self.frame_size == 2048 || self.frame_size == 4096) {
            return Err(XskError::Config {
                field: "frame_size",
                reason: format!("{} is not 2048 or 4096", self.frame_size),
            });
        }
        if !self.ring_size.is_power_of_two() {
            return Err(XskError::Config {
                field: "ring_size",
                reason: format!("{} is not a power of two", self.ring_size),
            });
        }
        Ok(())
    }

    /// Bytes of packet data one frame can hold (frame size minus [`HEADROOM`]).
    pub fn data_capacity(&self) -> usize {
        self.frame_size as usize - HEADROOM
    }
}

/// One frame handed to userspace: from [`FramePool::alloc`] or from an RX batch.
/// Not `Clone`: owning a `Desc` is owning the frame (see the module docs).
#[derive(Debug)]
pub struct Desc {
    pub(crate) raw: FrameDesc,
    pub(crate) umem: u32,
}

impl Desc {
    /// Offset of the packet data in the UMEM.
    pub fn addr(&self) -> usize {
        self.raw.addr()
    }

    /// Packet length in bytes.
    pub fn len(&self) -> usize {
        self.raw.lengths().data()
    }

    /// True for a frame with no packet bytes (fresh from the pool).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Free list of the frames userspace owns. Its capacity is the UMEM's frame count, so `free`
/// never allocates. One per worker; single-threaded by design (no lock).
#[derive(Debug)]
pub struct FramePool {
    pub(crate) free: Vec<FrameDesc>,
    umem: u32,
}

impl FramePool {
    /// Take a free frame (length 0), or `None` when all frames are in use.
    pub fn alloc(&mut self) -> Option<Desc> {
        self.free.pop().map(|raw| Desc {
            raw,
            umem: self.umem,
        })
    }

    /// Return a frame to the free list.
    ///
    /// # Panics
    /// If `desc` belongs to another UMEM (a programming error that would otherwise let two
    /// owners alias one frame).
    pub fn free(&mut self, desc: Desc) {
        assert_eq!(
            desc.umem, self.umem,
            "Desc returned to the pool of another UMEM"
        );
        self.free.push(desc.raw);
    }

    /// Frames currently free.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// True when every frame is out (in rings or held by the pipeline).
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }

    /// Id of the UMEM these frames belong to.
    pub fn umem_id(&self) -> u32 {
        self.umem
    }
}

/// A registered UMEM. Cloning is cheap and shares the same memory (one per worker, shared by
/// that worker's ports).
#[derive(Debug, Clone)]
pub struct Umem {
    pub(crate) inner: xsk_rs::Umem,
    pub(crate) id: u32,
    pub(crate) spec: UmemSpec,
    /// `(ifname, queue)` pairs already bound from this UMEM (control path only).
    pub(crate) bound: Arc<Mutex<Vec<(String, u32)>>>,
    /// Every frame's descriptor as the UMEM first handed it out (length 0), indexed by frame
    /// number: what [`crate::Port::close`] returns to the pool for a frame it recovers.
    pub(crate) fresh: Arc<[FrameDesc]>,
}

impl Umem {
    /// mmap and register a UMEM of `spec.frames` frames, returning it with a pool holding
    /// every frame. Needs `CAP_NET_RAW` (an AF_XDP socket is opened to register it).
    pub fn new(spec: UmemSpec) -> Result<(Umem, FramePool), XskError> {
        spec.validate()?;
        let cfg_err = |field: &'static str| {
            move |e: &dyn std::fmt::Display| XskError::Config {
                field,
                reason: e.to_string(),
            }
        };
        let ring = QueueSize::new(spec.ring_size).map_err(|e| cfg_err("ring_size")(&e))?;
        let frame = FrameSize::new(spec.frame_size).map_err(|e| cfg_err("frame_size")(&e))?;
        let config = UmemConfig::builder()
            .frame_size(frame)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .frame_headroom(0)
            .build()
            .map_err(|e| cfg_err("frame_size")(&e))?;
        let frames = NonZeroU32::new(spec.frames).ok_or_else(|| XskError::Config {
            field: "frames",
            reason: "must be > 0".into(),
        })?;
        let (inner, descs) =
            xsk_rs::Umem::new(config, frames, false).map_err(|e| XskError::Umem {
                frames: spec.frames,
                detail: format!("{e:?}"),
            })?;
        let id = NEXT_UMEM_ID.fetch_add(1, Ordering::Relaxed);
        let mut fresh = descs.clone();
        fresh.sort_unstable_by_key(FrameDesc::addr);
        let umem = Umem {
            inner,
            id,
            spec,
            bound: Arc::new(Mutex::new(Vec::new())),
            fresh: fresh.into(),
        };
        Ok((
            umem,
            FramePool {
                free: descs,
                umem: id,
            },
        ))
    }

    /// Sizes this UMEM was made with.
    pub fn spec(&self) -> UmemSpec {
        self.spec
    }

    /// Identity used to check that descriptors are not mixed between UMEMs.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn check(&self, desc: &Desc) {
        assert_eq!(desc.umem, self.id, "Desc used with the wrong UMEM");
    }

    /// The packet bytes of a frame userspace owns.
    pub fn bytes<'a>(&'a self, desc: &'a Desc) -> &'a [u8] {
        self.check(desc);
        // SAFETY: `desc` came from this UMEM (checked above) and userspace owns its frame: a
        // `Desc` exists only while the frame is in no kernel ring (module docs). The returned
        // slice borrows `desc`, so the frame cannot be submitted to a ring while it is alive.
        let data = unsafe { self.inner.data(&desc.raw) };
        data.contents()
    }

    /// The packet bytes of a frame userspace owns, writable. Length is [`Desc::len`]; change it
    /// with [`Umem::set_len`] first.
    pub fn bytes_mut<'a>(&'a self, desc: &'a mut Desc) -> &'a mut [u8] {
        self.check(desc);
        // SAFETY: as in `bytes`; `desc` is borrowed mutably and owns the frame exclusively, so no
        // other reference (user or kernel) to these bytes exists while the slice lives.
        let mut data = unsafe { self.inner.data_mut(&mut desc.raw) };
        let contents = data.contents_mut();
        let (ptr, len) = (contents.as_mut_ptr(), contents.len());
        // SAFETY: `ptr..ptr+len` is inside the UMEM mapping, which lives as long as `self` ('a),
        // and is exclusively reachable through `desc`, mutably borrowed for 'a. `DataMut` only
        // wrapped this same slice; re-deriving it extends the lifetime to the borrows it came from.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    /// Set a frame's packet length (for TX), up to [`UmemSpec::data_capacity`].
    pub fn set_len(&self, desc: &mut Desc, len: usize) -> Result<(), XskError> {
        self.check(desc);
        let capacity = self.spec.data_capacity();
        if len > capacity {
            return Err(XskError::FrameTooLong { len, capacity });
        }
        // SAFETY: as in `bytes_mut`; only the descriptor's length is changed.
        let mut data = unsafe { self.inner.data_mut(&mut desc.raw) };
        data.cursor().set_pos(len);
        Ok(())
    }

    /// Copy `packet` into an owned frame and set its length.
    pub fn write(&self, desc: &mut Desc, packet: &[u8]) -> Result<(), XskError> {
        self.set_len(desc, packet.len())?;
        self.bytes_mut(desc).copy_from_slice(packet);
        Ok(())
    }

    /// Make room for `n` bytes in front of the packet (an outer IPv4 header for IP-in-IP) and
    /// return the whole, longer packet; its first `n` bytes are for the caller to fill.
    ///
    /// Known cost: xsk-rs 0.11 does not let a descriptor's address move back into the 256-byte
    /// [`HEADROOM`], so this shifts the packet bytes `n` forward (one `memmove` of the packet).
    pub fn prepend<'a>(&'a self, desc: &'a mut Desc, n: usize) -> Result<&'a mut [u8], XskError> {
        let old = desc.len();
        self.set_len(desc, old + n)?;
        let bytes = self.bytes_mut(desc);
        bytes.copy_within(0..old, n);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation_names_the_field() {
        let bad = UmemSpec {
            frame_size: 3000,
            ..UmemSpec::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("frame_size"), "{err}");
        let bad = UmemSpec {
            ring_size: 1000,
            ..UmemSpec::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("ring_size")
        );
        let bad = UmemSpec {
            frames: 0,
            ..UmemSpec::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("frames"));
        assert!(UmemSpec::default().validate().is_ok());
        assert_eq!(UmemSpec::default().data_capacity(), 4096 - 256);
    }
}
