//! The contenders that need no extra dependency: the floors, shmwire, and kernel IPC.

mod floor;
mod kernel;
mod ours;

pub use floor::Floor;
pub use kernel::Pipe;
#[cfg(unix)]
pub use kernel::Uds;
pub use ours::{SpscCopy, SpscLoan};

use std::io;

/// Turns any error into an `io::Error` for [`crate::Endpoint`] results.
pub(crate) fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}
