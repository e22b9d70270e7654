//! cyrdeck's entry point: the command line lives in `cli/` (clap types in
//! cli/args.rs, one handler module per command, `cli::try_main`).

mod cli;

fn main() -> color_eyre::Result<std::process::ExitCode> {
    color_eyre::install()?;
    cli::try_main()
}
