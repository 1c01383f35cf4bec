//! `shmwire read NAME [--offset N] [--len N] [--out F] [--hex]`.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::ReadArgs;

const CHUNK: usize = 1 << 20;

pub fn run(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = super::options(&args.target)
        .raw(args.raw)
        .read_only(true)
        .open(name)?;
    if args.offset > seg.len() {
        bail!(
            "offset {} is past the end of segment {name:?} ({} bytes)",
            args.offset,
            seg.len()
        );
    }
    let available = seg.len() - args.offset;
    let len = match args.len {
        Some(l) if l > available => bail!(
            "{l} bytes at offset {} do not fit in segment {name:?} of {} bytes",
            args.offset,
            seg.len()
        ),
        Some(l) => l,
        None => available,
    };
    let to_terminal = args.out.is_none() && io::stdout().is_terminal();
    // To a terminal without --len, stop at the last non-zero byte: a 1 MiB segment holding
    // "hello" shows "hello", not a screenful of NULs.
    let trim = to_terminal && args.len.is_none() && !args.hex;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut done = 0u64;
    let mut pending_zeros = 0u64;
    let mut hex = HexDump::new(args.offset);
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        seg.read_at(args.offset + done, chunk)?;
        if args.hex {
            hex.write(&mut out, chunk)?;
        } else if trim {
            // Hold back runs of zeros until something non-zero follows them.
            let last = chunk.iter().rposition(|&b| b != 0);
            match last {
                Some(i) => {
                    write_zeros(&mut out, pending_zeros)?;
                    out.write_all(&chunk[..=i])?;
                    pending_zeros = (n - i - 1) as u64;
                }
                None => pending_zeros += n as u64,
            }
        } else {
            out.write_all(chunk)?;
        }
        done += n as u64;
    }
    if args.hex {
        hex.finish(&mut out)?;
    }
    out.flush()?;
    if trim && pending_zeros > 0 {
        if pending_zeros != len {
            println!();
        }
        eprintln!(
            "({pending_zeros} trailing zero bytes not shown; --len or --out gives every byte)"
        );
    }
    if let Some(p) = &args.out {
        eprintln!(
            "read {len} bytes from segment {name:?} into {}",
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_zeros(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    let zeros = [0u8; 4096];
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// `xxd`-style dump: `00000000: 6865 6c6c 6f00 ...  hello...`.
struct HexDump {
    offset: u64,
    line: Vec<u8>,
}

impl HexDump {
    fn new(offset: u64) -> Self {
        HexDump {
            offset,
            line: Vec::with_capacity(16),
        }
    }

    fn write(&mut self, out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
        for &b in data {
            self.line.push(b);
            if self.line.len() == 16 {
                self.flush_line(out)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.line.is_empty() {
            self.flush_line(out)?;
        }
        Ok(())
    }

    fn flush_line(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut s = format!("{:08x}:", self.offset);
        for (i, b) in self.line.iter().enumerate() {
            if i % 2 == 0 {
                s.push(' ');
            }
            s.push_str(&format!("{b:02x}"));
        }
        let width = 9 + 40;
        while s.len() < width {
            s.push(' ');
        }
        s.push_str("  ");
        s.extend(self.line.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        writeln!(out, "{s}")?;
        self.offset += self.line.len() as u64;
        self.line.clear();
        Ok(())
    }
}
