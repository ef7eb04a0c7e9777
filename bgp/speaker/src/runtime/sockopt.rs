//! The crate's one raw `setsockopt` call, for the options no safe wrapper covers: TCP-MD5
//! (`TCP_MD5SIG`, [`super::md5sig`]) and GTSM's minimum TTL (`IP_MINTTL`,
//! `IPV6_MINHOPCOUNT`, [`super::gtsm`]). Callers build the option value as bytes with the
//! kernel's layout; this module only hands them over (module-scoped `allow(unsafe_code)`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets option `name` at `level` on `sock` to `value`, the option's bytes as the kernel
/// lays them out.
pub(crate) fn set(
    sock: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socket option too long"))?;
    // SAFETY: `sock` is a live descriptor borrowed for the duration of the call; `value` is
    // a slice valid for reads of `len` bytes, and the kernel only reads it (it does not keep
    // the pointer).
    let rc = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
