//! `cyrdeck trust HOST`: trust on first use, only when the operator says so.

use color_eyre::eyre::{bail, Result};
use cyrdeck::config::Config;

pub async fn run(cfg: &Config, host: &str, yes: bool) -> Result<()> {
    let Some(h) = cfg.hosts.get(host) else {
        bail!("no host named {host:?} in {}", cfg.file.display());
    };
    use cyrdeck::remote::known_hosts::TrustDecision;
    let (key, decision) = cyrdeck::remote::session::scan_host_key(h).await?;
    let fp = cyrdeck::remote::session::fingerprint(&key);
    println!("{} offers {} {fp}", h.target, key.algorithm());
    match decision {
        TrustDecision::Add => {}
        TrustDecision::AlreadyKnown(line) => {
            println!(
                "already trusted: {} line {line}; nothing added",
                h.known_hosts.display()
            );
            return Ok(());
        }
        TrustDecision::Refuse(why) => bail!("not trusted: {why}"),
    }
    if !yes {
        eprint!("Add it to {}? Type yes: ", h.known_hosts.display());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not trusted");
        }
    }
    russh::keys::known_hosts::learn_known_hosts_path(
        &h.target.host,
        h.target.port,
        &key,
        &h.known_hosts,
    )?;
    println!("added to {}", h.known_hosts.display());
    Ok(())
}
