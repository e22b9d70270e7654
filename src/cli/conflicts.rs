//! `cyrdeck conflicts`: every GUID conflict known (read-only, no host contacted).

use super::common::only_pair;
use color_eyre::eyre::Result;
use cyrdeck::config::Config;

pub fn run(cfg: &Config, pair: Option<String>, json: bool) -> Result<i32> {
    use cyrdeck::check::last::PairRef;
    let pairs: Vec<PairRef> = match pair {
        Some(p) => vec![PairRef::of(cfg, &only_pair(cfg, Some(p))?)],
        None => PairRef::all(cfg),
    };
    let all = cyrdeck::check::guid_conflicts::collect(&cyrdeck::state::dir(), &pairs);
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if all.is_empty() {
        println!("no GUID conflict known (newest reintegrate report, last check)");
    } else {
        for c in &all {
            println!(
                "{} {} UID {}: {} {} / {} {}: {} [{}]",
                c.pair, c.mailbox, c.uid, c.side_a, c.guid_a, c.side_b, c.guid_b, c.done, c.source
            );
        }
    }
    Ok(i32::from(!all.is_empty()))
}
