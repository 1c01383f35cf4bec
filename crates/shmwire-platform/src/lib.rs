//! The operating-system layer of shmwire: the only crate that calls `rustix` or `windows-sys`.
//!
//! It offers five things, each as a contract written on a trait and implemented once per
//! platform:
//!
//! * [`SharedMemory`]: a named shared-memory object (POSIX `shm_open`, Windows
//!   `CreateFileMappingW` on the paging file) and [`View`]s of it.
//! * [`Processes`]: process identity (pid + start time) and liveness, so that a recycled pid
//!   is never mistaken for a live peer.
//! * [`FileMapping`]: views of an open file ([`FileMap`]: `mmap` of the file on POSIX, a
//!   section made with `CreateFileMappingW(hFile, ...)` on Windows, optionally named).
//! * [`WordWait`] and the named kernel objects ([`KernelMutex`], [`KernelEvent`],
//!   [`KernelSemaphore`]): sleeping and waking across processes, the base of shmwire's
//!   robust mutex, events and semaphores (futex on Linux; kernel objects on Windows).
//! * [`Lifetime`]: how a named object is removed, and (where objects die with their last
//!   handle, i.e. Windows) how a holder process keeps one alive until it is removed.
//!
//! The backend is chosen once, in this file ([`Shm`], [`Os`]); nothing above this crate says
//! `cfg(target_os)`. Names given to this crate are already validated by the caller (see
//! `shmwire::Name`): no '/', no '\\', no NUL, not longer than [`NAME_MAX`].
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as backend;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as backend;

#[cfg(not(any(unix, windows)))]
compile_error!("shmwire supports Unix (Linux, macOS) and Windows only");

pub use backend::{Os, Shm, View};

mod file;
pub use backend::FileMap;
pub use file::{FileAccess, FileMapping};

mod sync;
pub use backend::sync::{NamedEvent, NamedMutex, NamedSemaphore};
pub use sync::{
    KernelEvent, KernelMutex, KernelSemaphore, MutexAcquired, WaitOutcome, WordWait,
    KERNEL_SYNC_OBJECTS, WORD_WAIT_MECHANISM,
};

/// Whether file mappings can have names of their own (true on Windows, where a section made
/// for a file can be named and opened by name; false on POSIX, where the path is the name).
pub const FILE_MAPPINGS_HAVE_NAMES: bool = backend::FILE_MAPPINGS_HAVE_NAMES;

/// Longest valid segment name on this platform, in bytes (UTF-8).
///
/// * Linux: 254: the longest file name in `/dev/shm` is 255 bytes, counting the leading `/`
///   that `shm_open` takes.
/// * macOS: 30, since `PSHMNAMLEN` is 31 including the leading `/`.
/// * Windows: 200, so that `Global\` and the suffixes of derived objects still fit in
///   `MAX_PATH`.
pub const NAME_MAX: usize = backend::NAME_MAX;

/// Suffix marker of the kernel objects shmwire derives from a segment name for its own use
/// (events, holder signals). User names may not contain it, so a derived object never shares
/// a name with a mapping (Windows kernel objects of all types share one namespace).
pub const DERIVED_MARKER: &str = "~shmwire-";

/// Whether a named object survives after every handle to it is closed.
///
/// `true` on POSIX (an object lives until `shm_unlink`), `false` on Windows (a mapping dies
/// with its last handle, so something must hold it: see [`Lifetime::hold_until_removed`]).
pub const NAMES_OUTLIVE_HANDLES: bool = backend::NAMES_OUTLIVE_HANDLES;

/// Allocation granularity: the alignment a view's file offset must have (the page size on
/// POSIX, 64 KiB on Windows).
pub fn allocation_granularity() -> u64 {
    backend::allocation_granularity()
}

/// This process's identity, its start time computed once per pid: reading it costs
/// microseconds (`/proc/self/stat`, `GetProcessTimes`), and a lock must not pay that on every
/// acquisition. A forked child has a new pid, so it recomputes. An unknown start time (0) is
/// not cached.
pub(crate) fn cached_identity(pid: u32, start_time: impl FnOnce() -> u64) -> ProcessId {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    static START: AtomicU64 = AtomicU64::new(0);
    // ORDERING: Acquire — pairs with the Release store of PID below: seeing our pid there
    // means START holds our start time (a process's pid and start time never change).
    if PID.load(Ordering::Acquire) == pid {
        return ProcessId {
            pid,
            start_time: START.load(Ordering::Relaxed),
        };
    }
    let start = start_time();
    if start != 0 {
        START.store(start, Ordering::Relaxed);
        // ORDERING: Release — publishes START; pairs with the Acquire load above.
        PID.store(pid, Ordering::Release);
    }
    ProcessId {
        pid,
        start_time: start,
    }
}

