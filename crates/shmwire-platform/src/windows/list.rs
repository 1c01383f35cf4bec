//! Enumerating named sections: `NtOpenDirectoryObject` + `NtQueryDirectoryObject` over the
//! session's `BaseNamedObjects` directory (the `Local\` namespace) and the machine's
//! `\BaseNamedObjects` (the `Global\` one). One entry per call: Wine 8 implements only that
//! mode (`STATUS_NOT_IMPLEMENTED` otherwise), and Windows supports it.
//!
//! # Safety
//!
//! The directory query writes an array of `OBJECT_DIRECTORY_INFORMATION` into our buffer,
//! ending with a zeroed entry; the strings it points to live in the same buffer. We read the
//! entries and copy their names out before the next call reuses the buffer, and stop at the
//! terminator or at the end of the buffer, whichever comes first.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::ptr::null_mut;

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{NtOpenDirectoryObject, NtQueryDirectoryObject};
use windows_sys::Win32::Foundation::{HANDLE, NTSTATUS, UNICODE_STRING};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::Threading::GetCurrentProcessId;

use super::OwnedHandle;
use crate::Namespace;

/// `OBJECT_DIRECTORY_INFORMATION` (not in windows-sys): one directory entry.
#[repr(C)]
struct ObjectDirectoryInformation {
    name: UNICODE_STRING,
    type_name: UNICODE_STRING,
}

const DIRECTORY_QUERY: u32 = 0x0001;
const STATUS_MORE_ENTRIES: NTSTATUS = 0x0000_0105;
const STATUS_NO_MORE_ENTRIES: NTSTATUS = 0x8000_001A_u32 as i32;
const STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022_u32 as i32;

fn nt_error(status: NTSTATUS, what: &str) -> io::Error {
    io::Error::other(format!(
        "{what} failed with NTSTATUS {:#010x}",
        status as u32
    ))
}

/// Reads a UNICODE_STRING that points into memory valid for the call.
///
/// # Safety
///
/// `s.Buffer` must point to `s.Length` bytes of initialized UTF-16 (or be null).
unsafe fn string(s: &UNICODE_STRING) -> String {
    if s.Buffer.is_null() {
        return String::new();
    }
    // SAFETY: the caller guarantees `Length` bytes at `Buffer` are valid UTF-16 code units.
    let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    String::from_utf16_lossy(units)
}

/// The sections (file mappings) in this session's `Local\` namespace and in the `Global\`
/// one, sorted by name, `Local\` first. In session 0 (services), or if the session cannot be
/// told, both namespaces are `\BaseNamedObjects`: its sections are listed once, as `Local\`.
pub(crate) fn section_names() -> io::Result<Vec<(Namespace, String)>> {
    let mut session = 0u32;
    // SAFETY: a writable u32; no other preconditions.
    let ok = unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) };
    let mut out: Vec<(Namespace, String)> = Vec::new();
    if ok == 0 || session == 0 {
        let names = sections_in("\\BaseNamedObjects")?;
        out.extend(names.into_iter().map(|n| (Namespace::Local, n)));
    } else {
        let local = sections_in(&format!("\\Sessions\\{session}\\BaseNamedObjects"))?;
        out.extend(local.into_iter().map(|n| (Namespace::Local, n)));
        // Listing Global\ needs only DIRECTORY_QUERY, which every user has; should it be
        // refused anyway, the session's own sections are still worth listing.
        match sections_in("\\BaseNamedObjects") {
            Ok(global) => out.extend(global.into_iter().map(|n| (Namespace::Global, n))),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| (&a.1, a.0 == Namespace::Global).cmp(&(&b.1, b.0 == Namespace::Global)));
    Ok(out)
}

/// Names of the sections in the object directory `path`.
fn sections_in(path: &str) -> io::Result<Vec<String>> {
    let mut wide: Vec<u16> = path.encode_utf16().collect();
    let name = UNICODE_STRING {
        Length: (wide.len() * 2) as u16,
        MaximumLength: (wide.len() * 2) as u16,
        Buffer: wide.as_mut_ptr(),
    };
    let attrs = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: null_mut(),
        ObjectName: &name,
        Attributes: 0,
        SecurityDescriptor: std::ptr::null(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut raw: HANDLE = null_mut();
    // SAFETY: `attrs` and the string it points to outlive the call; `raw` receives a handle
    // that `OwnedHandle` closes.
    let status = unsafe { NtOpenDirectoryObject(&mut raw, DIRECTORY_QUERY, &attrs) };
    if status == STATUS_ACCESS_DENIED {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("opening {path}: access denied"),
        ));
    }
    if status < 0 {
        return Err(nt_error(status, &format!("opening {path}")));
    }
    let dir = OwnedHandle(raw);

    let mut buf = vec![0u64; 1024]; // 8 KiB, 8-aligned: one entry and its two strings
    let bytes = (buf.len() * 8) as u32;
    let mut context = 0u32;
    let mut restart = true;
    let mut out = Vec::new();
    // Bounded: a directory with more than a million entries is not a directory we list.
    for _ in 0..1_000_000 {
        let mut returned = 0u32;
        // SAFETY: `buf` is writable for `bytes` bytes; `context`/`returned` are writable u32s.
        let status = unsafe {
            NtQueryDirectoryObject(
                dir.raw(),
                buf.as_mut_ptr().cast(),
                bytes,
                true,
                restart,
                &mut context,
                &mut returned,
            )
        };
        restart = false;
        if status == STATUS_NO_MORE_ENTRIES {
            break;
        }
        if status < 0 {
            return Err(nt_error(status, &format!("listing {path}")));
        }
        // SAFETY: `buf` is 8-aligned and larger than one entry, which the OS wrote at its start.
        let e = unsafe { &*buf.as_ptr().cast::<ObjectDirectoryInformation>() };
        // SAFETY: the OS points both strings into `buf` with their lengths (module docs).
        let (n, t) = unsafe { (string(&e.name), string(&e.type_name)) };
        if t == "Section" {
            out.push(n);
        }
        if status != STATUS_MORE_ENTRIES && status != 0 {
            break;
        }
    }
    out.sort();
    Ok(out)
}
