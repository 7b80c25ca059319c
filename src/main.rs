use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fedtest::cli::Cli::parse();
    match fedtest::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            // A test command's own exit code has already spoken for itself.
            let quiet = matches!(e, fedtest::error::Error::Verdict(_));
            if code != fedtest::exit_codes::OK && !quiet {
                fedtest::output::error(&e.to_string());
            }
            ExitCode::from(code as u8)
        }
    }
}
