//! Channel errors: one enum for opening, one for sending, one for receiving. Each `Display`
//! is one sentence naming the channel.
//!
//! Messages are borrowed by the send calls (`&[u8]`, `&T`), so a failed send has nothing to
//! hand back: the caller still holds the message.

use crate::{OpenError, OpenOrCreateError};

/// Why a channel endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelOpenError {
    /// Opening or creating the segment failed (bad name, no permission, a segment of another
    /// kind under that name, full `/dev/shm` …).
    #[error(transparent)]
    Segment(#[from] OpenOrCreateError),
    /// The options are not valid (a capacity of 0, say).
    #[error("cannot open channel {name:?}: {reason}")]
    Invalid {
        /// Channel name.
        name: String,
        /// What is wrong, as a phrase.
        reason: String,
    },
    /// The channel exists with other parameters than the ones asked for.
    #[error("channel {name:?} exists with {found}, not {expected}")]
    Mismatch {
        /// Channel name.
        name: String,
        /// What was asked for.
        expected: String,
        /// What the channel has.
        found: String,
    },
    /// The channel's description in shared memory is invalid.
    #[error("channel {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Channel name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The segment was opened read-only; channels need to write their cursors.
    #[error("channel {name:?} needs read-write access")]
    ReadOnly {
        /// Channel name.
        name: String,
    },
    /// A role that only one endpoint may hold (SPSC ends, the broadcast publisher, the
    /// blackboard writer) is held by a live process.
    #[error("channel {name:?} already has a {role} (process {pid})")]
    Busy {
        /// Channel name.
        name: String,
        /// The role asked for.
        role: &'static str,
        /// The holder's pid.
        pid: u32,
    },
    /// All 64 peer entries are taken.
    #[error("channel {name:?} has no room for another endpoint (64 at most)")]
    TooManyPeers {
        /// Channel name.
        name: String,
    },
    /// A kernel object of the channel could not be opened (Windows).
    #[error("cannot open the wake-up object of channel {name:?}")]
    Os {
        /// Channel name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

impl ChannelOpenError {
    /// Whether this error means that no such channel exists (only possible when opening
    /// without creating).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ChannelOpenError::Segment(OpenOrCreateError::Open(OpenError::NotFound { .. }))
        )
    }
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// `try_send`: no room now.
    #[error("channel {name:?} is full")]
    Full {
        /// Channel name.
        name: String,
    },
    /// `send_timeout`: no room before the deadline.
    #[error("timed out sending on channel {name:?}")]
    Timeout {
        /// Channel name.
        name: String,
    },
    /// Every receiver is gone (closed or died) after at least one was attached.
    #[error("channel {name:?} is disconnected: its receivers are gone")]
    Disconnected {
        /// Channel name.
        name: String,
    },
    /// The message is larger than the channel ever accepts.
    #[error("a message of {len} bytes does not fit channel {name:?} (at most {max})")]
    TooLarge {
        /// Channel name.
        name: String,
        /// Message length.
        len: u64,
        /// Largest message.
        max: u64,
    },
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    #[error("channel {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Channel name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why no message was received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// `try_recv`: nothing there now.
    #[error("channel {name:?} is empty")]
    Empty {
        /// Channel name.
        name: String,
    },
    /// `recv_timeout`: nothing before the deadline.
    #[error("timed out receiving on channel {name:?}")]
    Timeout {
        /// Channel name.
        name: String,
    },
    /// The sender is gone (closed or died) and every message it sent was received.
    #[error("channel {name:?} is disconnected: its sender is gone")]
    Disconnected {
        /// Channel name.
        name: String,
    },
    /// Broadcast: this subscriber fell behind and `missed` messages were overwritten before
    /// it read them. The next receive returns the oldest message still there.
    #[error("fell behind on channel {name:?}: {missed} messages were overwritten unread")]
    Lagged {
        /// Channel name.
        name: String,
        /// How many messages were lost to this subscriber.
        missed: u64,
    },
    /// A typed receive found a message of another length (the message is consumed).
    #[error("a message of {len} bytes on channel {name:?} is not a value of {expected} bytes")]
    WrongSize {
        /// Channel name.
        name: String,
        /// The message's length.
        len: u64,
        /// The type's size.
        expected: u64,
    },
    /// `recv_into`: the buffer is shorter than the message (which stays in the channel).
    #[error("a message of {len} bytes on channel {name:?} does not fit a buffer of {buf}")]
    BufferTooSmall {
        /// Channel name.
        name: String,
        /// The message's length.
        len: u64,
        /// The buffer's length.
        buf: u64,
    },
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    #[error("channel {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Channel name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl RecvError {
    /// Whether the sender is gone for good.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvError::Disconnected { .. })
    }
}

impl SendError {
    /// Whether the receivers are gone for good.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected { .. })
    }
}
