//! The limits a create can run into. Sections live in the paging file: no filesystem of
//! their own limits them, only the system commit limit (reported by `create`).

use std::io;

use windows_sys::Win32::Foundation::ERROR_TOO_MANY_OPEN_FILES;

use crate::ShmSpace;

pub(crate) fn is_too_many_open(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_TOO_MANY_OPEN_FILES as i32)
}

pub(crate) fn shm_space() -> io::Result<Option<ShmSpace>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_COMMITMENT_LIMIT};

    #[test]
    fn out_of_handles_is_recognized_and_nothing_else() {
        assert!(is_too_many_open(&io::Error::from_raw_os_error(
            ERROR_TOO_MANY_OPEN_FILES as i32
        )));
        for code in [ERROR_ACCESS_DENIED, ERROR_COMMITMENT_LIMIT] {
            assert!(!is_too_many_open(&io::Error::from_raw_os_error(
                code as i32
            )));
        }
        // Sections live in the paging file: no filesystem of their own to measure.
        assert_eq!(shm_space().unwrap(), None);
    }
}
