//! `shmwire info NAME [--json]`, and the description of a segment shared with `ls`.

use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use serde::Serialize;
use shmwire::gc::Verdict;
use shmwire::{Inspection, Liveness, SegmentState};

use crate::cli::InfoArgs;
use crate::units;

/// What `info --json` prints and `ls --json` lists.
#[derive(Debug, Default, Serialize)]
pub struct Described {
    pub name: String,
    /// In Windows' `Global\` namespace: commands about it take `--global`. `ls` says so of
    /// the `Global\` sections it lists (never elsewhere than on Windows); `info` of a name
    /// asked for with `--global`.
    pub global: bool,
    /// "shmwire", "initializing", "foreign" (raw or another program's), "unreadable",
    /// "no-access" (ls only).
    pub state: &'static str,
    /// Payload size for shmwire segments, else the OS object's size.
    pub size: u64,
    pub os_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_tag: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_pid: Option<u32>,
    /// "alive", "dead" or "unknown".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_unix_ns: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What `shmwire gc` makes of it: "live", "stale", "kept", "uncertain" or "foreign".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<&'static str>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc_reason: Option<String>,
}

/// Records gc's verdict in `d`.
pub fn set_verdict(d: &mut Described, v: &Verdict) {
    d.gc = Some(v.word());
    d.gc_reason = Some(v.reason().to_owned());
}

pub fn liveness_word(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Dead => "dead",
        Liveness::Unknown => "unknown",
    }
}

pub fn describe(i: &Inspection) -> Described {
    let mut d = Described {
        name: i.name.clone(),
        state: "foreign",
        size: i.os_size,
        os_size: i.os_size,
        ..Described::default()
    };
    match &i.state {
        SegmentState::Shmwire(info) => {
            d.state = "shmwire";
            d.size = info.size;
            d.kind = Some(info.kind.to_string());
            d.kind_code = Some(info.kind.0);
            d.type_tag = Some(info.type_tag);
            d.version = Some(info.version);
            d.creator_pid = Some(info.creator.pid);
            d.creator = Some(liveness_word(shmwire::liveness(info.creator)));
            d.created = Some(humantime::format_rfc3339_seconds(info.created).to_string());
            d.created_unix_ns = info
                .created
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|t| t.as_nanos());
        }
        SegmentState::Initializing => d.state = "initializing",
        SegmentState::Foreign => {}
        SegmentState::Unreadable(why) => {
            d.state = "unreadable";
            d.problem = Some(why.clone());
        }
        _ => d.state = "unknown",
    }
    d
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let inspection = super::options(&args.target).inspect(name)?;
    let mut d = describe(&inspection);
    d.global = args.target.global;
    let verdict = shmwire::gc::GcOptions::new()
        .global(args.target.global)
        .judge(name);
    if let Ok(v) = &verdict {
        set_verdict(&mut d, v);
    }
    if let Ok(all) = shmwire::list() {
        // The entry in the namespace asked for (there is only one elsewhere than on Windows).
        let listed = all
            .iter()
            .find(|o| o.name == name && o.global == args.target.global)
            .or_else(|| all.iter().find(|o| o.name == name));
        if let Some(o) = listed {
            d.mode = o.mode.map(|m| format!("{m:03o}"));
            d.uid = o.uid;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("name:      {name}");
    match &inspection.state {
        SegmentState::Shmwire(info) => {
            println!(
                "kind:      {} (shmwire segment, header layout v{})",
                info.kind, info.version
            );
            println!("size:      {}", units::size(info.size));
            println!(
                "creator:   pid {} ({})",
                info.creator.pid,
                liveness_word(shmwire::liveness(info.creator))
            );
            println!("created:   {}", units::time(info.created));
            if info.type_tag != 0 {
                println!("type tag:  {:#x}", info.type_tag);
            }
        }
        SegmentState::Initializing => {
            println!("kind:      shmwire segment whose creator has not finished initializing it");
            println!(
                "           (if this lasts, the creator died while creating it: `{}`)",
                crate::advice::rm(name, args.target.global)
            );
        }
        SegmentState::Unreadable(why) => {
            println!("kind:      unreadable shmwire segment: {why}");
        }
        _ => {
            println!(
                "kind:      raw (no shmwire header: another program's, or created with --raw)"
            );
        }
    }
    println!("os size:   {}", units::size(inspection.os_size));
    if let (Some(mode), Some(uid)) = (&d.mode, d.uid) {
        println!("access:    mode {mode}, owner uid {uid}");
    }
    match &verdict {
        Ok(v) => {
            let hint = match v {
                Verdict::Stale(_) => "; `shmwire gc` removes it",
                Verdict::Kept(_) => "; `shmwire gc --all` removes it",
                Verdict::Uncertain(_) => "; `shmwire gc --ignore-unseen` removes it",
                _ => "",
            };
            println!("gc:        {}: {}{hint}", v.word(), v.reason());
        }
        Err(e) => println!("gc:        cannot tell ({e})"),
    }
    crate::advice::note_small_shm();
    Ok(ExitCode::SUCCESS)
}
