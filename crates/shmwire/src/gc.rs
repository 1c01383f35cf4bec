//! Garbage collection: finding the segments nobody uses any more, and removing them.
//!
//! On POSIX a segment outlives its processes: a program killed before it removed its
//! segments leaves them in `/dev/shm`, holding memory, until someone removes them. This
//! module tells which ones are abandoned and removes those, never one still in use:
//!
//! ```no_run
//! use shmwire::gc::{self, GcOptions, Verdict};
//! // What would go? (`shmwire gc --dry-run`)
//! let report = gc::collect(&GcOptions::new().dry_run(true))?;
//! for f in &report.removed {
//!     println!("would remove {}: {}", f.object.name, f.verdict.reason());
//! }
//! // One segment's verdict (what `shmwire info` shows).
//! # let name = "frames";
//! if let Ok(Verdict::Stale(why)) = gc::judge(name) {
//!     println!("{name} is abandoned: {why}");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The verdict
//!
//! Only shmwire segments are judged: an object without a valid shmwire header (raw, another
//! program's, a corrupt or newer header) is [`Verdict::Foreign`] and never touched, since
//! nothing tells who uses it. A shmwire segment is [`Verdict::Live`] if any of these holds,
//! checked in this order:
//!
//! 1. its creator (pid + start time from the header) is alive, or its liveness cannot be
//!    told. A pid reused by another process does not count: its start time differs;
//! 2. for a channel (kinds 3–6): an endpoint registered in its peer table is alive (or
//!    cannot be told dead), or is attaching right now;
//! 3. a live process maps it or holds it open ([`shmwire_platform::Lifetime::users`]: on
//!    Linux, `/proc/<pid>/maps` and `/proc/<pid>/fd`, matched by device and inode);
//! 4. it is still being created (its creator has not published the header) and is younger
//!    than [`GcOptions::init_grace`].
//!
//! Otherwise it is abandoned: [`Verdict::Kept`] if it is meant to stay (marked persistent at
//! create, e.g. `shmwire create --persist`; a sync segment of `shmwire lock`/`signal`/`wait`;
//! a queue whose endpoints all left cleanly while messages were still queued for a receiver
//! to come), else [`Verdict::Stale`]. Both become [`Verdict::Uncertain`] instead when the
//! OS would not show every process (other users' processes, or more privileged ones, when
//! not running as root; any process on macOS), since one of those might use it:
//! [`GcOptions::ignore_unseen`] takes that risk deliberately.
//!
//! # Removal
//!
//! [`collect`] removes the stale segments (and the kept ones with
//! [`GcOptions::include_kept`]). Each is judged and removed through one open handle, and just
//! before removal its users are looked up again; the name is removed only if it still
//! belongs to the object judged, so a segment created again under the same name meanwhile is
//! left alone. A channel is removed with the handshake its own last endpoint uses: an endpoint
//! that attaches at that moment sees the channel closing and opens again, creating a new one.
//! What remains is a window of microseconds between the last look at the processes and the
//! removal, in which a process opening a plain (non-channel) segment would keep a mapping of
//! an object whose name is gone.
//!
//! # Platform-specific behavior
//!
//! * Linux: as above.
//! * Windows: a section lives only while some process has it open, so every segment that
//!   exists is in use ([`Verdict::Live`]) and there is nothing to collect.
//! * macOS: the OS can neither list shared-memory objects ([`scan`] and [`collect`] fail with
//!   `Unsupported`) nor show who maps one, so [`judge`] answers [`Verdict::Uncertain`] where
//!   Linux would say stale (or decides on creator and endpoints alone with
//!   [`GcOptions::ignore_unseen`]).
//!
//! Objects whose names contain `~shmwire-` (shmwire's derived objects) exist only on Windows,
//! as kernel objects that die with their last handle: there are none to collect anywhere.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use shmwire_platform::{
    Access, Lifetime, ListedObject, Liveness, Namespace, ObjectKey, ObjectName, Os, Processes,
    SharedMemory, Shm, Users,
};

