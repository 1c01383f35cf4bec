//! Channel errors, one type per operation as in crossbeam-channel: opening
//! ([`ChannelOpenError`]), then for each direction a `try_` error (with `Full` / `Empty`), a
//! blocking error, and a `_timeout` error (with `Timeout`). Each type has exactly the
//! variants its operations can return, plus shmwire's own where they can happen
//! (`Disconnected`, `TooLarge`, `Lagged`, `WrongSize`, `Corrupt`). Each `Display` is one
//! sentence naming the channel; `Full`, `Empty` and `Timeout` carry nothing, so that a
//! polling `try_recv` allocates nothing, and the others share the endpoint's name (an
//! `Arc<str>`) instead of copying it.
//!
//! Messages are borrowed by the send calls (`&[u8]`, `&T`), so a failed send has nothing to
//! hand back: the caller still holds the message.

use std::sync::Arc;

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

/// How a channel operation ended without its result, before the public error type for the
/// operation is chosen ([`FromFailure`]).
#[derive(Debug)]
pub(crate) enum Failure {
    /// A `try_` form found nothing to do, or the deadline passed.
    NotNow,
    /// The other side is gone for good.
    Disconnected,
    /// A message larger than the channel ever takes.
    TooLarge { len: u64, max: u64 },
    /// Broadcast: messages overwritten unread.
    Lagged(u64),
    /// A typed receive found a message of another length.
    WrongSize { len: u64, expected: u64 },
    /// Invalid shared state.
    Corrupt(String),
}

/// The public error of one operation, made from a [`Failure`] and the channel's name.
pub(crate) trait FromFailure: Sized {
    fn from_failure(f: Failure, name: &Arc<str>) -> Self;
}

/// Why a failure cannot reach an operation's error type: the internal invariants of
/// `wait::wait_for` (a wait without a deadline ends with a result or the peer's departure)
/// and of the flavors (send paths never lag or mismatch sizes). No peer data leads here.
#[track_caller]
fn impossible(f: Failure) -> ! {
    unreachable!("{f:?} cannot end this channel operation")
}

/// The doc of a field of the channel errors, by its name.
macro_rules! field_doc {
    (name) => {
        "The channel's name."
    };
    (len) => {
        "The message's length in bytes."
    };
    (max) => {
        "The largest message the channel takes, in bytes."
    };
    (missed) => {
        "How many messages were lost to this subscriber."
    };
    (expected) => {
        "The size of the value's type in bytes."
    };
    (reason) => {
        "What is wrong, as a phrase."
    };
}

