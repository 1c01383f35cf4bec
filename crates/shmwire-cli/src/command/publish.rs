//! `shmwire pub NAME [--subscribers N]`: each line of stdin becomes a message on broadcast
//! channel NAME.

use std::io::{self, BufRead};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shmwire::channel::{broadcast, RecvTimeoutError};

use crate::cli::PubArgs;
use crate::exit::No;
use crate::{options, terminal};

pub(super) fn run(args: PubArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let opts = options::broadcast(args.target.namespace, &args.shape);
    let mut publisher = broadcast::Publisher::open(name, &opts)?;
    if args.subscribers > 0 {
        wait_for_subscribers(&publisher, args.subscribers, args.wait.timeout)?;
    }
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut published = 0u64;
    loop {
        line.clear();
        if stdin
            .read_until(b'\n', &mut line)
            .context("cannot read stdin")?
            == 0
        {
            break;
        }
        publisher
            .send(strip_newline(&line))
            .with_context(|| format!("cannot publish line {}", published + 1))?;
        published += 1;
    }
    let subscribers = publisher.subscribers();
    terminal::note(&format!(
        "published {published} messages on channel {name:?}; {subscribers} subscriber{} \
         attached at the end",
        if subscribers == 1 { "" } else { "s" }
    ));
    Ok(ExitCode::SUCCESS)
}

/// Waits until `n` subscribers are attached.
fn wait_for_subscribers(
    publisher: &broadcast::Publisher,
    n: usize,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    publisher
        .wait_for_subscribers(n, timeout.unwrap_or(Duration::MAX))
        .map_err(|e| match e {
            RecvTimeoutError::Timeout => No(format!(
                "timed out after {} waiting for {n} subscribers on channel {:?}",
                humantime::format_duration(timeout.unwrap_or_default()),
                publisher.name()
            ))
            .into(),
            e => anyhow::Error::from(e),
        })
}

/// The line without its `\n` or `\r\n`.
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    #[test]
    fn newlines_are_not_part_of_the_message() {
        use super::strip_newline;
        assert_eq!(strip_newline(b"a\n"), b"a");
        assert_eq!(strip_newline(b"a\r\n"), b"a");
        assert_eq!(strip_newline(b"last"), b"last");
        assert_eq!(strip_newline(b"\n"), b"");
    }
}
