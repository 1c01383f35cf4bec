//! The crates users would pick instead of shmwire (feature `peers`), each used the way its
//! documentation and examples show for a fast ping-pong and stream:
//!
//! * [`Iceoryx2`]: iceoryx2's publish-subscribe, zero-copy (a loaned slice, only the tag
//!   written), busy-polled, or woken through iceoryx2's event messaging pattern.
//! * [`SharedMemoryRawSync`]: a `shared_memory` segment with a slot per direction, the
//!   message copied in and out, signalled by `raw_sync` events.
//! * [`IpcChannel`]: `ipc-channel`'s byte channels (copying, blocking).

mod iox2;
mod ipc_chan;
mod shm_raw_sync;

use std::time::{Duration, Instant};

use anyhow::bail;

pub use iox2::Iceoryx2;
pub use ipc_chan::IpcChannel;
pub use shm_raw_sync::SharedMemoryRawSync;

use crate::{Setup, Transport};

/// Every peer contender.
pub fn all() -> Vec<Box<dyn Transport>> {
    vec![
        Box::new(Iceoryx2),
        Box::new(SharedMemoryRawSync),
        Box::new(IpcChannel),
    ]
}

/// How long a driver waits for its echo process to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `ready` until it is true (the echo process connected); fails if the echo process
/// ends first or [`CONNECT_TIMEOUT`] passes (the runner's watchdog only starts once the
/// driver's endpoint exists).
fn wait_for_echo(
    setup: &mut Setup,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !ready() {
        if let Some(child) = setup.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the echo process ended ({status}) before it could {what}");
            }
        }
        if start.elapsed() > CONNECT_TIMEOUT {
            bail!("the echo process did not {what} within {CONNECT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}
