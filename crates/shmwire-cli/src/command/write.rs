//! `shmwire write NAME [--offset N] (TEXT | --file F | -)`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::WriteArgs;

pub fn run(args: WriteArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = super::options(&args.target).raw(args.raw).open(name)?;
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
            let mut data = Vec::new();
            std::io::stdin()
                .lock()
                .take(seg.len().saturating_add(1))
                .read_to_end(&mut data)
                .context("cannot read stdin")?;
            (data, "stdin".to_owned())
        }
        (Some(t), None) => (t.clone().into_bytes(), "text".to_owned()),
        (None, None) => unreachable!("clap requires TEXT or --file"),
    };
    check_fits(&seg, args.offset, data.len() as u64)?;
    seg.write_at(args.offset, &data)?;
    println!(
        "wrote {} bytes ({source}) to segment {name:?} at offset {}",
        data.len(),
        args.offset
    );
    Ok(ExitCode::SUCCESS)
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
