use clap::Parser;

fn main() {
    let cli = match sirqtop::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => sirqtop::cli::exit_on_usage_error(e),
    };
    if let Err(e) = sirqtop::cli::dispatch(cli) {
        // The whole context chain, on one line.
        eprintln!("sirqtop: {e:#}");
        std::process::exit(1);
    }
}