use crate::header::{self, SegmentInfo};
use crate::inspect::inspect_raw;
use crate::{channel, Inspection, Kind, Name, OpenError, Segment, SegmentState};

/// What garbage collection makes of a named object. Each variant carries the reason, one
/// phrase for people (e.g. `"its creator, pid 4242, is gone; no process maps it"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In use, or possibly in use: never removed.
    Live(String),
    /// Abandoned: [`collect`] removes it.
    Stale(String),
    /// Abandoned, but meant to stay (persistent, a sync segment, a queue with messages for a
    /// receiver to come): removed only with [`GcOptions::include_kept`].
    Kept(String),
    /// Would be stale (or kept), but processes gc cannot inspect might use it: removed only
    /// with [`GcOptions::ignore_unseen`].
    Uncertain(String),
    /// Not a shmwire segment, or one gc cannot read: never touched.
    Foreign(String),
}

impl Verdict {
    /// One word: `live`, `stale`, `kept`, `uncertain` or `foreign`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Live(_) => "live",
            Verdict::Stale(_) => "stale",
            Verdict::Kept(_) => "kept",
            Verdict::Uncertain(_) => "uncertain",
            Verdict::Foreign(_) => "foreign",
        }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Live(r)
            | Verdict::Stale(r)
            | Verdict::Kept(r)
            | Verdict::Uncertain(r)
            | Verdict::Foreign(r) => r,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.word(), self.reason())
    }
}

/// One object found by [`scan`] or [`collect`], judged.
#[derive(Debug)]
pub struct Finding {
    /// The object as the OS listed it: name, size, permissions.
    pub object: ListedObject,
    /// What it holds, or why it could not be looked at.
    pub inspection: Result<Inspection, OpenError>,
    /// What gc makes of it.
    pub verdict: Verdict,
}

impl Finding {
    /// The kind recorded in its header, if it is a shmwire segment.
    pub fn kind(&self) -> Option<Kind> {
        match &self.inspection {
            Ok(Inspection {
                state: SegmentState::Shmwire(info),
                ..
            }) => Some(info.kind),
            _ => None,
        }
    }
}

/// How to judge and what to remove. Defaults: remove stale segments only, of any name;
/// processes gc cannot inspect might use anything; a half-created segment gets 10 s.
#[derive(Clone, Debug)]
pub struct GcOptions {
    dry_run: bool,
    include_kept: bool,
    prefix: Option<String>,
    ignore_unseen: bool,
    init_grace: Duration,
    namespace: Namespace,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            include_kept: false,
            prefix: None,
            ignore_unseen: false,
            init_grace: Duration::from_secs(10),
            namespace: Namespace::Local,
        }
    }
}

impl GcOptions {
    /// The defaults (see the type).
    pub fn new() -> Self {
        Self::default()
    }

    /// Judge everything, remove nothing: [`GcReport::removed`] lists what would go.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Remove [`Verdict::Kept`] segments too (persistent ones, sync segments, queues holding
    /// messages for a receiver to come).
    pub fn include_kept(mut self, include: bool) -> Self {
        self.include_kept = include;
        self
    }

    /// Look only at objects whose names start with `prefix` (others are not even opened).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Treat processes whose mappings gc cannot read (see [`shmwire_platform::Users::unseen`];
    /// on macOS, every process) as not using any segment. This is a risk taken knowingly:
    /// without it such segments are [`Verdict::Uncertain`] and stay. Running as root shows
    /// every process on an ordinary Linux system, and needs no such risk.
    pub fn ignore_unseen(mut self, ignore: bool) -> Self {
        self.ignore_unseen = ignore;
        self
    }

