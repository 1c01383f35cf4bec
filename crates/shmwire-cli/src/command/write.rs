//! `shmwire write NAME [--offset N] [--encoding utf8|utf16le] (TEXT | --file F | -)`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Encoding, WriteArgs};
use crate::options;

pub(super) fn run(args: WriteArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = options::segment(args.target.namespace)
        .raw(args.raw)
        .open(name)?;
    let (data, source) = match (&args.text, &args.file) {
        (_, Some(path)) => {
            // Refuse before reading a file that cannot fit.
            let len = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            check_fits(&seg, args.offset, len)?;
            let data =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (data, path.display().to_string())
        }
        (Some(t), None) if t == "-" => {
            // UTF-16 takes at most twice the bytes of UTF-8 (and at least 2/3 of them).
            let limit = match args.encoding {
                Encoding::Utf8 => seg.len().saturating_add(1),
                Encoding::Utf16le => (seg.len() / 2).saturating_mul(3).saturating_add(4),
            };
            let mut data = Vec::new();
            std::io::stdin()
                .lock()
                .take(limit)
                .read_to_end(&mut data)
                .context("cannot read stdin")?;
            let data = match args.encoding {
                Encoding::Utf8 => data,
                Encoding::Utf16le => {
                    let text = String::from_utf8(data).map_err(|e| {
                        anyhow::anyhow!(
                            "stdin is not UTF-8 text (invalid byte at offset {}), so it cannot \
                             be converted to UTF-16; nothing was written",
                            e.utf8_error().valid_up_to()
                        )
                    })?;
                    utf16le(&text)
                }
            };
            (data, "stdin".to_owned())
        }
        (Some(t), None) => {
            let data = match args.encoding {
                Encoding::Utf8 => t.clone().into_bytes(),
                Encoding::Utf16le => utf16le(t),
            };
            (data, "text".to_owned())
        }
        (None, None) => unreachable!("clap requires TEXT or --file"),
    };
    check_fits(&seg, args.offset, data.len() as u64)?;
    seg.write_at(args.offset, &data)?;
    let encoding = match args.encoding {
        Encoding::Utf8 => "",
        Encoding::Utf16le => ", as UTF-16LE",
    };
    println!(
        "wrote {} bytes ({source}{encoding}) to segment {name:?} at offset {}",
        data.len(),
        args.offset
    );
    Ok(ExitCode::SUCCESS)
}

/// `text` as UTF-16 little-endian bytes, without BOM or terminator.
fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn check_fits(seg: &shmwire::Segment, offset: u64, len: u64) -> anyhow::Result<()> {
    if offset.checked_add(len).is_none_or(|end| end > seg.len()) {
        anyhow::bail!(
            "{len} bytes at offset {offset} do not fit in segment {:?} of {} bytes; nothing was written",
            seg.name().as_str(),
            seg.len()
        );
    }
    Ok(())
}