macro_rules! channel_error {
    (
        $(#[$meta:meta])*
        $ty:ident;
        $( $(#[$vmeta:meta])* $var:ident $({ $($field:ident : $fty:ty),* $(,)? })?
            => $msg:literal ),* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[non_exhaustive]
        pub enum $ty {
            $( $(#[$vmeta])* #[error($msg)] $var $({ $(#[doc = field_doc!($field)] $field: $fty),* })? ),*
        }
    };
}

channel_error! {
    /// Why [`try_send`](super::spsc::Sender::try_send) (or another `try_` send or loan) did
    /// not send.
    TrySendError;
    /// No room now.
    Full => "the channel is full",
    /// Every receiver is gone (closed or died) after at least one was attached.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its receivers are gone",
    /// The message is larger than the channel ever accepts.
    TooLarge { name: Arc<str>, len: u64, max: u64 } =>
        "a message of {len} bytes does not fit channel {name:?} (at most {max})",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

channel_error! {
    /// Why a blocking [`send`](super::spsc::Sender::send) (or loan) did not send.
    SendError;
    /// Every receiver is gone (closed or died) after at least one was attached.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its receivers are gone",
    /// The message is larger than the channel ever accepts.
    TooLarge { name: Arc<str>, len: u64, max: u64 } =>
        "a message of {len} bytes does not fit channel {name:?} (at most {max})",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

channel_error! {
    /// Why [`send_timeout`](super::spsc::Sender::send_timeout) (or another `_timeout` send,
    /// loan or wait for a peer) did not complete.
    SendTimeoutError;
    /// No room (or no peer) before the deadline.
    Timeout => "timed out",
    /// Every receiver is gone (closed or died) after at least one was attached.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its receivers are gone",
    /// The message is larger than the channel ever accepts.
    TooLarge { name: Arc<str>, len: u64, max: u64 } =>
        "a message of {len} bytes does not fit channel {name:?} (at most {max})",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

channel_error! {
    /// Why [`try_recv`](super::spsc::Receiver::try_recv) (or another `try_` receive) found
    /// no message.
    TryRecvError;
    /// Nothing there now.
    Empty => "the channel is empty",
    /// The sender is gone (closed or died) and every message it sent was received.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its sender is gone",
    /// Broadcast only: this subscriber fell behind and `missed` messages were overwritten
    /// before it read them. The next receive returns the oldest message still there.
    Lagged { name: Arc<str>, missed: u64 } =>
        "fell behind on channel {name:?}: {missed} messages were overwritten unread",
    /// `recv_value` forms only: a message of another length than the type (it is consumed).
    WrongSize { name: Arc<str>, len: u64, expected: u64 } =>
        "a message of {len} bytes on channel {name:?} is not a value of {expected} bytes",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

channel_error! {
    /// Why a blocking [`recv`](super::spsc::Receiver::recv) found no message.
    RecvError;
    /// The sender is gone (closed or died) and every message it sent was received.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its sender is gone",
    /// Broadcast only: this subscriber fell behind and `missed` messages were overwritten
    /// before it read them. The next receive returns the oldest message still there.
    Lagged { name: Arc<str>, missed: u64 } =>
        "fell behind on channel {name:?}: {missed} messages were overwritten unread",
    /// `recv_value` forms only: a message of another length than the type (it is consumed).
    WrongSize { name: Arc<str>, len: u64, expected: u64 } =>
        "a message of {len} bytes on channel {name:?} is not a value of {expected} bytes",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

channel_error! {
    /// Why [`recv_timeout`](super::spsc::Receiver::recv_timeout) (or another `_timeout`
    /// receive or wait) found no message.
    RecvTimeoutError;
    /// Nothing before the deadline.
    Timeout => "timed out",
    /// The sender is gone (closed or died) and every message it sent was received.
    Disconnected { name: Arc<str> } => "channel {name:?} is disconnected: its sender is gone",
    /// Broadcast only: this subscriber fell behind and `missed` messages were overwritten
    /// before it read them. The next receive returns the oldest message still there.
    Lagged { name: Arc<str>, missed: u64 } =>
        "fell behind on channel {name:?}: {missed} messages were overwritten unread",
    /// `recv_value` forms only: a message of another length than the type (it is consumed).
    WrongSize { name: Arc<str>, len: u64, expected: u64 } =>
        "a message of {len} bytes on channel {name:?} is not a value of {expected} bytes",
    /// The channel's state in shared memory is invalid (a buggy or hostile peer).
    Corrupt { name: Arc<str>, reason: String } => "channel {name:?} is corrupt: {reason}",
}

/// `FromFailure` for a send error type; `$not_now` is its variant for `Failure::NotNow`.
macro_rules! from_failure_send {
    ($ty:ident $(, $not_now:ident)?) => {
        impl FromFailure for $ty {
            fn from_failure(f: Failure, name: &Arc<str>) -> Self {
                let name = name.clone();
                match f {
                    $(Failure::NotNow => $ty::$not_now,)?
                    Failure::Disconnected => $ty::Disconnected { name },
                    Failure::TooLarge { len, max } => $ty::TooLarge { name, len, max },
                    Failure::Corrupt(reason) => $ty::Corrupt { name, reason },
                    f => impossible(f),
                }
            }
        }
    };
}

/// `FromFailure` for a receive error type; `$not_now` is its variant for `Failure::NotNow`.
macro_rules! from_failure_recv {
    ($ty:ident $(, $not_now:ident)?) => {
        impl FromFailure for $ty {
            fn from_failure(f: Failure, name: &Arc<str>) -> Self {
                let name = name.clone();
                match f {
                    $(Failure::NotNow => $ty::$not_now,)?
                    Failure::Disconnected => $ty::Disconnected { name },
                    Failure::Lagged(missed) => $ty::Lagged { name, missed },
                    Failure::WrongSize { len, expected } => $ty::WrongSize { name, len, expected },
                    Failure::Corrupt(reason) => $ty::Corrupt { name, reason },
                    f => impossible(f),
                }
            }
        }
    };
}

from_failure_send!(TrySendError, Full);
from_failure_send!(SendError);
from_failure_send!(SendTimeoutError, Timeout);
from_failure_recv!(TryRecvError, Empty);
from_failure_recv!(RecvError);
from_failure_recv!(RecvTimeoutError, Timeout);

/// `From` between error types with the same shmwire variants: `$from`'s variants map one to
/// one onto `$to`'s, and `$from`'s miss (`Full`/`Empty`, if it has one) becomes `Timeout`.
macro_rules! convert_send {
    ($from:ident => $to:ident $(, $miss:ident)?) => {
        impl From<$from> for $to {
            fn from(e: $from) -> Self {
                match e {
                    $($from::$miss => $to::Timeout,)?
                    $from::Disconnected { name } => $to::Disconnected { name },
                    $from::TooLarge { name, len, max } => $to::TooLarge { name, len, max },
                    $from::Corrupt { name, reason } => $to::Corrupt { name, reason },
                }
            }
        }
    };
}

/// As `convert_send`, for the receive errors.
macro_rules! convert_recv {
    ($from:ident => $to:ident $(, $miss:ident)?) => {
        impl From<$from> for $to {
            fn from(e: $from) -> Self {
                match e {
                    $($from::$miss => $to::Timeout,)?
                    $from::Disconnected { name } => $to::Disconnected { name },
                    $from::Lagged { name, missed } => $to::Lagged { name, missed },
                    $from::WrongSize { name, len, expected } => {
                        $to::WrongSize { name, len, expected }
                    }
                    $from::Corrupt { name, reason } => $to::Corrupt { name, reason },
                }
            }
        }
    };
}

convert_send!(SendError => TrySendError);
convert_send!(SendError => SendTimeoutError);
convert_recv!(RecvError => TryRecvError);
convert_recv!(RecvError => RecvTimeoutError);
// A `try_` form is the `_timeout` form with a timeout of zero: its miss becomes `Timeout`,
// for code that polls first and then waits, handling both in one `match`.
convert_send!(TrySendError => SendTimeoutError, Full);
convert_recv!(TryRecvError => RecvTimeoutError, Empty);

/// `is_*` predicates, as in crossbeam-channel.
macro_rules! predicates {
    ($ty:ident $(, $not_now:ident => $is:ident)?) => {
        impl $ty {
            /// Whether the other side is gone for good.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected { .. })
            }
            $(
            #[doc = concat!("Whether this is [`", stringify!($ty), "::", stringify!($not_now), "`].")]
            pub fn $is(&self) -> bool {
                matches!(self, $ty::$not_now)
            }
            )?
        }
    };
}

predicates!(TrySendError, Full => is_full);
predicates!(SendError);
predicates!(SendTimeoutError, Timeout => is_timeout);
predicates!(TryRecvError, Empty => is_empty);
predicates!(RecvError);
predicates!(RecvTimeoutError, Timeout => is_timeout);
