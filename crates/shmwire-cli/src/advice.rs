//! What the CLI tells people to do. Every `shmwire …` command printed as advice is built
//! here, so that it works when pasted into a shell as printed: `--global` where the segment
//! is in Windows' `Global\` namespace, the name quoted for the shell (POSIX single quotes;
//! on Windows double quotes), and `--` before a name that starts with `-`. The library
//! returns data (`shmwire::ShmSpace`); the sentences about it are written here.

use std::borrow::Cow;

use shmwire::{CreateError, ShmSpace};

/// `shmwire rm [--global] NAME`, ready to paste.
pub(crate) fn rm(name: &str, global: bool) -> String {
    command(&["rm"], name, global)
}

/// `shmwire ARGS... [--global] [--] NAME`, ready to paste into this platform's shell.
pub(crate) fn command(args: &[&str], name: &str, global: bool) -> String {
    let mut out = String::from("shmwire");
    for a in args {
        out.push(' ');
        out.push_str(&quote(a));
    }
    if global {
        out.push_str(" --global");
    }
    if name.starts_with('-') {
        out.push_str(" --");
    }
    out.push(' ');
    out.push_str(&quote(name));
    out
}

/// One argument quoted for the shell people use on this platform: [`quote_posix`] on Unix,
/// [`quote_windows`] on Windows.
pub(crate) fn quote(arg: &str) -> Cow<'_, str> {
    if cfg!(windows) {
        quote_windows(arg)
    } else {
        quote_posix(arg)
    }
}

/// For `sh`, `bash`, `zsh` and the like: as it is if it is made of characters no shell
/// treats specially, else in single quotes (inside which nothing is special), with each `'`
/// written as `'\''`.
pub(crate) fn quote_posix(arg: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return Cow::Borrowed(arg);
    }
    Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
}

/// For `cmd.exe` and PowerShell: as it is if it is made of characters neither treats
/// specially, else in double quotes, with `"` escaped as `\"` and backslashes doubled where
/// they precede a quote (the rules by which a Windows program splits its command line).
///
/// A name with `%` (cmd) or `$`, `` ` `` (PowerShell) in it cannot be quoted for both shells
/// at once: inside double quotes cmd still expands `%VAR%` and PowerShell `$var`. Such names
/// are quoted for the program's own parsing, which is what a pasted command reaches when no
/// variable of that name exists.
pub(crate) fn quote_windows(arg: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return Cow::Borrowed(arg);
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', 2 * backslashes + 1));
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                backslashes = 0;
            }
        }
        if c != '\\' {
            out.push(c);
        }
    }
    // Backslashes before the closing quote are doubled, or they would escape it.
    out.extend(std::iter::repeat_n('\\', 2 * backslashes));
    out.push('"');
    Cow::Owned(out)
}

/// Below this size a `/dev/shm` is called small: Docker gives containers 64 MiB by default,
/// and a few video frames or tensors need more. (The library's `NoSpace` message uses the
/// same threshold.)
pub(crate) const SMALL_SHM: u64 = 256 << 20;

/// A note for people when `/dev/shm` is small (below [`SMALL_SHM`]): how big it is and how to
/// raise it. `None` if it is not small. `shmwire ls` and `shmwire info` print it.
pub(crate) fn small_shm_note(space: &ShmSpace) -> Option<String> {
    if space.total >= SMALL_SHM {
        return None;
    }
    Some(format!(
        "{} is only {} ({} free), small as in a container (Docker's default is 64 MiB); raise \
         it with `docker run --shm-size=1g`, `mount -o remount,size=1G {path}` (as root), or \
         in Kubernetes an `emptyDir` volume with `medium: Memory` mounted on {path}",
        space.path,
        crate::units::short(space.total),
        crate::units::short(space.free),
        path = space.path,
    ))
}

/// On stderr, when `/dev/shm` is small (a container's 64 MiB, say): how big, how to raise it.
pub(crate) fn note_small_shm() {
    if let Ok(Some(space)) = shmwire::shm_space() {
        if let Some(note) = small_shm_note(&space) {
            eprintln!("note: {note}");
        }
    }
}

