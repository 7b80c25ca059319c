//! fedtest: record CI test results, learn which tests will fail, plan the next run.
//!
//! Data flow: `junit` → `history` → `features` → `model` → `strategy` → `plan` (+ `plan::format`);
//! `record` is the workflow that writes a build into `history`, and `import` feeds it a
//! platform's past runs. docs/architecture.md lists every module in import order.

pub mod changes;
pub mod ci;
pub mod cli;
pub mod codeowners;
pub mod commands;
pub mod config;
pub mod date;
pub mod demo;
pub mod error;
pub mod eval;
pub mod exit_codes;
pub mod features;
pub mod federation;
pub mod flaky;
pub mod gate;
pub mod git;
pub mod history;
pub mod import;
pub mod inputs;
pub mod junit;
pub mod keys;
pub mod model;
pub mod output;
pub mod plan;
pub mod quarantine;
pub mod random;
pub mod record;
pub mod report;
pub mod retry;
pub mod run;
pub mod server;
pub mod step;
pub mod strategy;
pub mod text;

use cli::{Cli, Command};
use error::Result;

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let env = ci::Env::from_process();
    let printer = output::Printer::new(env.platform());
    let config = config::Config::load(cli.config.as_deref())?;
    // Every FEDTEST_* variable clap does not read, read once; the prior is resolved from them
    // before anything plans or trains.
    let vars = config::env::Vars::read(&env);
    model::prior::install(vars.prior.as_deref(), &printer);
    match &cli.command {
        Command::Record(a) => {
            commands::record::run(&cli.data_dir, &config, a, &env, &vars, &printer)
        }
        Command::Plan(a) => commands::plan::run(&cli.data_dir, &config, a, &env, &printer),
        Command::Model(a) => commands::model::run(&cli.data_dir, a, &printer),
        Command::Eval(a) => commands::eval::run(&cli.data_dir, &config, a, &env, &printer),
        Command::Demo(a) => commands::demo::run(a, &printer),
        Command::Flaky(a) => commands::flaky::run(&cli.data_dir, &config, a, &printer),
        Command::Quarantine(a) => commands::quarantine::run(&cli.data_dir, &config, a, &printer),
        Command::Gate(a) => commands::gate::run(&cli.data_dir, &config, a, &env, &printer),
        Command::Serve(a) => commands::serve::run(a, &vars, &printer),
        Command::Import(a) => {
            commands::import::run(&cli.data_dir, &config, a, &env, &vars, &printer)
        }
        Command::Sync(a) => commands::sync::run(&cli.data_dir, &config, a, &vars, &printer),
        Command::Run(a) => commands::run::run(&cli.data_dir, &config, a, &env, &vars, &printer),
    }
}
