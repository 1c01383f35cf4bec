//! The stream protocol of `shmwire send` / `recv` (`shmwire::channel::stream`) against any
//! sequence of messages a sender could put in the channel: the header and trailer decoders
//! round-trip what they accept, and `Receiver::recv_stream` ends with a summary or a typed
//! error — never a panic or a hang — and reports success only for content that matches the
//! trailer it received.
//!
//! The sender runs in a thread and behaves as a real one does around the header (it waits
//! until the header is taken, so that the receiver does not see an orphaned stream), then
//! sends the fuzzer's messages and leaves: the receiver ends with a summary, or with an
//! error at the first message that breaks the protocol, or `SenderGone` at the end.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shmwire::channel::stream::{StreamHeader, StreamTrailer};
use shmwire::channel::{spsc, ChannelOptions};
use shmwire_fuzz::Object;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Raw bytes for the decoders.
    raw: Vec<u8>,
    /// Start with a valid header (else the first message is the fuzzer's).
    valid_header: bool,
    announced: Option<u64>,
    /// The messages after the header.
    messages: Vec<Vec<u8>>,
    /// End with an empty message and a trailer matching the data messages (a well-formed
    /// stream, unless the messages already contain an empty one).
    valid_end: bool,
}

fuzz_target!(|input: Input| {
    // Decoders: what they accept re-encodes to something they decode the same way.
    if let Some(h) = StreamHeader::decode(&input.raw) {
        assert_eq!(StreamHeader::decode(&h.encode()), Some(h));
    }
    if let Some(t) = StreamTrailer::decode(&input.raw) {
        assert_eq!(StreamTrailer::decode(&t.encode()), Some(t));
        assert_eq!(&t.encode()[..], &input.raw[..]);
    }

    let obj = Object::new("stream");
    let opts = ChannelOptions::new().capacity(64 * 1024);
    let mut rx = spsc::Receiver::open(obj.name(), &opts).expect("opening the receiver");
    let mut tx = spsc::Sender::open(obj.name(), &opts).expect("opening the sender");
    let max = tx.message_size() as usize;
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    if input.valid_header {
        let header = StreamHeader {
            len: input.announced,
            name: "fuzz".into(),
        };
        msgs.push(header.encode());
    }
    msgs.extend(
        input
            .messages
            .iter()
            .take(64)
            .map(|m| m[..m.len().min(max)].to_vec()),
    );
    if input.valid_end {
        let data = &msgs[usize::from(input.valid_header)..];
        let content: Vec<u8> = data.concat();
        let t = StreamTrailer {
            len: content.len() as u64,
            xxh3: xxhash_rust::xxh3::xxh3_64(&content),
        };
        msgs.push(Vec::new());
        msgs.push(t.encode().to_vec());
    }
    std::thread::scope(|s| {
        let sender = s.spawn(move || {
            for (i, m) in msgs.iter().enumerate() {
                if tx.send_timeout(m, Duration::from_secs(5)).is_err() {
                    return;
                }
                // As a real sender: nothing more until the receiver took the first message.
                if i == 0 && tx.wait_received_timeout(Duration::from_secs(5)).is_err() {
                    return;
                }
            }
            drop(tx);
        });
        let mut out = Vec::new();
        if let Ok(summary) = rx.recv_stream_timeout(&mut out, Duration::from_millis(200), &mut ()) {
            assert_eq!(summary.bytes, out.len() as u64);
            assert_eq!(summary.xxh3, xxhash_rust::xxh3::xxh3_64(&out));
        }
        drop(rx);
        // Joined explicitly: a scope's end waits for the closure only, not for the thread's
        // exit, and LeakSanitizer would take the thread-local destructor list still held by
        // the exiting thread for a leak of this input.
        sender.join().expect("the sender thread does not panic");
    });
    obj.remove();
});
