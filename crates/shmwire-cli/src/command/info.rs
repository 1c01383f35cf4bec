//! `shmwire info NAME [--json]`.

use std::process::ExitCode;

use shmwire::gc::Verdict;
use shmwire::SegmentState;

use crate::cli::InfoArgs;
use crate::options;
use crate::report::{describe, liveness_word, set_verdict};
use crate::units;

pub(super) fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let inspection = options::segment(args.target.namespace).inspect(name)?;
    let mut d = describe(&inspection);
    d.global = args.target.namespace.global;
    let verdict = shmwire::gc::GcOptions::new()
        .global(args.target.namespace.global)
        .judge(name);
    if let Ok(v) = &verdict {
        set_verdict(&mut d, v);
    }
    if let Ok(all) = shmwire::list() {
        // The entry in the namespace asked for (there is only one elsewhere than on Windows).
        let listed = all
            .iter()
            .find(|o| o.name == name && o.global == args.target.namespace.global)
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
                crate::advice::rm(name, args.target.namespace.global)
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
