//! What the CLI tells people to do. Every `shmwire …` command printed as advice is built
//! here, so that it works when pasted into a shell as printed: `--global` where the segment
//! is in Windows' `Global\` namespace, the name quoted for the shell (POSIX single quotes;
//! on Windows double quotes), and `--` before a name that starts with `-`. The library
//! returns data (`shmwire::ShmSpace`); the sentences about it are written here.

use std::borrow::Cow;

use shmwire::{CreateError, ShmSpace};

/// `shmwire rm [--global] NAME`, ready to paste.
pub fn rm(name: &str, global: bool) -> String {
    command(&["rm"], name, global)
}

/// `shmwire ARGS... [--global] [--] NAME`, ready to paste into this platform's shell.
pub fn command(args: &[&str], name: &str, global: bool) -> String {
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
pub fn quote(arg: &str) -> Cow<'_, str> {
    if cfg!(windows) {
        quote_windows(arg)
    } else {
        quote_posix(arg)
    }
}

/// For `sh`, `bash`, `zsh` and the like: as it is if it is made of characters no shell
/// treats specially, else in single quotes (inside which nothing is special), with each `'`
/// written as `'\''`.
pub fn quote_posix(arg: &str) -> Cow<'_, str> {
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
pub fn quote_windows(arg: &str) -> Cow<'_, str> {
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
pub const SMALL_SHM: u64 = 256 << 20;

/// A note for people when `/dev/shm` is small (below [`SMALL_SHM`]): how big it is and how to
/// raise it. `None` if it is not small. `shmwire ls` and `shmwire info` print it.
pub fn small_shm_note(space: &ShmSpace) -> Option<String> {
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
pub fn note_small_shm() {
    if let Ok(Some(space)) = shmwire::shm_space() {
        if let Some(note) = small_shm_note(&space) {
            eprintln!("note: {note}");
        }
    }
}

/// What to add to the one-line report of `err`: the commands that help, if any.
pub fn for_error(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|e| match e.downcast_ref::<CreateError>() {
            // Out of objects (tmpfs nr_inodes): removing some is the way out.
            Some(CreateError::NoSpace {
                space:
                    Some(ShmSpace {
                        max_objects: Some(_),
                        free_objects: 0,
                        ..
                    }),
                ..
            }) => Some(
                " (`shmwire ls` lists the segments; `shmwire gc` removes the abandoned ones)"
                    .into(),
            ),
            _ => None,
        })
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
