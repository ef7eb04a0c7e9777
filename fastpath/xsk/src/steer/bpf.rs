//! The few libbpf calls the steering loader makes, wrapped so that everything above this file
//! is safe code: opening and loading the embedded object, map updates with sizes checked
//! against the map's own key and value sizes, per-CPU reads, XDP `bpf_link`s and queries.
//!
//! libbpf 1.x reports errors as negative errno return values (and sets `errno`); NULL returns
//! set `errno` ("libbpf 1.0 error reporting", libbpf.h `libbpf_get_error`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use libbpf_sys as sys;

/// `-ret` of a libbpf call as an `io::Error`.
fn neg_errno(ret: i32) -> io::Error {
    io::Error::from_raw_os_error(ret.saturating_neg())
}

/// A loaded BPF object (programs and maps created in the kernel); closed on drop, which
/// releases the program and maps once no link or other holder references them.
pub(crate) struct Object {
    ptr: NonNull<sys::bpf_object>,
}

// SAFETY: after `open_and_load` the object is only read (map and program lookups by name,
// which libbpf does not synchronise but which do not mutate it) and finally closed in `Drop`
// (which has `&mut self`). All kernel interaction afterwards goes through fds and bpf(2),
// which is thread-safe.
unsafe impl Send for Object {}
// SAFETY: as above; shared references only perform read-only lookups.
unsafe impl Sync for Object {}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `bpf_object__open_mem`, is closed exactly once here, and no
        // `Map`/program fd obtained from it is used after the owner (`Steering`) drops it.
        unsafe { sys::bpf_object__close(self.ptr.as_ptr()) };
    }
}

/// One map of the object: its fd (owned by the object) and sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Map {
    pub name: &'static str,
    fd: RawFd,
    key_size: usize,
    value_size: usize,
    /// Capacity the object declared.
    pub max_entries: u32,
}

impl Object {
    /// Open the ELF object in `elf` (named `name` in the kernel) and load it (verifier, maps).
    /// On a verifier rejection libbpf prints the verifier log to stderr.
    pub fn open_and_load(
        elf: &'static [u8],
        name: &CStr,
    ) -> Result<Object, (&'static str, io::Error)> {
        let opts = sys::bpf_object_open_opts {
            sz: size_of::<sys::bpf_object_open_opts>() as _,
            object_name: name.as_ptr(),
            ..Default::default()
        };
        // SAFETY: `elf` is a valid buffer of `elf.len()` bytes that outlives the call (libbpf
        // copies what it keeps); `opts` is a properly sized, zero-initialised options struct
        // whose only pointer (`object_name`) lives across the call.
        let raw = unsafe { sys::bpf_object__open_mem(elf.as_ptr().cast(), elf.len() as _, &opts) };
        let Some(ptr) = NonNull::new(raw) else {
            return Err(("bpf_object__open_mem", io::Error::last_os_error()));
        };
        let obj = Object { ptr };
        // SAFETY: `obj.ptr` is a freshly opened, not yet loaded object.
        let ret = unsafe { sys::bpf_object__load(obj.ptr.as_ptr()) };
        if ret < 0 {
            return Err(("bpf_object__load", neg_errno(ret)));
        }
        Ok(obj)
    }

    /// The map called `name`, with its key and value sizes.
    pub fn map(&self, name: &'static str) -> io::Result<Map> {
        let cname =
            CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `ptr` is a loaded object; `cname` is NUL-terminated and lives across the call.
        let map = unsafe { sys::bpf_object__find_map_by_name(self.ptr.as_ptr(), cname.as_ptr()) };
        if map.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("map `{name}` not in the object"),
            ));
        }
        // SAFETY: `map` is a non-null map of the loaded object, valid while the object lives.
        let (fd, key_size, value_size, max_entries) = unsafe {
            (
                sys::bpf_map__fd(map),
                sys::bpf_map__key_size(map) as usize,
                sys::bpf_map__value_size(map) as usize,
                sys::bpf_map__max_entries(map),
            )
        };
        if fd < 0 {
            return Err(neg_errno(fd));
        }
        Ok(Map {
            name,
            fd,
            key_size,
            value_size,
            max_entries,
        })
    }

    /// The fd of the program called `name`.
    pub fn program_fd(&self, name: &str) -> io::Result<RawFd> {
        let cname =
            CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: as in `map`.
        let prog =
            unsafe { sys::bpf_object__find_program_by_name(self.ptr.as_ptr(), cname.as_ptr()) };
        if prog.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("program `{name}` not in the object"),
            ));
        }
        // SAFETY: `prog` is a non-null program of the loaded object.
        let fd = unsafe { sys::bpf_program__fd(prog) };
        if fd < 0 { Err(neg_errno(fd)) } else { Ok(fd) }
    }
}

