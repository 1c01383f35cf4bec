//! `shmwire demo`: the classic writer/reader example, run for real and narrated.
//!
//! The parent starts two copies of this executable: a writer, which creates a segment and
//! puts a text message into it, then sends a bitmap file through a channel; and a reader,
//! which opens both by name and takes them out.
//!
//! The message goes the classic way: the two take turns through a flag word at the start of
//! the segment's payload (the "data written" / "data read" signals of the recipe). The file
//! goes through the SPSC channel `<segment>-file` with the protocol of `shmwire send` /
//! `shmwire recv` ([`crate::transfer`]): a header, 256 KiB chunks, a trailer with the xxh3
//! checksum, which the reader confirms only once the file is verified and saved.
//!
//! Payload layout of the demo segment (all offsets from the payload start):
//!
//! | offset | type        | meaning                                                  |
//! |--------|-------------|----------------------------------------------------------|
//! | 0      | `AtomicU32` | turn: see [`Turn`]                                      |
//! | 8      | `u64`       | length of the message at 64                              |
//! | 16     | `u64`       | xxh3-64 checksum of the message                          |
//! | 64     | bytes       | the message                                              |

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use indicatif::ProgressBar;
use shmwire::channel::{spsc, ChannelOptions};
use shmwire::{Liveness, OpenError, ProcessId, Segment};
use xxhash_rust::xxh3::xxh3_64;

use crate::cli::DemoArgs;
use crate::options;
use crate::transfer::{self, OutFile, Sink};
use crate::units;
use shmwire::channel::stream::{chunk_len, StreamHeader as Header};

const DATA: u64 = 64;
/// Room for the message.
const CAPACITY: u64 = 4096 - DATA;
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
const MESSAGE: &str = "Hello from the writer process! This text went through shared memory.";

/// Values of the turn word.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    MessageWritten = 1,
    MessageRead = 2,
}

/// The channel the file goes through.
fn file_channel(segment: &str) -> String {
    format!("{segment}-file")
}

fn channel_options() -> ChannelOptions {
    ChannelOptions::new().capacity(options::TRANSFER_CAPACITY)
}

pub(super) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    match args.role.as_deref() {
        None => parent(args.keep),
        Some("writer") => writer(
            args.segment.as_deref().context("--segment is required")?,
            args.file.as_deref().context("--file is required")?,
        ),
        Some("reader") => reader(
            args.segment.as_deref().context("--segment is required")?,
            args.file.as_deref().context("--file is required")?,
        ),
        Some(r) => bail!("unknown demo role {r:?}"),
    }
}

