//! Looking at a segment without joining it: for `shmwire info` and `shmwire ls`.

use crate::header::{self, HeaderState, SegmentInfo};
use crate::{OpenError, Segment, SegmentOptions};

/// What [`SegmentOptions::inspect`] found behind a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The name looked at.
    pub name: String,
    /// The OS object's size in bytes (page-rounded on Windows).
    pub os_size: u64,
    /// What the object holds.
    pub state: SegmentState,
}

/// The state of an inspected object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// A valid shmwire segment.
    Shmwire(SegmentInfo),
    /// A shmwire segment whose creator has not published the header (yet, or never will if
    /// it died while creating it).
    Initializing,
    /// No shmwire header: raw, or another program's object.
    Foreign,
    /// A shmwire header that does not validate (corrupt, truncated, or a newer version).
    Unreadable(String),
}

impl SegmentOptions {
    /// Looks at the object behind `name` read-only, without waiting and without trusting it:
    /// a corrupt header is reported, not an error.
    ///
    /// # Errors
    ///
    /// Opening fails: [`OpenError::NotFound`], [`OpenError::PermissionDenied`], ...
    pub fn inspect(&self, name: &str) -> Result<Inspection, OpenError> {
        let seg = self.clone().raw(true).read_only(true).open(name)?;
        Ok(inspect_raw(name, &seg))
    }
}

/// What the object behind `seg`, a raw segment over the whole object, holds.
pub(crate) fn inspect_raw(name: &str, seg: &Segment) -> Inspection {
    let os_size = seg.len();
    let region = seg.payload.region();
    let state = if os_size < header::PAYLOAD_OFFSET {
        SegmentState::Foreign
    } else {
        match header::classify(&region) {
            // Includes fresh zero pages: a raw segment, or a creator that has not written
            // its header yet; they cannot be told apart without waiting.
            HeaderState::Blank | HeaderState::Foreign => SegmentState::Foreign,
            HeaderState::Initializing => SegmentState::Initializing,
            HeaderState::BadInitState(v) => {
                SegmentState::Unreadable(format!("its init state has the unknown value {v:#x}"))
            }
            HeaderState::Ready => {
                let mut bytes = [0u8; header::FIELDS_LEN];
                region.read(0, &mut bytes).expect("at least one page");
                match header::decode(&bytes, os_size) {
                    Ok(info) => SegmentState::Shmwire(info),
                    Err(header::Rejection::Version(v)) => SegmentState::Unreadable(format!(
                        "header layout version {v} (this shmwire reads {})",
                        header::VERSION
                    )),
                    Err(header::Rejection::Corrupt(reason)) => SegmentState::Unreadable(reason),
                    Err(header::Rejection::NotShmwire) => SegmentState::Foreign,
                }
            }
        }
    };
    Inspection {
        name: name.to_owned(),
        os_size,
        state,
    }
}
