use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fedtest::cli::Cli::parse();
    match fedtest::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if code != fedtest::exit_codes::OK {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("fedtest: error: {e}");
                }
            }
            ExitCode::from(code as u8)
        }
    }
}
