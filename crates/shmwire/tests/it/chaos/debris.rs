//! What killed processes leave behind, for gc: one channel of each kind and a mutex segment,
//! whose every user is killed in mid-stream.

use std::time::{Duration, Instant};

use shmwire::channel::{blackboard, broadcast, mpmc, spsc, ChannelOptions};
use shmwire::sync::RobustMutex;
use shmwire::Segment;

use super::drive::{Crew, STALL};
use super::kids;
use crate::common::{self, child_env, report};

const NAME: &str = "SHMWIRE_CHAOS_NAME";
const WHAT: &str = "SHMWIRE_CHAOS_WHAT";

/// A child that opens one endpoint (or the mutex) and works it until killed.
pub(super) fn child() {
    common::listen_to_parent();
    let name = child_env(NAME);
    let what = child_env(WHAT);
    let opts = ChannelOptions::new().capacity(64).message_size(256);
    let ring = ChannelOptions::new().capacity(64 * 1024);
    let msg = [0x5a_u8; 200];
    let mut beat = kids::Beat::new();
    let mut tick = |ready: &mut bool| {
        if !*ready {
            report("ready", 1);
            *ready = true;
        }
        if beat.due() {
            report("n", 0);
        }
    };
    let mut ready = false;
    // Bounded waits only: the driver kills us; until then, keep reporting.
    let t = Duration::from_millis(20);
    match what.as_str() {
        "spsc-tx" => {
            let mut tx = spsc::Sender::open(&name, &ring).expect("opening");
            loop {
                tick(&mut ready);
                let _ = tx.send_timeout(&msg, t);
            }
        }
        "spsc-rx" => {
            let mut rx = spsc::Receiver::open(&name, &ring).expect("opening");
            loop {
                tick(&mut ready);
                let _ = rx.recv_timeout(t);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "mpmc-tx" => {
            let mut tx = mpmc::Sender::open(&name, &opts).expect("opening");
            loop {
                tick(&mut ready);
                let _ = tx.send_timeout(&msg, t);
            }
        }
        "mpmc-rx" => {
            let mut rx = mpmc::Receiver::open(&name, &opts).expect("opening");
            loop {
                tick(&mut ready);
                let _ = rx.recv_timeout(t);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "bc-pub" => {
            let mut tx = broadcast::Publisher::open(&name, &opts).expect("opening");
            loop {
                tick(&mut ready);
                let _ = tx.send(&msg);
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        "bc-sub" => {
            let mut rx = broadcast::Subscriber::open(&name, &opts).expect("opening");
            loop {
                tick(&mut ready);
                let _ = rx.recv_timeout(t);
            }
        }
        "bb-w" => {
            let mut w = blackboard::Writer::<[u64; 8]>::open(&name, &ChannelOptions::new())
                .expect("opening");
            loop {
                tick(&mut ready);
                w.write(&[w.version(); 8]);
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        "bb-r" => {
            let r = blackboard::Reader::<[u64; 8]>::open(&name, &ChannelOptions::new())
                .expect("opening");
            loop {
                tick(&mut ready);
                let _ = r.wait_newer_timeout(0, t);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "mutex" => {
            let (seg, _) = Segment::options()
                .open_or_create(&name, 4096, |seg| {
                    RobustMutex::init_in(seg, 0)?;
                    Ok(())
                })
                .expect("opening");
            let m = RobustMutex::open_in(&seg, 0).expect("the mutex");
            loop {
                tick(&mut ready);
                if let Ok(mut g) = m.lock_timeout(t) {
                    g.mark_consistent();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        other => panic!("unknown debris {other:?}"),
    }
}

/// Starts the debris crews, lets them work a little, kills them all; the names left.
pub(super) fn leave(prefix: &str) -> Result<Vec<String>, String> {
    let crews: [(&str, &[&str]); 5] = [
        ("spsc", &["spsc-tx", "spsc-rx"]),
        ("mpmc", &["mpmc-tx", "mpmc-tx", "mpmc-rx"]),
        ("bc", &["bc-pub", "bc-sub"]),
        ("bb", &["bb-w", "bb-r"]),
        ("mtx", &["mutex", "mutex"]),
    ];
    let mut crew = Crew::default();
    let mut names = Vec::new();
    for (tag, roles) in crews {
        let name = format!("{prefix}debris-{tag}");
        for (i, what) in roles.iter().enumerate() {
            let env = [(NAME, name.clone()), (WHAT, what.to_string())];
            crew.add(kids::spawn("debris", i, 0, &env));
        }
        names.push(name);
    }
    let deadline = Instant::now() + STALL;
    while crew.kids.iter().any(|k| k.ready.is_none()) {
        crew.poll()?;
        if Instant::now() > deadline {
            return Err("the debris crew did not get ready".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut stats = super::drive::Stats::default();
    while !crew.kids.is_empty() {
        crew.kill(0, &mut stats)?;
    }
    let left: Vec<String> = names
        .into_iter()
        .filter(|n| Segment::open(n).is_ok())
        .collect();
    Ok(left)
}
