//! What `shmwire info` and `shmwire ls` say about a segment: [`Described`], one row of
//! `ls --json` and the whole of `info --json`, made from the library's inspection and gc
//! verdict.

use std::time::UNIX_EPOCH;

use serde::Serialize;
use shmwire::gc::Verdict;
use shmwire::{Inspection, Liveness, SegmentState};

/// What `info --json` prints and `ls --json` lists.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Described {
    pub name: String,
    /// In Windows' `Global\` namespace: commands about it take `--global`. `ls` says so of
    /// the `Global\` sections it lists (never elsewhere than on Windows); `info` of a name
    /// asked for with `--global`.
    pub global: bool,
    /// "shmwire", "initializing", "foreign" (raw or another program's), "unreadable",
    /// "no-access" (ls only).
    pub state: &'static str,
    /// Payload size for shmwire segments, else the OS object's size.
    pub size: u64,
    pub os_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_tag: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_pid: Option<u32>,
    /// "alive", "dead" or "unknown".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_unix_ns: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What `shmwire gc` makes of it: "live", "stale", "kept", "uncertain" or "foreign".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<&'static str>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc_reason: Option<String>,
}

/// Records gc's verdict in `d`.
pub(crate) fn set_verdict(d: &mut Described, v: &Verdict) {
    d.gc = Some(v.word());
    d.gc_reason = Some(v.reason().to_owned());
}

/// `alive`, `dead` or `unknown`.
pub(crate) fn liveness_word(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Dead => "dead",
        Liveness::Unknown => "unknown",
    }
}

/// What the inspection of a segment shows; the caller adds what it knows besides (the
/// namespace, mode and owner from the listing, gc's verdict).
pub(crate) fn describe(i: &Inspection) -> Described {
    let mut d = Described {
        name: i.name.clone(),
        state: "foreign",
        size: i.os_size,
        os_size: i.os_size,
        ..Described::default()
    };
    match &i.state {
        SegmentState::Shmwire(info) => {
            d.state = "shmwire";
            d.size = info.size;
            d.kind = Some(info.kind.to_string());
            d.kind_code = Some(info.kind.0);
            d.type_tag = Some(info.type_tag);
            d.version = Some(info.version);
            d.creator_pid = Some(info.creator.pid);
            d.creator = Some(liveness_word(shmwire::liveness(info.creator)));
            d.created = Some(humantime::format_rfc3339_seconds(info.created).to_string());
            d.created_unix_ns = info
                .created
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|t| t.as_nanos());
        }
        SegmentState::Initializing => d.state = "initializing",
        SegmentState::Foreign => {}
        SegmentState::Unreadable(why) => {
            d.state = "unreadable";
            d.problem = Some(why.clone());
        }
        _ => d.state = "unknown",
    }
    d
}
