//! `pek-operator`: `run` (the controller), `crd` (prints the Realm CRD YAML), `backup` (one
//! scheduled backup of a realm, what a Realm's backup CronJob runs).

use clap::{Parser, Subcommand};
use pek_operator::config::{BackupArgs, RunArgs};

#[derive(Parser)]
#[command(
    name = "pek-operator",
    version,
    about = "Kubernetes operator for PéK realms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Realm controller (leader-elected) with /metrics, /healthz and /readyz.
    Run(Box<RunArgs>),
    /// Print the Realm CustomResourceDefinition (what crds/realm.yaml must equal).
    Crd,
    /// Write one backup of a realm's database into the dump place (a Realm's backup CronJob).
    Backup(BackupArgs),
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        // Colour codes only on a terminal: in a pod, a file or a pipe they are noise.
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's rustls client uses the process-wide provider; with more than one linked in,
    // rustls refuses to guess, so name it before any client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", pek_crds::crd_yaml());
            Ok(())
        }
        Command::Run(args) => {
            init_logging(&args.log_format);
            pek_operator::run::run(*args).await
        }
        Command::Backup(args) => {
            init_logging("json");
            let file = args.run().await.map_err(|e| anyhow::anyhow!(e.message()))?;
            tracing::info!(dump = %file, "backup written");
            Ok(())
        }
    }
}