    /// How long a segment whose creator has not published its header may stay in that state
    /// before it counts as abandoned by a creator that died while creating it (default 10 s;
    /// a creator that is still at work is normally seen mapping it anyway).
    pub fn init_grace(mut self, grace: Duration) -> Self {
        self.init_grace = grace;
        self
    }

    /// Windows: [`judge`](Self::judge) looks in the `Global\` namespace. No effect elsewhere.
    /// ([`scan`](Self::scan) and [`collect`](Self::collect) look at every listed object in its
    /// own namespace, `Local\` or `Global\`: see [`ListedObject::global`].)
    pub fn global(mut self, global: bool) -> Self {
        self.namespace = if global {
            Namespace::Global
        } else {
            Namespace::Local
        };
        self
    }

    fn wanted(&self, name: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
    }

    /// These options, in the namespace `object` was listed in.
    fn for_object(&self, object: &ListedObject) -> GcOptions {
        self.clone().global(object.global)
    }

    /// Judges every object on this machine (with [`prefix`](Self::prefix): every one whose
    /// name starts with it), removing nothing.
    ///
    /// # Errors
    ///
    /// The objects cannot be listed (`Unsupported` on macOS). Processes that cannot be looked
    /// at make verdicts [`Verdict::Uncertain`], not an error.
    pub fn scan(&self) -> io::Result<Vec<Finding>> {
        // Only looking: if the processes cannot be looked at, say "uncertain", not fail.
        let users = Os::users().unwrap_or(None);
        let mut out = Vec::new();
        for object in crate::list()? {
            if !self.wanted(&object.name) {
                continue;
            }
            let this = self.for_object(&object);
            match this.look(&object.name, users.as_ref(), Access::ReadOnly) {
                Look::Gone => {}
                Look::Unopened(e, verdict) => out.push(Finding {
                    object,
                    inspection: Err(e),
                    verdict,
                }),
                Look::Judged(j) => out.push(Finding {
                    object,
                    inspection: Ok(j.inspection),
                    verdict: j.verdict,
                }),
            }
        }
        Ok(out)
    }

    /// Judges the object behind `name`, removing nothing.
    ///
    /// # Errors
    ///
    /// It cannot be opened ([`OpenError::NotFound`], [`OpenError::PermissionDenied`], an
    /// invalid name, [`OpenError::Io`]).
    pub fn judge(&self, name: &str) -> Result<Verdict, OpenError> {
        // Only looking: if the processes cannot be looked at, say "uncertain", not fail.
        let users = Os::users().unwrap_or(None);
        match self.look(name, users.as_ref(), Access::ReadOnly) {
            Look::Gone => Err(OpenError::NotFound {
                name: name.to_owned(),
            }),
            Look::Unopened(e, _) => Err(e),
            Look::Judged(j) => Ok(j.verdict),
        }
    }

