//! `shmwire read NAME [--offset N] [--len N] [--out F] [--hex | --encoding utf8|utf16le]`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::{Encoding, ReadArgs};
use crate::options;

const CHUNK: usize = 1 << 20;

pub(super) fn run(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = options::segment(args.target.namespace)
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
    let utf16 = args.encoding == Encoding::Utf16le;
    if utf16 && len % 2 != 0 {
        bail!(
            "{len} bytes at offset {} of segment {name:?} are not whole UTF-16 code units (2 \
             bytes each); give an even --len",
            args.offset
        );
    }
    let result = copy_out(&seg, &args, len, utf16);
    if result.is_err() {
        if let Some(p) = &args.out {
            // Nothing half-decoded is left behind.
            let _ = std::fs::remove_file(p);
        }
    }
    result?;
    if let Some(p) = &args.out {
        eprintln!(
            "read {len} bytes from segment {name:?} into {}",
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies `len` bytes from `args.offset` to stdout or `args.out`: as they are, as a hex dump,
/// or decoded from UTF-16LE.
fn copy_out(seg: &shmwire::Segment, args: &ReadArgs, len: u64, utf16: bool) -> anyhow::Result<()> {
    let name = seg.name().as_str();
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
    let mut decoder = Utf16Decoder::default();
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let raw = &mut buf[..n];
        seg.read_at(args.offset + done, raw)?;
        // CHUNK and `len` are even, so every chunk holds whole code units.
        let chunk: Cow<'_, [u8]> = if utf16 {
            Cow::Owned(decoder.decode(raw, args.offset + done, name)?)
        } else {
            Cow::Borrowed(raw)
        };
        let n = chunk.len();
        if args.hex {
            hex.write(&mut out, &chunk)?;
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
            out.write_all(&chunk)?;
        }
        done += raw.len() as u64;
    }
    decoder.finish(name)?;
    if args.hex {
        hex.finish(&mut out)?;
    }
    out.flush()?;
    // Zero bytes held back: in UTF-16 each was a 2-byte NUL code unit of the segment.
    let pending_zeros = if utf16 {
        2 * pending_zeros
    } else {
        pending_zeros
    };
    if trim && pending_zeros > 0 {
        if pending_zeros != len {
            println!();
        }
        eprintln!(
            "({pending_zeros} trailing zero bytes not shown; --len or --out gives every byte)"
        );
    }
    Ok(())
}

/// UTF-16LE to UTF-8, chunk by chunk: a surrogate pair may straddle two chunks.
#[derive(Debug, Default)]
struct Utf16Decoder {
    /// A high surrogate that ended the previous chunk, and its payload offset.
    pending: Option<(u16, u64)>,
}

impl Utf16Decoder {
    /// `bytes` (whole code units), found at payload offset `at`, as UTF-8.
    fn decode(&mut self, bytes: &[u8], at: u64, name: &str) -> anyhow::Result<Vec<u8>> {
        let mut units = Vec::with_capacity(bytes.len() / 2 + 1);
        let start = match self.pending.take() {
            Some((unit, offset)) => {
                units.push(unit);
                offset
            }
            None => at,
        };
        units.extend(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]])),
        );
        if let Some(&last) = units.last() {
            if (0xD800..0xDC00).contains(&last) {
                // May pair with the next chunk's first unit; `finish` says if none came.
                units.pop();
                self.pending = Some((last, start + 2 * units.len() as u64));
            }
        }
        let mut out = String::with_capacity(units.len());
        let mut offset = start;
        for c in char::decode_utf16(units.iter().copied()) {
            match c {
                Ok(c) => {
                    out.push(c);
                    offset += 2 * c.len_utf16() as u64;
                }
                Err(e) => return Err(invalid(name, offset, e.unpaired_surrogate())),
            }
        }
        Ok(out.into_bytes())
    }

    /// Fails if the text ended on the first half of a surrogate pair.
    fn finish(&mut self, name: &str) -> anyhow::Result<()> {
        match self.pending.take() {
            Some((unit, offset)) => Err(invalid(name, offset, unit)),
            None => Ok(()),
        }
    }
}

fn invalid(name: &str, offset: u64, unit: u16) -> anyhow::Error {
    anyhow::anyhow!(
        "segment {name:?} does not hold UTF-16LE text: an unpaired surrogate {unit:#06x} at \
         offset {offset} (--hex shows the bytes)"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn le(units: &[u16]) -> Vec<u8> {
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn a_surrogate_pair_split_between_chunks_decodes() {
        // "a🎉b": 'a', D83C DF89, 'b'; the chunk boundary falls inside the pair.
        let bytes = le(&[0x61, 0xD83C, 0xDF89, 0x62]);
        let mut d = Utf16Decoder::default();
        let mut out = d.decode(&bytes[..4], 100, "n").unwrap();
        assert_eq!(out, b"a");
        out.extend(d.decode(&bytes[4..], 104, "n").unwrap());
        d.finish("n").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a🎉b");
    }

    #[test]
    fn unpaired_surrogates_are_reported_at_their_offset() {
        let mut d = Utf16Decoder::default();
        let e = d.decode(&le(&[0x61, 0xDC00, 0x62]), 10, "n").unwrap_err();
        assert!(e.to_string().contains("0xdc00 at offset 12"), "{e}");
        // A high surrogate ending one chunk, not followed by a low one in the next.
        let mut d = Utf16Decoder::default();
        assert_eq!(d.decode(&le(&[0x61, 0xD800]), 0, "n").unwrap(), b"a");
        let e = d.decode(&le(&[0x62]), 4, "n").unwrap_err();
        assert!(e.to_string().contains("0xd800 at offset 2"), "{e}");
        // ... or by nothing at all.
        let mut d = Utf16Decoder::default();
        d.decode(&le(&[0xD800]), 6, "n").unwrap();
        let e = d.finish("n").unwrap_err();
        assert!(e.to_string().contains("0xd800 at offset 6"), "{e}");
    }
}
