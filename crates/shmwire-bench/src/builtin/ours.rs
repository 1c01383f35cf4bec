//! shmwire's SPSC channel, copying and zero-copy (loans).

use std::io;

use shmwire::channel::{spsc, ChannelOptions, WaitStrategy};

use super::io_err;
use crate::transport::{tag_of, Class, Endpoint, Mode, Payload, Setup, Transport};

/// `spsc::Sender::send` / `spsc::Receiver::recv_into`.
#[derive(Debug)]
pub struct SpscCopy;

/// `spsc::Sender::loan` / `spsc::Receiver::recv_ref`, touching only the 8-byte tag.
#[derive(Debug)]
pub struct SpscLoan;

impl Transport for SpscCopy {
    fn id(&self) -> &'static str {
        "shmwire-spsc"
    }
    fn label(&self) -> &'static str {
        "shmwire spsc (copy)"
    }
    fn class(&self) -> Class {
        Class::Ours
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Spin, Mode::Block]
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (tx, rx) = open(setup, true)?;
        setup.spawn()?;
        Ok(Box::new(Copy::new(tx, rx, setup.max)))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (tx, rx) = open(setup, false)?;
        Ok(Box::new(Copy::new(tx, rx, setup.max)))
    }
}

impl Transport for SpscLoan {
    fn id(&self) -> &'static str {
        "shmwire-spsc-loan"
    }
    fn label(&self) -> &'static str {
        "shmwire spsc (zero-copy loan)"
    }
    fn class(&self) -> Class {
        Class::Ours
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Spin, Mode::Block]
    }
    fn zero_copy(&self) -> bool {
        true
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (tx, rx) = open(setup, true)?;
        setup.spawn()?;
        Ok(Box::new(Loan { tx, rx }))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (tx, rx) = open(setup, false)?;
        Ok(Box::new(Loan { tx, rx }))
    }
}

/// The two channels of a link: `NAME-ab` (driver → echo) and `NAME-ba`.
fn open(setup: &Setup, driver: bool) -> anyhow::Result<(spsc::Sender, spsc::Receiver)> {
    let strategy = match setup.mode {
        Mode::Spin => WaitStrategy::Spin,
        Mode::Block => WaitStrategy::Block,
    };
    // A ring holds messages up to half its size minus a page or so; the default 1 MiB
    // unless the largest message needs more.
    let ring = (2 * (setup.max as u64 + 8192))
        .next_power_of_two()
        .max(1 << 20);
    let opts = ChannelOptions::new().capacity(ring).wait(strategy);
    let (ab, ba) = (format!("{}-ab", setup.name), format!("{}-ba", setup.name));
    let (out, inn) = if driver { (ab, ba) } else { (ba, ab) };
    Ok((
        spsc::Sender::open(&out, &opts)?,
        spsc::Receiver::open(&inn, &opts)?,
    ))
}

struct Copy {
    tx: spsc::Sender,
    rx: spsc::Receiver,
    payload: Payload,
    buf: Vec<u8>,
}

impl Copy {
    fn new(tx: spsc::Sender, rx: spsc::Receiver, max: usize) -> Copy {
        Copy {
            tx,
            rx,
            payload: Payload::new(max, 0),
            buf: Vec::with_capacity(max),
        }
    }
}

impl Endpoint for Copy {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        self.tx.send(self.payload.message(len, tag)).map_err(io_err)
    }
    fn recv(&mut self) -> io::Result<(usize, u64)> {
        let n = self.rx.recv_into(&mut self.buf).map_err(io_err)?;
        Ok((n, tag_of(&self.buf[..n])))
    }
}

struct Loan {
    tx: spsc::Sender,
    rx: spsc::Receiver,
}

impl Endpoint for Loan {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        let mut loan = self.tx.loan(len.max(8)).map_err(io_err)?;
        loan.write_at(0, &tag.to_le_bytes());
        loan.send();
        Ok(())
    }
    fn recv(&mut self) -> io::Result<(usize, u64)> {
        let msg = self.rx.recv_ref().map_err(io_err)?;
        let mut tag = [0u8; 8];
        msg.read_at(0, &mut tag);
        Ok((msg.len(), u64::from_le_bytes(tag)))
    }
}