    /// Judges every object (with [`prefix`](Self::prefix): whose name starts with it) and
    /// removes the stale ones (and the kept ones with [`include_kept`](Self::include_kept)),
    /// unless this is a [`dry_run`](Self::dry_run).
    ///
    /// # Errors
    ///
    /// The objects cannot be listed (`Unsupported` on macOS), or the processes cannot be
    /// looked at (`/proc` unreadable). A segment that cannot be removed is reported in
    /// [`GcReport::failed`], not as an error.
    pub fn collect(&self) -> io::Result<GcReport> {
        let users = Os::users()?;
        let mut report = GcReport {
            dry_run: self.dry_run,
            ..GcReport::default()
        };
        for object in crate::list()? {
            if !self.wanted(&object.name) {
                continue;
            }
            let this = self.for_object(&object);
            let j = match this.look(&object.name, users.as_ref(), Access::ReadWrite) {
                Look::Gone => continue,
                Look::Unopened(e, verdict) => {
                    report.foreign.push(Finding {
                        object,
                        inspection: Err(e),
                        verdict,
                    });
                    continue;
                }
                Look::Judged(j) => j,
            };
            let removable = match j.verdict {
                Verdict::Stale(_) => true,
                Verdict::Kept(_) => self.include_kept,
                _ => false,
            };
            let (verdict, outcome) = if removable && !self.dry_run {
                match this.remove(&object.name, &j) {
                    Removal::Done => (j.verdict, Ok(true)),
                    Removal::Vanished => continue,
                    Removal::Spared(v) => (v, Ok(false)),
                    Removal::Failed(e) => (j.verdict, Err(e)),
                }
            } else {
                (j.verdict, Ok(removable))
            };
            let finding = Finding {
                object,
                inspection: Ok(j.inspection),
                verdict,
            };
            match outcome {
                Err(e) => report.failed.push((finding, e)),
                Ok(true) => report.removed.push(finding),
                Ok(false) => match finding.verdict {
                    Verdict::Live(_) => report.live.push(finding),
                    Verdict::Kept(_) => report.kept.push(finding),
                    Verdict::Uncertain(_) => report.uncertain.push(finding),
                    Verdict::Foreign(_) => report.foreign.push(finding),
                    Verdict::Stale(_) => unreachable!("stale segments are removable"),
                },
            }
        }
        Ok(report)
    }

    /// Opens `name` (read-write if asked and allowed, else read-only) and judges it.
    fn look(&self, name: &str, users: Option<&Users>, access: Access) -> Look {
        let valid = match Name::new(name) {
            Ok(n) => n,
            Err(e) => {
                return Look::Unopened(
                    OpenError::InvalidName(e),
                    Verdict::Foreign("not a name shmwire would give a segment".into()),
                )
            }
        };
        let oname = ObjectName {
            name,
            namespace: self.namespace,
        };
        let opened = match Shm::open(oname, access) {
            Err(e)
                if access == Access::ReadWrite && e.kind() == io::ErrorKind::PermissionDenied =>
            {
                Shm::open(oname, Access::ReadOnly)
            }
            other => other,
        };
        let shm = match opened {
            Ok(shm) => shm,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Look::Gone,
            Err(source) => {
                let verdict = Verdict::Foreign(format!("cannot open it: {source}"));
                let e = if source.kind() == io::ErrorKind::PermissionDenied {
                    OpenError::PermissionDenied {
                        name: name.to_owned(),
                        source,
                    }
                } else {
                    OpenError::Io {
                        name: name.to_owned(),
                        op: "opening the object",
                        source,
                    }
                };
                return Look::Unopened(e, verdict);
            }
        };
        match self.judge_handle(valid, shm, users) {
            Ok(j) => Look::Judged(j),
            Err(e) => {
                let verdict = Verdict::Foreign(format!("cannot read it: {e}"));
                Look::Unopened(e, verdict)
            }
        }
    }