/// Stops child processes started from now on from inheriting this process's standard input,
/// output and error *implicitly*. Call it before starting a long-lived detached child (the
/// Windows holder process), or whoever reads our output waits for that child too.
///
/// Windows: clears `HANDLE_FLAG_INHERIT` on the three standard handles (a child started with
/// inherited handles gets every inheritable handle, not just the ones given to it; explicit
/// `Stdio::inherit()` still works, since std duplicates the handle for the child). Elsewhere
/// nothing to do: a child gets exactly the descriptors `Command` gives it.
pub fn keep_stdio_from_children() {
    backend::keep_stdio_from_children();
}

/// Read-only or read-write access to an object or view, enforced by the OS page protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Pages are mapped without write permission: a write faults.
    ReadOnly,
    /// Pages are readable and writable.
    ReadWrite,
}

/// Windows kernel-object namespace. POSIX has one machine-wide namespace and ignores this.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// `Local\`: the caller's session (the default, as for a plain name in Win32).
    #[default]
    Local,
    /// `Global\`: all sessions. Creating needs `SeCreateGlobalPrivilege`.
    Global,
}

/// Who may open a new object, as Unix permission bits (`0o600`: owner only).
///
/// On Windows the bits become a DACL: the owner always gets full access; if any group or
/// other bit is set, `Everyone` gets read access (`r`) or read-write access (`w`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permissions {
    /// Unix permission bits, `0o000..=0o777`.
    pub mode: u32,
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions { mode: 0o600 }
    }
}

/// A validated name plus its namespace, as handed to a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectName<'a> {
    /// The user's name, used verbatim (POSIX adds only the leading `/` that `shm_open` needs).
    pub name: &'a str,
    /// Windows namespace; ignored elsewhere.
    pub namespace: Namespace,
}

