//! ipc-channel 0.23: a pair of `ipc::bytes_channel`s (raw bytes, no serialization), blocking
//! `send` and `recv`, the message copied in and out (`recv` returns a new `Vec`). On Linux a
//! channel is a `SOCK_SEQPACKET` Unix socket pair; a message larger than one packet is
//! fragmented over a dedicated channel created for it, so 4 MiB messages go through.
//!
//! Bootstrapping, the way ipc-channel's documentation shows: the driver opens an
//! `IpcOneShotServer` and hands its name to the echo process (here on the echo process's
//! stdin); the echo process makes both channels, connects to the server and sends it the
//! driver's ends (the driver → echo sender and the echo → driver receiver).

use std::io::{self, BufRead, Write};
use std::sync::mpsc;

use anyhow::Context;
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};

use super::wait_for_echo;
use crate::builtin::io_err;
use crate::transport::{tag_of, Class, Endpoint, Mode, Payload, Setup, Transport};

/// What the echo process sends the driver: the driver → echo sender, the echo → driver
/// receiver.
type Ends = (IpcBytesSender, IpcBytesReceiver);

/// See the module docs.
#[derive(Debug)]
pub struct IpcChannel;

impl Transport for IpcChannel {
    fn id(&self) -> &'static str {
        "ipc-channel"
    }
    fn label(&self) -> &'static str {
        "ipc-channel bytes (copy)"
    }
    fn class(&self) -> Class {
        Class::Peer
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Block]
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (server, name) = IpcOneShotServer::<Ends>::new()?;
        let (mut to_child, _from_child) = setup.spawn_piped()?;
        writeln!(to_child, "{name}")?;
        drop(to_child);
        // `accept` cannot time out: accept on a thread, so that an echo process that dies
        // before it connects fails this run instead of hanging the bench.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(server.accept().map(|(_, ends)| ends));
        });
        let mut accepted = None;
        wait_for_echo(setup, "connect to the one-shot server", || {
            if accepted.is_none() {
                accepted = rx.try_recv().ok();
            }
            accepted.is_some()
        })?;
        let (tx, rx) = accepted
            .context("no connection")?
            .context("ipc-channel one-shot accept")?;
        Ok(Box::new(End::new(tx, rx, setup.max)))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let mut name = String::new();
        io::stdin()
            .lock()
            .read_line(&mut name)
            .context("reading the one-shot server's name")?;
        let (to_echo, from_driver) = ipc::bytes_channel()?;
        let (to_driver, from_echo) = ipc::bytes_channel()?;
        let bootstrap = IpcSender::<Ends>::connect(name.trim().to_owned())?;
        bootstrap
            .send((to_echo, from_echo))
            .context("sending the channel ends to the driver")?;
        Ok(Box::new(End::new(to_driver, from_driver, setup.max)))
    }
}

struct End {
    tx: IpcBytesSender,
    rx: IpcBytesReceiver,
    payload: Payload,
}

impl End {
    fn new(tx: IpcBytesSender, rx: IpcBytesReceiver, max: usize) -> End {
        End {
            tx,
            rx,
            payload: Payload::new(max, 0),
        }
    }
}

impl Endpoint for End {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        self.tx.send(self.payload.message(len, tag))
    }

    fn recv(&mut self) -> io::Result<(usize, u64)> {
        let msg = self.rx.recv().map_err(io_err)?;
        Ok((msg.len(), tag_of(&msg)))
    }
}