    /// Judges the object behind `shm` (see the module docs for the rules).
    fn judge_handle(
        &self,
        name: Name,
        shm: Shm,
        users: Option<&Users>,
    ) -> Result<Judged, OpenError> {
        let io_err = |op: &'static str| {
            let name = name.as_str().to_owned();
            move |source| OpenError::Io { name, op, source }
        };
        // Read what we need through a clone of the handle, then unmap it all: from here on
        // this process maps the object only if the caller itself does.
        let clone = shm.try_clone().map_err(io_err("duplicating its handle"))?;
        let (inspection, info, channel) = {
            let seg = Segment::raw_from_handle(name.clone(), self.namespace, clone)?;
            let inspection = inspect_raw(name.as_str(), &seg);
            let info = match &inspection.state {
                SegmentState::Shmwire(info) => Some(info.clone()),
                SegmentState::Initializing => unpublished_header(&seg),
                _ => None,
            };
            let channel = info
                .as_ref()
                .filter(|i| (Kind::SPSC.0..=Kind::BLACKBOARD.0).contains(&i.kind.0))
                .and_then(|_| channel::examine(&seg));
            (inspection, info, channel)
        };
        let key = shm.key().map_err(io_err("reading its identity"))?;
        let mut judged = Judged {
            inspection,
            verdict: Verdict::Foreign(String::new()),
            shm,
            key,
            channel: channel.is_some(),
        };
        let initializing = match &judged.inspection.state {
            SegmentState::Shmwire(_) => false,
            SegmentState::Initializing => true,
            SegmentState::Unreadable(why) => {
                judged.verdict = Verdict::Foreign(format!(
                    "its shmwire header cannot be read ({why}); gc leaves it alone"
                ));
                return Ok(judged);
            }
            _ => {
                judged.verdict = Verdict::Foreign(
                    "no shmwire header: raw, or another program's; gc leaves it alone".into(),
                );
                return Ok(judged);
            }
        };
        judged.verdict = self.decide(
            &judged,
            info.as_ref(),
            channel.as_ref(),
            users,
            initializing,
        );
        Ok(judged)
    }

    fn decide(
        &self,
        judged: &Judged,
        info: Option<&SegmentInfo>,
        channel: Option<&channel::Leftover>,
        users: Option<&Users>,
        initializing: bool,
    ) -> Verdict {
        if !crate::NAMES_OUTLIVE_HANDLES {
            return Verdict::Live(
                "on this OS a segment exists only while a process has it open".into(),
            );
        }
        // 1. The creator.
        if let Some(info) = info {
            let c = info.creator;
            match crate::liveness(c) {
                Liveness::Alive => {
                    return Verdict::Live(format!("its creator, pid {}, is alive", c.pid))
                }
                Liveness::Unknown => {
                    return Verdict::Live(format!(
                        "cannot tell whether its creator, pid {}, is alive",
                        c.pid
                    ))
                }
                Liveness::Dead => {}
            }
        }
        // 2. The channel's endpoints.
        for e in channel.map_or(&[][..], |c| &c.endpoints[..]) {
            let pid = e.process.pid;
            let side = if e.receiving { "receiving" } else { "sending" };
            if e.claiming {
                if pid == 0 || Os::process_exists(pid) {
                    return Verdict::Live(format!("an endpoint (pid {pid}) is attaching"));
                }
            } else if crate::liveness(e.process) != Liveness::Dead {
                return Verdict::Live(format!("its {side} endpoint, pid {pid}, is alive"));
            }
        }
        // 3. Who maps it or holds it open.
        if let (Some(users), Some(key)) = (users, judged.key) {
            if let Some(why) = used_by(users.of(key)) {
                return Verdict::Live(why);
            }
        }
        // 4. A creator still at work.
        if initializing {
            let age = judged
                .shm
                .changed()
                .ok()
                .flatten()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            match age {
                Some(age) if age >= self.init_grace => {}
                Some(age) => {
                    return Verdict::Live(format!("still being created ({} s old)", age.as_secs()))
                }
                None => return Verdict::Live("being created, for how long is unknown".into()),
            }
        }
        // Abandoned. Kept on purpose?
        let seen = match users {
            None => "which processes map it cannot be told here",
            Some(u) if !u.unseen().is_empty() => "no process gc can inspect maps it",
            Some(_) => "no process maps it",
        };
        let gone = abandoned_because(info, channel, initializing, seen);
        // (The CLI's sync segments are kept this way too: it creates them with `keep_in_gc`.)
        let kept = if info.is_some_and(|i| i.persistent) {
            Some("marked persistent by its creator")
        } else if channel.is_some_and(|c| c.queued && c.endpoints.is_empty()) {
            Some(
                "a channel whose endpoints left cleanly with messages queued for a receiver \
                 to come",
            )
        } else {
            None
        };
        // A kept one stays anyway; whether unseen processes use it matters only when it is
        // to be removed too (`include_kept`), and is checked then.
        if let Some(why) = kept {
            return Verdict::Kept(format!("{why}; {gone}"));
        }
        match self.unseen(users) {
            Some(unsure) => Verdict::Uncertain(format!("{gone}, but {unsure}")),
            None => Verdict::Stale(gone),
        }
    }

    /// Why the processes seen may not be all that matter, unless told to ignore that.
    fn unseen(&self, users: Option<&Users>) -> Option<String> {
        if self.ignore_unseen {
            return None;
        }
        let Some(users) = users else {
            return Some("this OS cannot show which processes map it".into());
        };
        let unseen = users.unseen();
        if unseen.is_empty() {
            return None;
        }
        let mut names: Vec<String> = unseen
            .iter()
            .take(3)
            .map(|p| match &p.name {
                Some(n) => format!("pid {} ({n})", p.pid),
                None => format!("pid {}", p.pid),
            })
            .collect();
        if unseen.len() > 3 {
            names.push(format!("{} more", unseen.len() - 3));
        }
        Some(format!(
            "gc cannot see what {} map{} (not readable to us, even as root in a container; \
             --ignore-unseen removes such segments knowingly)",
            names.join(", "),
            if unseen.len() == 1 { "s" } else { "" },
        ))
    }

    /// Removes the judged object if it is still abandoned (see "Removal" in the module docs).
    fn remove(&self, name: &str, j: &Judged) -> Removal {
        let oname = ObjectName {
            name,
            namespace: self.namespace,
        };
        // The last look at the processes, as close to the removal as we can.
        let users = match Os::users() {
            Ok(u) => u,
            Err(e) => return Removal::Failed(e),
        };
        if let (Some(users), Some(key)) = (users.as_ref(), j.key) {
            if let Some(why) = used_by(users.of(key)) {
                return Removal::Spared(Verdict::Live(format!("{why} (seen just before removal)")));
            }
        }
        if let Some(unsure) = self.unseen(users.as_ref()) {
            return Removal::Spared(Verdict::Uncertain(format!(
                "{}, but {unsure}",
                j.verdict.reason()
            )));
        }
        let mut retired = None;
        if j.channel {
            let valid = Name::new(name).expect("judged names are valid");
            let seg = match j
                .shm
                .try_clone()
                .map_err(|e| OpenError::Io {
                    name: name.to_owned(),
                    op: "duplicating its handle",
                    source: e,
                })
                .and_then(|c| Segment::raw_from_handle(valid, self.namespace, c))
            {
                Ok(seg) => seg,
                Err(e) => return Removal::Failed(io::Error::other(e.to_string())),
            };
            match channel::retire(&seg) {
                Some(false) => {
                    return Removal::Spared(Verdict::Live(
                        "an endpoint was attached at the last look before removal".into(),
                    ))
                }
                Some(true) => retired = Some(seg),
                None => {} // read-only: no handshake possible; the removal decides
            }
        }
        match j.shm.remove_if_same(oname) {
            Ok(()) => Removal::Done,
            Err(e) => {
                if let Some(seg) = retired {
                    channel::unretire(&seg);
                }
                if e.kind() != io::ErrorKind::NotFound {
                    return Removal::Failed(e);
                }
                match Shm::open(oname, Access::ReadOnly) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Removal::Vanished,
                    _ => Removal::Spared(Verdict::Live(
                        "the name was taken by a new segment while gc looked; left alone".into(),
                    )),
                }
            }
        }
    }
}

