//! The room for segments: how big `/dev/shm` is, and what [`crate::CreateError::NoSpace`] says
//! when it is too full. The advice is built by pure functions of a [`ShmSpace`], so it is
//! unit-tested here without filling anything. (Notes for people about a small `/dev/shm` are
//! the CLI's; so will this advice be once `NoSpace`'s message carries only the facts.)

use std::io;

pub use shmwire_platform::ShmSpace;

/// Below this size a `/dev/shm` is called small: Docker gives containers 64 MiB by default,
/// and a few video frames or tensors need more.
const SMALL_SHM: u64 = 256 << 20;

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

/// What [`crate::CreateError::NoSpace`] says after the OS error: how full the filesystem is and
/// how to make room for `requested` more bytes. Empty when nothing is known (Windows, macOS,
/// an unlimited `/dev/shm`).
pub(crate) fn no_space_advice(space: Option<&ShmSpace>, requested: u64) -> String {
    let Some(s) = space else {
        return String::new();
    };
    if let (Some(max), 0) = (s.max_objects, s.free_objects) {
        return format!(
            "; {} holds as many objects as it may ({max}, its nr_inodes limit): remove segments that are no longer needed or remount it with a larger nr_inodes",
            s.path
        );
    }
    let mut out = format!(
        "; {} has {} free of {}",
        s.path,
        human(s.free),
        human(s.total)
    );
    if let Some(memory) = s.memory.filter(|&m| requested > m) {
        out += &format!(
            ", and this machine has {} of memory (RAM + swap) in all, less than the segment needs: no setting makes room for it; use a smaller segment, or a mapped file",
            human(memory)
        );
        return out;
    }
    if requested <= s.free {
        out += ", enough for this segment: the memory limit (of this container's cgroup, or of the machine) was reached";
        return out;
    }
    if s.total < SMALL_SHM {
        out += " (small, as in a container: Docker's default is 64 MiB)";
    }
    let needed = s.total.saturating_sub(s.free).saturating_add(requested);
    out += &format!(
        ": remove segments that are no longer needed, or make it larger (at least {}) with {}",
        human(needed),
        how_to_raise(s.path, needed.div_ceil(1 << 30).max(1))
    );
    out
}

/// The three usual ways to give `/dev/shm` `gib` GiB.
fn how_to_raise(path: &str, gib: u64) -> String {
    format!(
        "`docker run --shm-size={gib}g`, `mount -o remount,size={gib}G {path}` (as root), or in Kubernetes an `emptyDir` volume with `medium: Memory` mounted on {path}"
    )
}

/// `512 bytes`, `64 MiB`, `23.5 GiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn space(total: u64, free: u64) -> ShmSpace {
        ShmSpace {
            path: "/dev/shm",
            total,
            free,
            max_objects: Some(1000),
            free_objects: 990,
            memory: Some(16 * GIB),
        }
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(1024), "1 KiB");
        assert_eq!(human(64 * MIB), "64 MiB");
        assert_eq!(human(GIB + GIB / 2), "1.5 GiB");
        assert_eq!(human(100 << 40), "100 TiB");
        assert_eq!(human(u64::MAX), "16 EiB");
    }

    #[test]
    fn no_space_in_a_small_dev_shm_suggests_a_size_that_fits() {
        // 64 MiB with 10 used: 100 MiB more needs 110 MiB, rounded up to 1 GiB.
        let a = no_space_advice(Some(&space(64 * MIB, 54 * MIB)), 100 * MIB);
        assert_eq!(
            a,
            "; /dev/shm has 54 MiB free of 64 MiB (small, as in a container: Docker's default \
             is 64 MiB): remove segments that are no longer needed, or make it larger (at least \
             110 MiB) with `docker run --shm-size=1g`, `mount -o remount,size=1G /dev/shm` (as \
             root), or in Kubernetes an `emptyDir` volume with `medium: Memory` mounted on \
             /dev/shm"
        );
        // A large one: 8 GiB with 7 used, 3.5 GiB more needs 10.5 GiB: 11 GiB suggested.
        let a = no_space_advice(Some(&space(8 * GIB, GIB)), 3 * GIB + GIB / 2);
        assert!(
            a.starts_with("; /dev/shm has 1 GiB free of 8 GiB: remove"),
            "{a}"
        );
        assert!(a.contains("(at least 10.5 GiB)"), "{a}");
        assert!(a.contains("--shm-size=11g"), "{a}");
        assert!(a.contains("size=11G /dev/shm"), "{a}");
        assert!(!a.contains("Docker's default"), "{a}");
    }

    #[test]
    fn more_than_the_machine_has_is_not_a_setting_to_change() {
        let a = no_space_advice(Some(&space(8 * GIB, 8 * GIB)), 100 << 40);
        assert_eq!(
            a,
            "; /dev/shm has 8 GiB free of 8 GiB, and this machine has 16 GiB of memory (RAM + \
             swap) in all, less than the segment needs: no setting makes room for it; use a \
             smaller segment, or a mapped file"
        );
        // Unknown memory: the usual advice.
        let mut s = space(8 * GIB, 8 * GIB);
        s.memory = None;
        assert!(no_space_advice(Some(&s), 100 << 40).contains("--shm-size=102400g"));
    }

    #[test]
    fn room_enough_in_dev_shm_blames_the_memory_limit() {
        let a = no_space_advice(Some(&space(8 * GIB, 4 * GIB)), GIB);
        assert!(a.ends_with("enough for this segment: the memory limit (of this container's cgroup, or of the machine) was reached"), "{a}");
    }

    #[test]
    fn no_objects_left_is_about_nr_inodes_not_bytes() {
        let mut s = space(64 * MIB, 60 * MIB);
        s.free_objects = 0;
        assert_eq!(
            no_space_advice(Some(&s), 4096),
            "; /dev/shm holds as many objects as it may (1000, its nr_inodes limit): remove \
             segments that are no longer needed or remount it with a larger nr_inodes"
        );
        // Without an inode limit, a 0 count means nothing.
        s.max_objects = None;
        assert!(no_space_advice(Some(&s), 100 * MIB).contains("60 MiB free of 64 MiB"));
    }

    #[test]
    fn nothing_known_adds_nothing() {
        assert_eq!(no_space_advice(None, 1 << 40), "");
    }
}
