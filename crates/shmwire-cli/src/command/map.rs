//! `shmwire map FILE [--offset N] [--len N] [--out F] [--window SIZE]`: any range of any file,
//! read through one mapped window at a time, so memory stays bounded whatever the file's size.

use std::fs::File;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use shmwire::{FileAccess, FileOpenError, MappedFile, WindowedReader};

use crate::cli::MapArgs;
use crate::exit::No;

/// Bytes copied per step (the buffer between the window and the output).
const CHUNK: u64 = 1 << 20;

pub(super) fn run(args: MapArgs) -> anyhow::Result<ExitCode> {
    let path = &args.file;
    if let Some(out) = &args.out {
        // Creating the output would truncate the input before it is read.
        if let (Ok(a), Ok(b)) = (std::fs::canonicalize(path), std::fs::canonicalize(out)) {
            if a == b {
                bail!("--out {} is the file being read", out.display());
            }
        }
    }
    let file = match MappedFile::open(path, FileAccess::ReadOnly) {
        // A missing file is a plain "no" (exit status 1).
        Err(e @ FileOpenError::NotFound { .. }) => return Err(No(e.to_string()).into()),
        r => r?,
    };
    let mut reader = WindowedReader::with_window_size(file, args.window);
    let size = reader.len()?;
    if args.offset > size {
        bail!(
            "offset {} is past the end of {} ({size} bytes)",
            args.offset,
            path.display()
        );
    }
    let available = size - args.offset;
    let len = match args.len {
        Some(l) if l > available => bail!(
            "{l} bytes at offset {} are past the end of {} ({size} bytes)",
            args.offset,
            path.display()
        ),
        Some(l) => l,
        None => available,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(io::BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::stdout().lock()),
    };
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK) as usize;
        // Fails with a message naming the file if it shrinks while we read it.
        reader.read_exact_at(args.offset + done, &mut buf[..n])?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    out.flush()?;
    if let Some(p) = &args.out {
        eprintln!(
            "copied {} at offset {} of {} into {}",
            crate::units::size(len),
            args.offset,
            path.display(),
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