/// The outcome of [`GcOptions::collect`].
#[derive(Debug, Default)]
pub struct GcReport {
    /// Whether this was a dry run (then [`removed`](Self::removed) lists what would go).
    pub dry_run: bool,
    /// Removed (or, in a dry run, to be removed): stale ones, and kept ones if asked.
    pub removed: Vec<Finding>,
    /// Abandoned but kept on purpose ([`Verdict::Kept`]).
    pub kept: Vec<Finding>,
    /// Possibly abandoned, kept because unseen processes might use them
    /// ([`Verdict::Uncertain`]).
    pub uncertain: Vec<Finding>,
    /// In use ([`Verdict::Live`]), including ones found in use at the last look before
    /// removal.
    pub live: Vec<Finding>,
    /// Not judged: not shmwire segments, or not readable ([`Verdict::Foreign`]).
    pub foreign: Vec<Finding>,
    /// Judged removable, but the removal failed (e.g. permission denied), with the error.
    pub failed: Vec<(Finding, io::Error)>,
}

/// Judges every object on this machine, removing nothing: [`GcOptions::scan`] with the
/// defaults (what `shmwire ls` shows).
///
/// # Errors
///
/// See [`GcOptions::scan`].
pub fn scan() -> io::Result<Vec<Finding>> {
    GcOptions::new().scan()
}

