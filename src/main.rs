//! cyrdeck's entry point: the command line lives in `cli/` (clap types in
//! cli/args.rs, one handler module per command, `cli::try_main`).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // color-eyre's report stays for panics (a bug: where it happened
    // matters); an error is what the operator gets: one plain line
    let _ = color_eyre::install();
    match cli::try_main() {
        Ok(code) => code,
        Err(e) => {
            let line = format!("{e:#}");
            if std::io::stderr().is_terminal() {
                eprintln!("\x1b[1;31mcyrdeck:\x1b[0m {line}");
            } else {
                eprintln!("cyrdeck: {line}");
            }
            // 2: cyrdeck could not do what was asked (bad input, a config
            // or host it cannot read); never 1, which means "findings"
            ExitCode::from(2)
        }
    }
}