/// What to add to the one-line report of `err`: what the facts in it mean and the commands
/// that help, if any.
pub(crate) fn for_error(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|e| match e.downcast_ref::<CreateError>()? {
            CreateError::NoSpace { space, size, .. } => {
                let mut hint = no_space_advice(space.as_ref(), *size);
                // Out of objects (tmpfs nr_inodes): removing some is the way out.
                if let Some(ShmSpace {
                    max_objects: Some(_),
                    free_objects: 0,
                    ..
                }) = space
                {
                    hint.push_str(
                        " (`shmwire ls` lists the segments; `shmwire gc` removes the abandoned ones)",
                    );
                }
                Some(hint)
            }
            CreateError::TooManyOpen { .. } => Some(
                "; drop segments no longer needed, or raise the limit of open files (`ulimit -n`)"
                    .into(),
            ),
            _ => None,
        })
        .filter(|hint| !hint.is_empty())
}

/// What the CLI says after a [`CreateError::NoSpace`]'s OS error: how full the filesystem is and
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

    #[test]
    fn posix_quoting_leaves_plain_names_alone_and_single_quotes_the_rest() {
        assert_eq!(quote_posix("frames-1.2_x:y@z"), "frames-1.2_x:y@z");
        assert_eq!(quote_posix("a b"), "'a b'");
        assert_eq!(quote_posix(""), "''");
        assert_eq!(quote_posix("it's"), r"'it'\''s'");
        assert_eq!(quote_posix("$HOME;rm -rf `x`"), "'$HOME;rm -rf `x`'");
        assert_eq!(quote_posix("*"), "'*'");
        assert_eq!(quote_posix("~x"), "'~x'");
        assert_eq!(quote_posix("ü"), "'ü'");
    }

    #[test]
    fn windows_quoting_follows_the_command_line_splitting_rules() {
        assert_eq!(quote_windows("frames-1"), "frames-1");
        assert_eq!(quote_windows("a b"), r#""a b""#);
        assert_eq!(quote_windows(""), r#""""#);
        assert_eq!(quote_windows(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote_windows(r"a\b"), r#""a\b""#);
        assert_eq!(quote_windows(r#"a\"b"#), r#""a\\\"b""#);
        assert_eq!(quote_windows(r"end\"), r#""end\\""#);
        assert_eq!(quote_windows("a,b"), r#""a,b""#);
        assert_eq!(quote_windows("it's"), r#""it's""#);
    }

    #[test]
    fn commands_carry_global_and_end_options_before_a_dash_name() {
        let q = |s: &str| quote(s).into_owned();
        assert_eq!(rm("frames", false), "shmwire rm frames");
        assert_eq!(rm("frames", true), "shmwire rm --global frames");
        assert_eq!(rm("a b", false), format!("shmwire rm {}", q("a b")));
        assert_eq!(rm("-x", true), "shmwire rm --global -- -x");
        assert_eq!(command(&["info"], "n", false), "shmwire info n");
    }

    #[test]
    fn docker_default_is_small_and_the_note_says_how_to_raise_it() {
        const MIB: u64 = 1 << 20;
        let space = |total, free| ShmSpace {
            path: "/dev/shm",
            total,
            free,
            max_objects: Some(1000),
            free_objects: 990,
            memory: Some(16 << 30),
        };
        let note = small_shm_note(&space(64 * MIB, 60 * MIB)).expect("64 MiB is small");
        assert_eq!(
            note,
            "/dev/shm is only 64 MiB (60 MiB free), small as in a container (Docker's default is \
             64 MiB); raise it with `docker run --shm-size=1g`, `mount -o remount,size=1G \
             /dev/shm` (as root), or in Kubernetes an `emptyDir` volume with `medium: Memory` \
             mounted on /dev/shm"
        );
        assert!(small_shm_note(&space(SMALL_SHM - 1, 0)).is_some());
        assert_eq!(small_shm_note(&space(SMALL_SHM, 0)), None);
    }
}

#[cfg(test)]
mod space_tests {
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
    fn too_many_open_files_and_no_space_get_advice_once_after_the_facts() {
        let e = anyhow::Error::from(shmwire::CreateError::TooManyOpen {
            name: "x".into(),
            source: std::io::Error::from_raw_os_error(24),
        })
        .context("cannot create x");
        let hint = super::for_error(&e).unwrap();
        assert!(hint.contains("`ulimit -n`"), "{hint}");
        let e = anyhow::Error::from(shmwire::CreateError::NoSpace {
            name: "x".into(),
            size: 100 * MIB,
            space: Some(space(64 * MIB, 54 * MIB)),
            source: std::io::Error::from_raw_os_error(28),
        });
        assert!(
            !e.to_string().contains("No space"),
            "the message does not repeat its source"
        );
        let hint = super::for_error(&e).unwrap();
        assert!(
            hint.starts_with("; /dev/shm has 54 MiB free of 64 MiB"),
            "{hint}"
        );
        assert_eq!(super::for_error(&anyhow::anyhow!("other")), None);
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
