//! `shmwire rm NAME...`.

use std::process::ExitCode;

use shmwire::RemoveError;

use crate::cli::RmArgs;
use crate::options;

pub(super) fn run(args: RmArgs) -> anyhow::Result<ExitCode> {
    let opts = options::segment(args.namespace);
    let mut worst = 0u8;
    for name in &args.names {
        match opts.remove(name) {
            Ok(()) => println!("removed segment {name:?}"),
            Err(e) => {
                let code = if matches!(e, RemoveError::NotFound { .. }) {
                    1
                } else {
                    2
                };
                worst = worst.max(code);
                let mut line = format!("shmwire: {e}");
                if let Some(src) = std::error::Error::source(&e) {
                    line.push_str(&format!(": {src}"));
                }
                eprintln!("{line}");
            }
        }
    }
    Ok(ExitCode::from(worst))
}