/// Judges one object: [`GcOptions::judge`] with the defaults (what `shmwire info` shows).
///
/// # Errors
///
/// See [`GcOptions::judge`].
pub fn judge(name: &str) -> Result<Verdict, OpenError> {
    GcOptions::new().judge(name)
}

/// Removes abandoned segments as `opts` say: [`GcOptions::collect`] (`shmwire gc`).
///
/// # Errors
///
/// See [`GcOptions::collect`].
pub fn collect(opts: &GcOptions) -> io::Result<GcReport> {
    opts.collect()
}

/// A judged object and the handle it was judged through.
struct Judged {
    inspection: Inspection,
    verdict: Verdict,
    shm: Shm,
    key: Option<ObjectKey>,
    /// A channel whose control page could be read (removal uses the handshake).
    channel: bool,
}

enum Look {
    /// Removed before we could open it.
    Gone,
    /// Could not be opened or read.
    Unopened(OpenError, Verdict),
    Judged(Judged),
}

enum Removal {
    Done,
    /// Removed by someone else meanwhile.
    Vanished,
    /// Found in use (or uncertain) at the last look.
    Spared(Verdict),
    Failed(io::Error),
}

/// "mapped or open by pid 7, 9" if `pids` is not empty.
fn used_by(pids: &[u32]) -> Option<String> {
    if pids.is_empty() {
        return None;
    }
    let list: Vec<String> = pids.iter().take(5).map(u32::to_string).collect();
    let more = if pids.len() > 5 {
        format!(" and {} more", pids.len() - 5)
    } else {
        String::new()
    };
    Some(format!(
        "mapped or open by pid{} {}{more}",
        if pids.len() == 1 { "" } else { "s" },
        list.join(", ")
    ))
}

/// Why an object is abandoned, in one phrase.
fn abandoned_because(
    info: Option<&SegmentInfo>,
    channel: Option<&channel::Leftover>,
    initializing: bool,
    seen: &str,
) -> String {
    let mut why = match (info, initializing) {
        (Some(i), false) => format!("its creator, pid {}, is gone", i.creator.pid),
        (Some(i), true) => format!(
            "its creator, pid {}, died before finishing it",
            i.creator.pid
        ),
        (None, _) => "its creator died before finishing it".to_owned(),
    };
    if let Some(c) = channel {
        match c.endpoints.len() {
            0 => why.push_str(", no channel endpoint is attached"),
            1 => why.push_str(", its channel endpoint is dead"),
            n => why.push_str(&format!(", its {n} channel endpoints are dead")),
        }
    }
    why.push_str("; ");
    why.push_str(seen);
    why
}

/// The header of a segment whose creator has not published it, if its fields are complete
/// and valid (the creator died after writing them, e.g. in its initializer), so its creator
/// is known.
fn unpublished_header(seg: &Segment) -> Option<SegmentInfo> {
    let mut bytes = [0u8; header::FIELDS_LEN];
    seg.read_at(0, &mut bytes).ok()?;
    header::decode(&bytes, seg.len()).ok()
}