fn parent(keep: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let pid = std::process::id();
    let name = format!("shmwire-demo-{pid}");
    let dir = match &keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("shmwire-demo-{pid}")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let input = dir.join("input.bmp");
    let output = dir.join("output.bmp");
    let image = bitmap(640, 480);
    std::fs::write(&input, &image).with_context(|| format!("cannot write {}", input.display()))?;

    println!("shmwire demo: a writer and a reader process exchange a message through the named");
    println!(
        "shared-memory segment {name:?}, and a file through the channel {:?}.",
        file_channel(&name)
    );
    println!(
        "  the file: {} ({}, a 640x480 bitmap made for the demo, xxh3 {:016x})",
        input.display(),
        units::short(image.len() as u64),
        xxh3_64(&image)
    );
    println!();

    let exe = std::env::current_exe().context("cannot find the shmwire executable")?;
    let spawn = |role: &str, file: &Path| {
        Command::new(&exe)
            .args(["demo", "--role", role, "--segment", &name, "--file"])
            .arg(file)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the {role} process"))
    };
    let mut writer = spawn("writer", &input)?;
    let mut reader = match spawn("reader", &output) {
        Ok(r) => r,
        Err(e) => {
            let _ = writer.kill();
            return Err(e);
        }
    };
    let w = writer.wait()?;
    let r = reader.wait()?;
    // If a child died before cleaning up, do not leave the segment or channel behind.
    let _ = shmwire::SegmentOptions::new().remove(&name);
    let _ = shmwire::SegmentOptions::new().remove(&file_channel(&name));

    println!();
    let result = std::fs::read(&output).ok();
    let ok = w.success() && r.success() && result.as_deref() == Some(&image[..]);
    if ok {
        println!(
            "demo: success. The message and all {} bytes of the file arrived intact",
            image.len()
        );
        println!("      (checksums match); the segment and the channel are removed.");
    } else {
        println!("demo: FAILED (writer {w}, reader {r}); see the messages above.");
    }
    if keep.is_some() {
        println!("      files kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn say(role: &str, msg: &str) {
    println!("[{role:<6} pid {:>6}] {msg}", std::process::id());
}

fn turn(seg: &Segment) -> anyhow::Result<&AtomicU32> {
    seg.atomic_u32(0)
        .context("the demo segment has no turn word")
}

/// Waits until the turn word holds one of `want`; bounded, so a dead peer cannot hang us, and
/// if the peer's identity is known, a dead peer is noticed at once.
fn wait_for(
    flag: &AtomicU32,
    want: &[Turn],
    peer: &str,
    peer_id: Option<ProcessId>,
) -> anyhow::Result<Turn> {
    let deadline = Instant::now() + PEER_TIMEOUT;
    let mut spins = 0u32;
    loop {
        // ORDERING: Acquire — pairs with the peer's Release store of the turn word in
        // `post`, so the data it wrote before is visible to our reads after this.
        let v = flag.load(Ordering::Acquire);
        if let Some(t) = want.iter().find(|t| **t as u32 == v) {
            return Ok(*t);
        }
        if Instant::now() > deadline {
            bail!("the {peer} did not answer within {PEER_TIMEOUT:?}");
        }
        if let Some(id) = peer_id.filter(|_| spins % 64 == 63) {
            if shmwire::liveness(id) == Liveness::Dead {
                bail!("the {peer} (pid {}) died before it answered", id.pid);
            }
        }
        spins += 1;
        if spins < 1000 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Writes `data` (length and checksum first) and hands the turn over with `t`.
fn post(seg: &Segment, flag: &AtomicU32, data: &[u8], t: Turn) -> anyhow::Result<()> {
    seg.write_at(8, &(data.len() as u64).to_le_bytes())?;
    seg.write_at(16, &xxh3_64(data).to_le_bytes())?;
    seg.write_at(DATA, data)?;
    // ORDERING: Release — publishes length, checksum and data written above; pairs with the
    // Acquire load in the peer's `wait_for`.
    flag.store(t as u32, Ordering::Release);
    Ok(())
}

/// Reads the length, checksum and data the peer posted. The length is untrusted.
fn take(seg: &Segment) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut word = [0u8; 8];
    seg.read_at(8, &mut word)?;
    let len = u64::from_le_bytes(word);
    ensure!(
        len <= CAPACITY,
        "the peer announced {len} bytes, more than the segment holds"
    );
    seg.read_at(16, &mut word)?;
    let sum = u64::from_le_bytes(word);
    let mut data = vec![0u8; len as usize];
    seg.read_at(DATA, &mut data)?;
    Ok((data, sum))
}

fn writer(name: &str, file: &Path) -> anyhow::Result<ExitCode> {
    const ME: &str = "writer";
    let seg = Segment::create(name, DATA + CAPACITY)?;
    say(
        ME,
        &format!(
            "created segment {name:?}: {} payload after a 4 KiB header, owner-only",
            units::size(seg.len())
        ),
    );
    let flag = turn(&seg)?;

    post(&seg, flag, MESSAGE.as_bytes(), Turn::MessageWritten)?;
    say(
        ME,
        &format!(
            "wrote a message ({} bytes) and raised the 'data written' flag",
            MESSAGE.len()
        ),
    );
    wait_for(flag, &[Turn::MessageRead], "reader", None)?;
    say(ME, "the reader raised 'data read'");

    let chan = file_channel(name);
    let mut tx = spsc::Sender::open(&chan, &channel_options())?;
    let chunk = chunk_len(tx.capacity(), tx.message_size());
    say(
        ME,
        &format!(
            "opened SPSC channel {chan:?} as its sender: a {} ring, {} messages",
            units::short(tx.capacity()),
            units::short(chunk as u64)
        ),
    );
    let mut input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let header = Header {
        len: Some(input.metadata()?.len()),
        name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let what = file.display().to_string();
    let done = transfer::send(
        &mut tx,
        &mut input,
        &what,
        &header,
        Some(PEER_TIMEOUT),
        &ProgressBar::hidden(),
    )?;
    say(
        ME,
        &format!(
            "sent {what} ({}) in {} messages, xxh3 {:016x}; the reader confirmed it",
            units::short(done.bytes),
            done.messages,
            done.xxh3
        ),
    );
    say(
        ME,
        "done: dropping the segment removes it; the channel goes with its last endpoint",
    );
    Ok(ExitCode::SUCCESS)
}

fn reader(name: &str, out: &Path) -> anyhow::Result<ExitCode> {
    const ME: &str = "reader";
    // The writer may not have created it yet: retry "not found" for a while.
    let deadline = Instant::now() + PEER_TIMEOUT;
    let seg = loop {
        match Segment::open(name) {
            Ok(s) => break s,
            Err(OpenError::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e.into()),
        }
    };
    let info = seg
        .info()
        .context("the demo segment has no header")?
        .clone();
    say(
        ME,
        &format!(
            "opened {name:?} by name: shmwire header v{}, {} payload, created by pid {}",
            info.version,
            units::size(info.size),
            info.creator.pid
        ),
    );
    let flag = turn(&seg)?;

    let writer = Some(info.creator);
    wait_for(flag, &[Turn::MessageWritten], "writer", writer)?;
    let (msg, sum) = take(&seg)?;
    ensure!(xxh3_64(&msg) == sum, "the message is corrupted");
    say(
        ME,
        &format!("got the message: {:?}", String::from_utf8_lossy(&msg)),
    );
    // ORDERING: Release — the writer's Acquire in `wait_for` then knows we are done reading
    // the message (it may drop the segment).
    flag.store(Turn::MessageRead as u32, Ordering::Release);

    let chan = file_channel(name);
    let mut rx = spsc::Receiver::open(&chan, &channel_options())?;
    say(ME, &format!("opened channel {chan:?} as its receiver"));
    let mut sink = Sink::File(OutFile::create(out)?);
    transfer::recv(
        &mut rx,
        false,
        &mut sink,
        Some(PEER_TIMEOUT),
        &ProgressBar::hidden(),
        // The writer has not attached to the channel yet: watch it by its pid + start time.
        &mut || {
            (shmwire::liveness(info.creator) == Liveness::Dead).then(|| {
                format!(
                    "the writer (pid {}) died before it answered",
                    info.creator.pid
                )
            })
        },
        &mut |done| {
            say(
                ME,
                &format!(
                    "got {} in {} messages with xxh3 {:016x}: matches the trailer; saved as {}",
                    units::short(done.bytes),
                    done.messages,
                    done.xxh3,
                    out.display()
                ),
            )
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A 24-bit BMP of a colour gradient: the "bitmap file" of the classic demo.
fn bitmap(width: u32, height: u32) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let pixels = row * height;
    let mut v = Vec::with_capacity(54 + pixels as usize);
    v.extend_from_slice(b"BM");
    v.extend_from_slice(&(54 + pixels).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&54u32.to_le_bytes());
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&width.to_le_bytes());
    v.extend_from_slice(&height.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&24u16.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&pixels.to_le_bytes());
    v.extend_from_slice(&[0u8; 16]);
    for y in 0..height {
        for x in 0..width {
            let r = (x * 255 / width.max(1)) as u8;
            let g = (y * 255 / height.max(1)) as u8;
            let b = ((x ^ y) & 0xff) as u8;
            v.extend_from_slice(&[b, g, r]);
        }
        v.resize(v.len() + (row - width * 3) as usize, 0);
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bitmap_is_a_well_formed_bmp() {
        let b = super::bitmap(3, 2); // rows of 9 bytes padded to 12
        assert_eq!(&b[..2], b"BM");
        assert_eq!(b.len(), 54 + 12 * 2);
        assert_eq!(
            u32::from_le_bytes(b[2..6].try_into().unwrap()) as usize,
            b.len()
        );
    }
}
