//! `shmwire sub NAME [--from-next] [--count N] [--timeout T]`: prints the messages of
//! broadcast channel NAME, one per line.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shmwire::channel::{broadcast, RecvTimeoutError};

use crate::cli::SubArgs;
use crate::exit::No;
use crate::{options, terminal};

/// How often a waiting subscriber looks at its deadline and at Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

pub(super) fn run(args: SubArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let opts = options::broadcast(args.target.namespace, &args.shape);
    // Ctrl-C ends the subscription cleanly (status 0), detached from the channel.
    terminal::catch_interrupt()?;
    let mut sub = if args.from_next {
        broadcast::Subscriber::open_from_next(name, &opts)?
    } else {
        broadcast::Subscriber::open(name, &opts)?
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let mut printed = 0u64;
    while args.count.is_none_or(|c| printed < c) {
        let Some(msg) = next(&mut sub, &mut out, args.wait.timeout)? else {
            break;
        };
        out.write_all(&msg)?;
        out.write_all(b"\n")?;
        printed += 1;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The next message; `None` once the publisher is gone (and everything was received) or on
/// Ctrl-C. Output is flushed whenever we are about to wait.
fn next(
    sub: &mut broadcast::Subscriber,
    out: &mut dyn Write,
    timeout: Option<Duration>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let idle_since = Instant::now();
    let mut blocking = false;
    loop {
        let got = if blocking {
            if terminal::interrupted() {
                return Ok(None);
            }
            let slice = match timeout {
                None => SLICE,
                Some(t) => {
                    let left = t.saturating_sub(idle_since.elapsed());
                    if left.is_zero() {
                        return Err(No(format!(
                            "timed out after {} waiting for a message on channel {:?}",
                            humantime::format_duration(t),
                            sub.name()
                        ))
                        .into());
                    }
                    left.min(SLICE)
                }
            };
            sub.recv_timeout(slice)
        } else {
            // `Empty` comes as `Timeout`: then the blocking receive comes next.
            sub.try_recv().map_err(RecvTimeoutError::from)
        };
        match got {
            Ok(m) => return Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) if !blocking => {
                out.flush()?;
                blocking = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Lagged { missed, .. }) => terminal::note(&format!(
                "shmwire: note: missed {missed} messages on channel {:?} (this subscriber fell \
                 behind; a larger --capacity keeps more)",
                sub.name()
            )),
            Err(RecvTimeoutError::Disconnected { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}