impl Map {
    fn check(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        let value_ok = value.is_none_or(|v| v.len() == self.value_size);
        if key.len() != self.key_size || !value_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "map `{}` takes {}-byte keys and {}-byte values, got {} and {:?}",
                    self.name,
                    self.key_size,
                    self.value_size,
                    key.len(),
                    value.map(<[u8]>::len)
                ),
            ));
        }
        Ok(())
    }

    /// Create or replace the entry `key` (`BPF_ANY`).
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check(key, Some(value))?;
        // SAFETY: `key` and `value` are exactly the map's key and value sizes (checked above),
        // which is all the kernel reads from them.
        let ret = unsafe {
            sys::bpf_map_update_elem(
                self.fd,
                key.as_ptr().cast(),
                value.as_ptr().cast(),
                sys::BPF_ANY.into(),
            )
        };
        if ret < 0 { Err(neg_errno(ret)) } else { Ok(()) }
    }

    /// Delete the entry `key`; a missing entry is not an error.
    pub fn delete(&self, key: &[u8]) -> io::Result<()> {
        self.check(key, None)?;
        // SAFETY: `key` is exactly the map's key size (checked above).
        let ret = unsafe { sys::bpf_map_delete_elem(self.fd, key.as_ptr().cast()) };
        match ret {
            0.. => Ok(()),
            r if r == -libc::ENOENT => Ok(()),
            r => Err(neg_errno(r)),
        }
    }

    /// Sum over CPUs of the `u64` at `key` of a per-CPU array.
    pub fn percpu_sum_u64(&self, key: u32) -> io::Result<u64> {
        let key = key.to_ne_bytes();
        self.check(&key, None)?;
        if self.value_size != 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "per-CPU value is not a u64",
            ));
        }
        // SAFETY: no arguments; returns the possible-CPU count or a negative errno.
        let cpus = unsafe { sys::libbpf_num_possible_cpus() };
        if cpus <= 0 {
            return Err(neg_errno(cpus));
        }
        // The kernel writes one 8-byte-rounded value per possible CPU.
        let mut values = vec![0u64; cpus as usize];
        // SAFETY: `key` has the map's key size; `values` holds `cpus` 8-byte slots, the size
        // the kernel copies out for a per-CPU map with 8-byte values.
        let ret = unsafe {
            sys::bpf_map_lookup_elem(self.fd, key.as_ptr().cast(), values.as_mut_ptr().cast())
        };
        if ret < 0 {
            return Err(neg_errno(ret));
        }
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }
}

/// Attach program `prog_fd` to `if_index` as an XDP `bpf_link` with `XDP_FLAGS_*` mode `flags`.
/// The program stays attached while the returned fd (or another reference to the link) is
/// open, so it goes away with the process. Fails with `EBUSY`/`EEXIST` if any XDP program is
/// already attached there (a link never replaces one).
pub(crate) fn attach_xdp_link(prog_fd: RawFd, if_index: u32, flags: u32) -> io::Result<OwnedFd> {
    let target = i32::try_from(if_index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "if_index above i32::MAX"))?;
    let opts = sys::bpf_link_create_opts {
        sz: size_of::<sys::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    // SAFETY: `opts` is a properly sized, zero-initialised options struct; the fds are plain
    // integers the kernel validates.
    let fd = unsafe { sys::bpf_link_create(prog_fd, target, sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(neg_errno(fd));
    }
    // SAFETY: `fd` is a new link fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Detach the link's program from its interface now (even if something else holds the link
/// open). A link whose interface is gone detaches successfully.
pub(crate) fn detach_xdp_link(link: &OwnedFd) -> io::Result<()> {
    // SAFETY: `link` is an open link fd.
    let ret = unsafe { sys::bpf_link_detach(link.as_raw_fd()) };
    if ret < 0 { Err(neg_errno(ret)) } else { Ok(()) }
}

/// The id of the XDP program attached to `if_index` (any mode), if there is one.
pub(crate) fn xdp_program_id(if_index: u32) -> io::Result<Option<u32>> {
    let target = i32::try_from(if_index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "if_index above i32::MAX"))?;
    let mut opts = sys::bpf_xdp_query_opts {
        sz: size_of::<sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a properly sized options struct the call fills in.
    let ret = unsafe { sys::bpf_xdp_query(target, 0, &mut opts) };
    if ret < 0 {
        return Err(neg_errno(ret));
    }
    let id = [
        opts.prog_id,
        opts.drv_prog_id,
        opts.skb_prog_id,
        opts.hw_prog_id,
    ]
    .into_iter()
    .find(|&id| id != 0);
    Ok(id)
}

/// The kernel id of the program behind `prog_fd`.
pub(crate) fn program_id(prog_fd: RawFd) -> io::Result<u32> {
    let mut info = sys::bpf_prog_info::default();
    let mut len = size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is a zeroed `bpf_prog_info` of `len` bytes; the kernel writes at most
    // `len` bytes and no pointer fields are set (so nothing else is written).
    let ret = unsafe { sys::bpf_prog_get_info_by_fd(prog_fd, &mut info, &mut len) };
    if ret < 0 {
        Err(neg_errno(ret))
    } else {
        Ok(info.id)
    }
}

/// Run the XDP program `prog_fd` `repeat` times on a copy of `frame`, as if it arrived on
/// `if_index` queue `queue` (`BPF_PROG_TEST_RUN`; nothing is transmitted or redirected).
/// Returns the program's action and the kernel-measured mean run time in nanoseconds.
pub(crate) fn test_run_xdp(
    prog_fd: RawFd,
    frame: &[u8],
    if_index: u32,
    queue: u32,
    repeat: u32,
) -> io::Result<(u32, u32)> {
    let len = u32::try_from(frame.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    let repeat = i32::try_from(repeat.max(1))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "repeat above i32::MAX"))?;
    // `struct xdp_md` in: data = 0, data_end = frame length, data_meta = 0, then the
    // interface and queue (include/uapi/linux/bpf.h; bpf_prog_test_run_xdp checks these).
    let ctx: [u32; 6] = [0, len, 0, if_index, queue, 0];
    let mut opts = sys::bpf_test_run_opts {
        sz: size_of::<sys::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: len,
        ctx_in: ctx.as_ptr().cast(),
        ctx_size_in: size_of_val(&ctx) as u32,
        repeat,
        ..Default::default()
    };
    // SAFETY: `opts` is a properly sized options struct whose input pointers reference
    // `frame` and `ctx` with the sizes given, both alive across the call; the output pointers
    // are null, so the kernel writes nothing but `opts` itself.
    let ret = unsafe { sys::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    if ret < 0 {
        return Err(neg_errno(ret));
    }
    Ok((opts.retval, opts.duration))
}
