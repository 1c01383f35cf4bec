//! Segment names: validated once, then used verbatim as the OS object name.

use std::fmt;

use shmwire_platform::{DERIVED_MARKER, NAME_MAX};

/// A valid segment name.
///
/// The name is used verbatim as the OS name: `frames` is `/frames` for POSIX `shm_open` (the
/// file `/dev/shm/frames` on Linux) and `Local\frames` (or `Global\frames`) on Windows, so a
/// program that does not speak shmwire finds the same object under the same name.
///
/// A name is never altered; one that the platform cannot use verbatim is rejected:
/// empty; longer than [`Name::MAX_LEN`] bytes; containing `/` or `\` (path and namespace
/// separators), NUL or another control character; `.` or `..`; or containing `~shmwire-`,
/// which marks the objects shmwire derives from a name for its own use.
///
/// # Examples
///
/// ```
/// use shmwire::Name;
/// assert!(Name::new("camera-frames").is_ok());
/// assert!(Name::new("a/b").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Longest valid name on this platform, in bytes: 254 on Linux, 30 on macOS (`PSHMNAMLEN`
    /// is 31 including the `/`), 200 on Windows (room for `Global\` and derived suffixes).
    pub const MAX_LEN: usize = NAME_MAX;

    /// Checks `name` and wraps it.
    ///
    /// # Errors
    ///
    /// [`NameError`] says which rule the name breaks.
    pub fn new(name: &str) -> Result<Name, NameError> {
        let problem = if name.is_empty() {
            Some(NameProblem::Empty)
        } else if name.len() > NAME_MAX {
            Some(NameProblem::TooLong {
                len: name.len(),
                max: NAME_MAX,
            })
        } else if name == "." || name == ".." {
            Some(NameProblem::Dots)
        } else if let Some(c) = name
            .chars()
            .find(|&c| c == '/' || c == '\\' || c.is_control())
        {
            Some(NameProblem::BadChar(c))
        } else if name.contains(DERIVED_MARKER) {
            Some(NameProblem::Reserved)
        } else {
            None
        };
        match problem {
            None => Ok(Name(name.to_owned())),
            Some(problem) => Err(NameError {
                name: name.to_owned(),
                problem,
            }),
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name that cannot be used; see [`Name`] for the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid segment name {name:?}: {problem}")]
pub struct NameError {
    /// The rejected name.
    pub name: String,
    /// Which rule it breaks.
    pub problem: NameProblem,
}

/// Which naming rule a [`NameError`] is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    #[error("a name cannot be empty")]
    Empty,
    /// Longer than the platform allows.
    #[error("it is {len} bytes long, and this platform allows at most {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// [`Name::MAX_LEN`].
        max: usize,
    },
    /// `.` or `..`.
    #[error("'.' and '..' are not names")]
    Dots,
    /// A separator or control character.
    #[error("it contains {0:?}; names cannot contain '/', '\\' or control characters (shmwire adds the platform's prefix itself)")]
    BadChar(char),
    /// Contains the marker of derived objects.
    #[error("'~shmwire-' is reserved for the objects shmwire derives from a name")]
    Reserved,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_are_kept_verbatim() {
        for n in [
            "a",
            "ShareMemory",
            "cam.frames-0",
            "ünïcode",
            "with space",
            "x".repeat(NAME_MAX).as_str(),
        ] {
            assert_eq!(Name::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn bad_names_say_why() {
        type Check = fn(&NameProblem) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |p| matches!(p, NameProblem::Empty)),
            ("a/b", |p| matches!(p, NameProblem::BadChar('/'))),
            ("/a", |p| matches!(p, NameProblem::BadChar('/'))),
            ("Global\\a", |p| matches!(p, NameProblem::BadChar('\\'))),
            ("a\0b", |p| matches!(p, NameProblem::BadChar('\0'))),
            ("a\nb", |p| matches!(p, NameProblem::BadChar('\n'))),
            (".", |p| matches!(p, NameProblem::Dots)),
            ("..", |p| matches!(p, NameProblem::Dots)),
            ("x~shmwire-rm", |p| matches!(p, NameProblem::Reserved)),
        ];
        for (n, ok) in cases {
            let e = Name::new(n).unwrap_err();
            assert!(ok(&e.problem), "{n:?}: {e}");
            assert!(e.to_string().starts_with("invalid segment name"), "{e}");
        }
        let long = "x".repeat(NAME_MAX + 1);
        assert!(matches!(
            Name::new(&long).unwrap_err().problem,
            NameProblem::TooLong { .. }
        ));
    }
}
