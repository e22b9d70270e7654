use clap::{Parser, Subcommand};
use color_eyre::eyre::Result;
use cyrdeck::lab::{self, Component, Lab};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cyrdeck",
    version,
    about = "Console for Cyrus IMAP replication"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The local rehearsal pair (real Cyrus + sshd on loopback).
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
}

#[derive(clap::Args)]
struct LabArgs {
    /// Directory holding the lab's configs, keys, spools and pidfiles.
    #[arg(long, default_value = "/var/tmp/cyrdeck-lab")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum LabAction {
    /// Start whatever part of the lab is not running (idempotent).
    Up {
        #[command(flatten)]
        lab: LabArgs,
        /// First of the lab's ports (it uses base..base+21).
        #[arg(long)]
        base_port: Option<u16>,
    },
    /// Stop the lab's own processes (or one component).
    Down {
        #[command(flatten)]
        lab: LabArgs,
        /// syslog, master-cyrus, replica-cyrus, master-sshd, replica-sshd
        #[arg(long)]
        only: Option<String>,
    },
    /// What runs, and each instance's config, addresses and ports.
    Status {
        #[command(flatten)]
        lab: LabArgs,
        #[arg(long)]
        json: bool,
    },
    /// Create users and folders (hostile names too) and deliver mail.
    Seed {
        #[command(flatten)]
        lab: LabArgs,
        /// Messages delivered per user over LMTP.
        #[arg(long, default_value_t = 3)]
        messages: usize,
    },
}

fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Lab { action } => run_lab(action),
    }
}

fn run_lab(action: LabAction) -> Result<()> {
    match action {
        LabAction::Up { lab, base_port } => {
            let l = Lab::open(&lab.dir, base_port)?;
            l.up()?;
            println!(
                "lab up in {}; console config: {}",
                l.layout.dir.display(),
                l.layout.config_file().display()
            );
        }
        LabAction::Down { lab, only } => {
            let l = Lab::open(&lab.dir, None)?;
            let only = only.as_deref().map(Component::parse).transpose()?;
            l.down(only)?;
        }
        LabAction::Status { lab, json } => {
            let st = Lab::open(&lab.dir, None)?.status();
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                for c in &st.components {
                    let state = match c.pid {
                        Some(p) => format!("running (pid {p})"),
                        None => "stopped".into(),
                    };
                    println!("{:<14} {state}", c.name);
                }
                for i in &st.instances {
                    println!(
                        "{:<8} {} imap {} lmtp {} sync {} ssh {}  {}",
                        i.role,
                        i.address,
                        i.imap_port,
                        i.lmtp_port,
                        i.sync_port,
                        i.ssh_port,
                        i.imapd_conf.display()
                    );
                }
            }
        }
        LabAction::Seed { lab, messages } => {
            let l = Lab::open(&lab.dir, None)?;
            let report = lab::seed::seed(&l, messages)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}
