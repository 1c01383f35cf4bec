//! Unix permission bits as a Windows security descriptor (SDDL). Pure string logic, compiled
//! and tested on every platform so the Windows semantics are checked even where Wine does not
//! enforce ACLs.

/// The SDDL for an object with `mode` permissions owned by `owner_sid` (a string SID).
///
/// `D:P` makes the DACL protected (no inherited entries). The owner always gets generic-all;
/// if any group/other read bit is set, `Everyone` (`WD`) gets generic-read, plus generic-write
/// if any group/other write bit is set. Without such bits only the owner has any access.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn sddl_for(mode: u32, owner_sid: &str) -> String {
    let mut sddl = format!("D:P(A;;GA;;;{owner_sid})");
    let others = mode & 0o077;
    let read = others & 0o044 != 0;
    let write = others & 0o022 != 0;
    match (read, write) {
        (_, true) => sddl.push_str("(A;;GRGW;;;WD)"),
        (true, false) => sddl.push_str("(A;;GR;;;WD)"),
        (false, false) => {}
    }
    sddl
}

#[cfg(test)]
mod tests {
    use super::sddl_for;

    #[test]
    fn owner_only_by_default() {
        assert_eq!(sddl_for(0o600, "S-1-5-21-1"), "D:P(A;;GA;;;S-1-5-21-1)");
        assert_eq!(sddl_for(0o700, "S-1-5-21-1"), "D:P(A;;GA;;;S-1-5-21-1)");
    }

    #[test]
    fn group_or_other_bits_open_it_to_everyone() {
        assert_eq!(sddl_for(0o640, "S"), "D:P(A;;GA;;;S)(A;;GR;;;WD)");
        assert_eq!(sddl_for(0o604, "S"), "D:P(A;;GA;;;S)(A;;GR;;;WD)");
        assert_eq!(sddl_for(0o666, "S"), "D:P(A;;GA;;;S)(A;;GRGW;;;WD)");
        assert_eq!(sddl_for(0o620, "S"), "D:P(A;;GA;;;S)(A;;GRGW;;;WD)");
    }
}
