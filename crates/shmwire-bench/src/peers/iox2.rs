//! iceoryx2 0.10: publish-subscribe with a dynamic `[u8]` payload, one service per direction,
//! zero-copy: a slice of the message's length is loaned from the publisher's data segment,
//! only its 8-byte tag is written, and the sample is sent; the receiver reads the tag in
//! place. The configuration follows iceoryx2's own benchmarks (`benchmarks/publish-subscribe`,
//! `benchmarks/event`: one publisher and one subscriber per service, no history, IPC service
//! type, `assume_init` on the loaned slice for its zero-copy mode), except that the stream
//! must not lose messages (the echo process counts them): no safe overflow, and the publisher
//! retries until the subscriber has room.
//!
//! * busy-poll ([`Mode::Spin`]): the receiver polls `Subscriber::receive` in a loop, as the
//!   benchmark does.
//! * blocking ([`Mode::Block`]): iceoryx2's recommended wake-up, the event messaging pattern
//!   next to the publish-subscribe service (one event service per direction): the sender
//!   sends the sample, then `Notifier::notify`; the receiver drains its subscriber and, when
//!   it is empty, sleeps in `Listener::blocking_wait` (iceoryx2's IPC event: a flag in shared
//!   memory plus a Unix datagram socket that is written only when the flag was not set yet).
//!
//! Each link runs in an iceoryx2 domain of its own (default settings, not the machine's
//! config files; file prefix and root directory named after the link), so that the bench
//! neither meets nor disturbs iceoryx2 applications running on the machine, and so that it can
//! remove what iceoryx2 keeps per domain after its last node is gone: the global management
//! segment (a node counter in shared memory that iceoryx2 never removes by itself) and the
//! root directory. Ports, services and nodes clean up after themselves when dropped.
//!
//! # Safety
//!
//! Two `unsafe` calls: `SampleMutUninit::assume_init` on a loaned slice of which only the tag
//! was written (see [`End::send`]), and the removal of the link's domain's global management
//! segment once no node is left in it (see [`Domain`]'s `drop`).
#![allow(unsafe_code)]

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::{event, publish_subscribe};

use super::wait_for_echo;
use crate::builtin::io_err;
use crate::transport::{tag_of, Class, Endpoint, Mode, Setup, Transport};

/// The service type: inter-process, single-threaded ports (what the benchmarks measure).
type Svc = ipc::Service;
type PubSub = publish_subscribe::PortFactory<Svc, [u8], ()>;
type Event = event::PortFactory<Svc>;

/// Samples a subscriber can queue. iceoryx2's default is 2 (its latency benchmark uses 1
/// with safe overflow); a stream needs room to run ahead of the receiver, and since the
/// publisher preallocates a chunk of the largest message size for every sample that can be
/// queued (4 MiB here), a deep queue costs address space, not memory: only touched pages are.
const BUFFER: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub struct Iceoryx2;

impl Transport for Iceoryx2 {
    fn id(&self) -> &'static str {
        "iceoryx2"
    }
    fn label(&self) -> &'static str {
        "iceoryx2 0.10 (zero-copy loan)"
    }
    fn class(&self) -> Class {
        Class::Peer
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Spin, Mode::Block]
    }
    fn zero_copy(&self) -> bool {
        true
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let end = End::open(setup, true)?;
        setup.spawn()?;
        // A sample sent before the echo's subscriber (or listener) exists would reach no one.
        wait_for_echo(setup, "connect its subscriber", || {
            end.out.dynamic_config().number_of_subscribers() >= 1
                && end
                    .events
                    .as_ref()
                    .is_none_or(|(out, _)| out.dynamic_config().number_of_listeners() >= 1)
        })?;
        Ok(Box::new(end))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        Ok(Box::new(End::open(setup, false)?))
    }
}

/// One side of a link. Fields drop in order: ports first, then the services, then the node
/// (the last owner of a service removes it), then the domain.
struct End {
    publisher: Publisher<Svc, [u8], ()>,
    subscriber: Subscriber<Svc, [u8], ()>,
    /// Blocking mode: wakes the peer's listener after each sample.
    notifier: Option<Notifier<Svc>>,
    /// Blocking mode: where this side sleeps while its subscriber is empty.
    listener: Option<Listener<Svc>>,
    /// The services this side sends on and receives from.
    out: PubSub,
    _inn: PubSub,
    /// Blocking mode: the event services (out, in).
    events: Option<(Event, Event)>,
    _node: Node<Svc>,
    _domain: Domain,
}