/// A named shared-memory object: the contract every backend implements.
///
/// Errors are `io::Error`s with the OS error code, and these kinds the layers above rely on:
/// `AlreadyExists` (exclusive create of an existing name), `NotFound`, `PermissionDenied`
/// (including, on Windows, `Global\` without the privilege), `StorageFull` (no room to reserve
/// the pages: `/dev/shm` or the commit limit is full). Running out of file descriptors or
/// handles keeps the OS error, recognized by [`is_too_many_open`].
pub trait SharedMemory: Sized {
    /// Creates a new object of exactly `size` bytes (`size > 0`), failing with
    /// `AlreadyExists` if the name is taken. The pages are reserved now (`posix_fallocate` on
    /// Linux tmpfs; `SEC_COMMIT` on Windows), so running out of memory is an error here rather
    /// than a `SIGBUS` at the first write. On failure nothing is left behind. New pages are
    /// zero. The object is open read-write.
    fn create(name: ObjectName<'_>, size: u64, perms: Permissions) -> io::Result<Self>;

    /// Opens an existing object.
    fn open(name: ObjectName<'_>, access: Access) -> io::Result<Self>;

    /// The object's size as the OS knows it now: exact on POSIX (`fstat`), rounded up to the
    /// page size on Windows, where only the section's page-rounded size can be learnt.
    fn size(&self) -> io::Result<u64>;

    /// Maps `len` bytes from `offset` (a multiple of [`allocation_granularity`]). `len` may be
    /// zero (an empty view). A read-only view faults on write, whatever the object's access.
    fn map(&self, offset: u64, len: usize, access: Access) -> io::Result<View>;

    /// The access this handle was opened with.
    fn access(&self) -> Access;

    /// Removes `name` if it still names *this* object (an owner's clean-up must not remove a
    /// newer object that took the name after ours was removed).
    ///
    /// POSIX: compares device and inode of `name` with this handle's, then `shm_unlink`s.
    /// Windows: nothing to do: the section dies with its last handle, and its name cannot be
    /// taken by another object while this handle is open.
    fn remove_if_same(&self, name: ObjectName<'_>) -> io::Result<()>;

    /// A second handle to the same object, with the same access (`dup` on POSIX,
    /// `DuplicateHandle` on Windows): whatever the name means meanwhile, both handles refer
    /// to the object this one was opened on.
    fn try_clone(&self) -> io::Result<Self>;

    /// The object's identity, to find it among the objects processes use ([`Users::of`]).
    /// `None` where the OS gives none that can be compared (Windows).
    fn key(&self) -> io::Result<Option<ObjectKey>>;

    /// When the object last changed size or permissions (POSIX: the later of its `mtime`
    /// and `ctime`, i.e. about when it was created, since writes through a mapping do not
    /// update them). `None` where the OS does not record it (Windows).
    fn changed(&self) -> io::Result<Option<std::time::SystemTime>>;
}

/// The identity of a named object (POSIX: device and inode), from [`SharedMemory::key`]. Two
/// handles with equal keys refer to the same object, whatever names it has or had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    device: u64,
    inode: u64,
}

impl ObjectKey {
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn new(device: u64, inode: u64) -> ObjectKey {
        ObjectKey { device, inode }
    }
}

/// Which processes map or hold open which shared-memory objects, as seen in one look at every
/// process ([`Lifetime::users`]).
#[derive(Clone, Debug, Default)]
pub struct Users {
    by_object: std::collections::HashMap<ObjectKey, Vec<u32>>,
    unseen: Vec<UnseenProcess>,
}

impl Users {
    /// The processes that map the object `key` or hold it open, in ascending pid order. The
    /// calling process counts only by its mappings, not by its open handles (such as the
    /// handle the caller looks at the object through).
    pub fn of(&self, key: ObjectKey) -> &[u32] {
        self.by_object.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The processes whose mappings or open handles could not be read (no permission: other
    /// users' processes, or ones more privileged than the caller): any of them might use any
    /// object. Kernel threads, which map no shared memory, are not listed.
    pub fn unseen(&self) -> &[UnseenProcess] {
        &self.unseen
    }

    #[cfg_attr(not(linux_like), allow(dead_code))]
    pub(crate) fn add(&mut self, key: ObjectKey, pid: u32) {
        let pids = self.by_object.entry(key).or_default();
        if let Err(at) = pids.binary_search(&pid) {
            pids.insert(at, pid);
        }
    }

    #[cfg_attr(not(linux_like), allow(dead_code))]
    pub(crate) fn add_unseen(&mut self, process: UnseenProcess) {
        self.unseen.push(process);
    }
}

/// A process whose use of shared memory could not be seen (see [`Users::unseen`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnseenProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command name, if it could be read.
    pub name: Option<String>,
}

/// Removing named objects and, on Windows, keeping them alive: the contract of [`Os`].
pub trait Lifetime {
    /// Removes a name.
    ///
    /// POSIX: `shm_unlink`: the name is gone at once; mappings stay valid until unmapped.
    /// Windows: asks the shmwire holder process of that name (if any) to exit; the mapping
    /// disappears when the last program that has it open closes it. `NotFound` if no object
    /// of that name exists; `WouldBlock` if it exists but no shmwire holder keeps it (it is
    /// owned by the programs that have it open).
    fn remove(name: ObjectName<'_>) -> io::Result<()>;

    /// Blocks until [`Lifetime::remove`] is called for `name`; the caller keeps its handle of
    /// the object open meanwhile. `ready` is called once the holder can be signalled.
    /// Returns `Unsupported` where objects outlive handles (POSIX), since there nothing needs
    /// holding.
    fn hold_until_removed(name: ObjectName<'_>, ready: &mut dyn FnMut()) -> io::Result<()>;

    /// Lists the named objects on this machine that the caller can see, with their sizes as
    /// the OS reports them. `Unsupported` where the OS cannot enumerate them (macOS).
    ///
    /// Linux: the files of `/dev/shm`. Windows: the sections in this session's `Local\`
    /// namespace (`NtQueryDirectoryObject` on `\Sessions\<id>\BaseNamedObjects`) and in the
    /// `Global\` one (`\BaseNamedObjects`), the latter marked [`ListedObject::global`],
    /// without shmwire's derived objects; sizes are page-rounded. In session 0 (services) the
    /// two namespaces are one directory, listed once as `Local\`.
    fn list() -> io::Result<Vec<ListedObject>>;

    /// Looks at every process once: which shared-memory objects each one maps or holds open.
    ///
    /// `Ok(None)` where the OS cannot tell: macOS (no way to see another process's mappings
    /// without its task port) and Windows (where a section lives only while a process has it
    /// open, so there is no question to answer).
    ///
    /// Linux: `/proc/<pid>/maps` (mappings of objects on the `/dev/shm` filesystem, by device
    /// and inode) and `/proc/<pid>/fd` (descriptors of such objects). Processes whose entries
    /// cannot be read (permission) are listed in [`Users::unseen`]. The answer is a snapshot:
    /// a process may map an object right after it was taken.
    fn users() -> io::Result<Option<Users>>;
}

/// One named object found by [`Lifetime::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The name, without the POSIX leading `/` (lossy if not UTF-8).
    pub name: String,
    /// Size in bytes, as the OS reports it.
    pub size: u64,
    /// Unix permission bits, where the OS has them.
    pub mode: Option<u32>,
    /// Owner's user id, where the OS has it.
    pub uid: Option<u32>,
    /// Windows: the object is in the `Global\` namespace (open it with
    /// [`Namespace::Global`]), not in the session's `Local\` one. Always `false` elsewhere.
    pub global: bool,
}

/// The room for named shared memory where the OS keeps it in a filesystem of its own: on
/// Linux the tmpfs mounted on `/dev/shm`, whose size limits all POSIX shared memory together
/// (64 MiB by default in a Docker container). See [`shm_space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmSpace {
    /// Where the filesystem is mounted (`/dev/shm`).
    pub path: &'static str,
    /// Its size limit in bytes.
    pub total: u64,
    /// Bytes still free.
    pub free: u64,
    /// How many objects (inodes) it may hold, if it has such a limit (tmpfs `nr_inodes`).
    pub max_objects: Option<u64>,
    /// How many more objects fit (meaningful when `max_objects` is `Some`).
    pub free_objects: u64,
    /// The machine's RAM + swap in bytes, if known: more than this cannot be backed, whatever
    /// the filesystem's limit says.
    pub memory: Option<u64>,
}

/// Size and free room of the filesystem behind named shared memory (`statvfs("/dev/shm")` on
/// Linux).
///
/// `Ok(None)` where no filesystem of its own limits shared memory: Windows (sections live in
/// the paging file, limited by the system commit limit), macOS (no `/dev/shm`), and a
/// `/dev/shm` mounted without a size limit.
#[doc(alias = "statvfs")]
pub fn shm_space() -> io::Result<Option<ShmSpace>> {
    backend::shm_space()
}

/// Whether `e` says that this process or the whole system has too many files or handles open
/// (`EMFILE` or `ENFILE`; Windows `ERROR_TOO_MANY_OPEN_FILES`).
pub fn is_too_many_open(e: &io::Error) -> bool {
    backend::is_too_many_open(e)
}

/// Identity of a process that cannot be confused with a later process reusing its pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The OS process id.
    pub pid: u32,
    /// Start time in platform units (Linux: clock ticks since boot; macOS: microseconds since
    /// the epoch; Windows: FILETIME). Zero if unknown.
    pub start_time: u64,
}

/// What is known of a process recorded earlier as a [`ProcessId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Running, and it is the same process (start time matches).
    Alive,
    /// Gone, or the pid now belongs to a different process.
    Dead,
    /// Cannot tell (no permission to inspect it, or no start time was recorded).
    Unknown,
}

/// Process identity and liveness: the contract of [`Os`].
pub trait Processes {
    /// The calling process.
    fn current_process() -> ProcessId;
    /// Whether `process` is still running (pid and start time both match). A process that
    /// has ended but not been reaped yet (a zombie) is [`Liveness::Dead`].
    fn liveness(process: ProcessId) -> Liveness;
    /// Whether some running process has this pid, whatever its start time (zombies do not
    /// count). For callers that know a pid but not yet its start time.
    fn process_exists(pid: u32) -> bool;
}

mod sddl;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod file_conformance;
#[cfg(test)]
mod sync_conformance;
