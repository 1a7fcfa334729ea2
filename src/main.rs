use clap::Parser;

// The service and the import allocate many short-lived buffers on several threads; glibc's
// malloc spent a quarter of the import's CPU time (perf), mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = touchpoint::cli::Cli::parse();
    // The service's requests run on the HTTP workers' own threads; what is left on this
    // runtime (the decision-log writer, metric upkeep, file watches) needs one thread, and a
    // second would only be woken to look for work. Training and import use every core.
    let runtime = if cli.serves() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(touchpoint::cli::run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", touchpoint::cli::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