impl End {
    /// The driver creates the services `NAME/ab` (driver → echo) and `NAME/ba` (and, when
    /// blocking, the event services `NAME/ab-event`, `NAME/ba-event`); the echo opens them.
    fn open(setup: &Setup, driver: bool) -> anyhow::Result<End> {
        set_log_level_from_env_or(LogLevel::Error);
        let domain = Domain::new(setup, driver)?;
        let node = NodeBuilder::new()
            .config(&domain.config)
            // The bench is an ordinary program: Ctrl-C ends it.
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<Svc>()?;
        let name = |s: &str| ServiceName::new(&format!("{}/{s}", setup.name));
        let (ab, ba) = (name("ab")?, name("ba")?);
        let pubsub = |n: &ServiceName| -> anyhow::Result<PubSub> {
            let b = node.service_builder(n).publish_subscribe::<[u8]>();
            Ok(if driver {
                b.max_publishers(1)
                    .max_subscribers(1)
                    .history_size(0)
                    .subscriber_max_buffer_size(BUFFER)
                    .enable_safe_overflow(false)
                    .create()?
            } else {
                b.open()?
            })
        };
        let (out, inn) = if driver {
            (pubsub(&ab)?, pubsub(&ba)?)
        } else {
            (pubsub(&ba)?, pubsub(&ab)?)
        };
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(setup.max.max(8))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let subscriber = inn.subscriber_builder().create()?;
        let (mut notifier, mut listener, mut events) = (None, None, None);
        if setup.mode == Mode::Block {
            let (ab, ba) = (name("ab-event")?, name("ba-event")?);
            let event = |n: &ServiceName| -> anyhow::Result<Event> {
                let b = node.service_builder(n).event();
                Ok(if driver {
                    b.max_notifiers(1).max_listeners(1).create()?
                } else {
                    b.open()?
                })
            };
            let (ev_out, ev_in) = if driver {
                (event(&ab)?, event(&ba)?)
            } else {
                (event(&ba)?, event(&ab)?)
            };
            notifier = Some(ev_out.notifier_builder().create()?);
            listener = Some(ev_in.listener_builder().create()?);
            events = Some((ev_out, ev_in));
        }
        Ok(End {
            publisher,
            subscriber,
            notifier,
            listener,
            out,
            _inn: inn,
            events,
            _node: node,
            _domain: domain,
        })
    }
}

impl Endpoint for End {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        let mut sample = self
            .publisher
            .loan_slice_uninit(len.max(8))
            .map_err(io_err)?;
        for (slot, b) in sample.payload_mut().iter_mut().zip(tag.to_le_bytes()) {
            slot.write(b);
        }
        // SAFETY: the loaned slice lies in the publisher's data segment, a shared-memory
        // mapping whose pages the kernel zero-filled when it was created and into which only
        // initialized bytes were ever written (tags, by this publisher), so all its bytes are
        // initialized although iceoryx2 types a fresh loan as `MaybeUninit`; the receiver only
        // reads the first 8 bytes, written just above. iceoryx2's own publish-subscribe
        // benchmark sends loaned slices the same way in its zero-copy mode.
        let sample = unsafe { sample.assume_init() };
        sample.send().map_err(io_err)?;
        if let Some(notifier) = &self.notifier {
            notifier.notify().map_err(io_err)?;
        }
        Ok(())
    }

    fn recv(&mut self) -> io::Result<(usize, u64)> {
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(io_err)? {
                let msg = sample.payload();
                return Ok((msg.len(), tag_of(msg)));
            }
            if let Some(listener) = &self.listener {
                // Returns at once if a notification came since the last wait (the flag is
                // set), so a sample sent between `receive` and here is not missed.
                listener.blocking_wait(|_| {}).map_err(io_err)?;
            }
        }
    }
}

/// The link's own iceoryx2 domain: default settings, the file prefix `NAME_` and the root
/// directory `TMP/NAME.iox2`. The driver's removes the domain's leftovers when dropped.
struct Domain {
    config: Config,
    root: PathBuf,
    driver: bool,
}

impl Domain {
    fn new(setup: &Setup, driver: bool) -> anyhow::Result<Domain> {
        let root = std::env::temp_dir().join(format!("{}.iox2", setup.name));
        let mut config = Config::default();
        config.global.prefix = FileName::new(format!("{}_", setup.name).as_bytes())?;
        let path = root.to_str().map(|p| Path::new(p.as_bytes()));
        let Some(Ok(path)) = path else {
            anyhow::bail!("iceoryx2 cannot use the directory {}", root.display());
        };
        config.global.set_root_path(&path);
        Ok(Domain {
            config,
            root,
            driver,
        })
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        if !self.driver {
            return;
        }
        // The echo process drops its node when it ends, normally at about the same time.
        let start = Instant::now();
        let alone = loop {
            let mut nodes = 0;
            let listed = Node::<Svc>::list(&self.config, |_| {
                nodes += 1;
                CallbackProgression::Continue
            });
            if listed.is_ok() && nodes == 0 {
                break true;
            }
            if start.elapsed() > Duration::from_secs(2) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if !alone {
            // A node is still there (an echo process that failed): leave the domain as it is.
            return;
        }
        // SAFETY: no node is left in this domain, which is this link's own (prefix and root
        // named after it): no process uses it any more, as the function requires. It is
        // iceoryx2's (hidden, test-support) way to remove the segment, which it otherwise
        // keeps forever.
        let _ = unsafe { iceoryx2::testing::remove_global_mgmt_segment::<Svc>(&self.config) };
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
