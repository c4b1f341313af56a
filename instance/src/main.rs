use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use pek::config::{DbArgs, LogFormat, ServeArgs};

/// mimalloc instead of glibc's malloc: hyper allocates a read buffer for every read of
/// every connection, and glibc's arenas spent a fifth of the hub's CPU on forwarded calls
/// (`pek-bench forward`: 108 against 130 µs per call; see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pek",
    version,
    about = "PéK realm federation: hub, worker and BFF"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (mode from PEK_MODE=hub|worker).
    Serve(Box<ServeArgs>),
    /// Run the database migrations for PEK_MODE and grant the service role its rights.
    Migrate(DbArgs),
    /// Start a whole federation on this machine on a throwaway PostgreSQL.
    Local(pek::demo::LocalArgs),
    /// Import data from another system into a realm of this hub.
    #[command(subcommand)]
    Import(ImportSource),
    /// Print the OpenAPI document of a mode's API.
    Openapi {
        #[arg(long, value_enum, default_value = "hub")]
        mode: pek::config::Mode,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// From a running PéK (pek-next): people, groups, memberships, evaluations and points,
    /// with the points check (exit status 3 when a semester figure differs).
    PekNext(Box<pek::pek_next::Args>),
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        // Colour codes only for a person at a terminal, not in files or log collectors.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(a) => a.log_format,
        _ => LogFormat::Text,
    };
    init_tracing(format);
    let result = match cli.command {
        Command::Serve(args) => pek::app::serve(*args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Local(args) => pek::demo::run_local(args).await,
        Command::Import(ImportSource::PekNext(args)) => {
            let progress = pek::pek_next::Progress::detect();
            match pek::pek_next::run(&args, &progress).await {
                Ok(summary) => {
                    println!("{}", pek::pek_next::render(&summary, args.dry_run));
                    if !summary.differences.is_empty() {
                        return std::process::ExitCode::from(3);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Command::Openapi { mode } => {
            match serde_json::to_string_pretty(&pek::http::openapi(mode)) {
                Ok(s) => {
                    println!("{s}");
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    let owner = args
        .migration_database_url
        .as_deref()
        .unwrap_or(&args.database_url);
    let role = pek::db::url_role(&args.database_url).map_err(anyhow::Error::msg)?;
    pek::db::migrate(owner, args.mode, Some(&role)).await?;
    println!("migrations applied ({:?})", args.mode);
    Ok(())
}
