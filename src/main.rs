use clap::Parser;

// The service and the import allocate many short-lived buffers on several threads; glibc's
// malloc spent a quarter of the import's CPU time (perf), mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = touchpoint::cli::Cli::parse();
    match touchpoint::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
