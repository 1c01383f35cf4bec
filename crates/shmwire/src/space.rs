//! The room for segments: how big `/dev/shm` is. [`crate::CreateError::NoSpace`] carries it
//! as data; what to tell a person about it is the CLI's business.

use std::io;

pub use shmwire_platform::ShmSpace;

/// How big the filesystem behind named shared memory is and how much of it is free (Linux:
/// `statvfs("/dev/shm")`). All segments together must fit in it.
///
/// # Errors
///
/// The OS error of `statvfs`.
///
/// # Platform-specific behavior
///
/// `Ok(None)` on Windows (sections live in the paging file, limited only by the system commit
/// limit), on macOS (no `/dev/shm`), and for a `/dev/shm` mounted without a size limit.
#[doc(alias = "statvfs")]
pub fn shm_space() -> io::Result<Option<ShmSpace>> {
    shmwire_platform::shm_space()
}
