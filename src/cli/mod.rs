//! The command-line front end: `heformer params`, `heformer devices`,
//! `heformer bench ckks|boot|poly|model`, the client/server exchange
//! through files (`keygen`, `encrypt` and `decrypt` on the client,
//! `finetune` and `infer` on the server; see [`files`] for the layout),
//! `heformer rehearse` (the client's plaintext twin of a private
//! fine-tuning), `heformer demo`, the whole exchange in one process, and
//! `heformer adapt`, the plaintext adaptation of MiniLM's first layers.

mod adapt;
mod bench;
mod bench_boot;
mod bench_compare;
mod bench_model;
mod bench_poly;
mod client;
mod demo;
mod devices;
pub mod files;
mod finetune;
mod infer;
mod keygen;
pub mod model;
mod params;
mod rehearse;

use clap::{Parser, Subcommand};

use crate::backend::BackendChoice;
use crate::error::Result;

/// heformer: RNS-CKKS for private fine-tuning and inference.
#[derive(Debug, Parser)]
#[command(name = "heformer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the parameter presets.
    Params {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the compute backends, whether each has a device, and what
    /// `--backend` picks.
    Devices {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Client: a secret key and the evaluation keys the model needs.
    Keygen(keygen::KeygenArgs),
    /// Client: tokenizes, embeds and encrypts labelled texts (the labels
    /// stay with the client).
    Encrypt(client::EncryptArgs),
    /// Server: private LoRA fine-tuning on encrypted examples and labels,
    /// with the evaluation keys alone; checkpoints after every step.
    Finetune(finetune::FinetuneArgs),
    /// Client: the private fine-tuning's plaintext twin on plaintext data
    /// (the same scales, clip, optimizer and polynomials), with held-out
    /// accuracy along the way: choose the steps and the rate before the
    /// encrypted run.
    Rehearse(rehearse::RehearseArgs),
    /// Server: encrypted inference with the evaluation keys alone.
    Infer(infer::InferArgs),
    /// Client: decrypts logits; predictions, and accuracy given the labels.
    Decrypt(client::DecryptArgs),
    /// Keys, encryption, encrypted inference and decryption in one process,
    /// compared with the plaintext twin and the exact model.
    Demo(demo::DemoArgs),
    /// Adapt MiniLM's first layers into the encryption-friendly model in
    /// plaintext (fine-tuning on a polarity corpus), report held-out
    /// accuracies, write the adapted weights.
    Adapt(adapt::AdaptArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
    },
}

#[derive(Debug, Subcommand)]
enum BenchSuite {
    /// Times the CKKS operations and measures their precision.
    Ckks(bench::CkksBenchArgs),
    /// Times a full-slot bootstrap and measures its precision and levels left.
    Boot(bench_boot::BootBenchArgs),
    /// Times the named fitted functions under encryption, with their depth.
    Poly(bench_poly::PolyBenchArgs),
    /// Times one encrypted forward of a random model (paper shapes by
    /// default: very long on a CPU), with its bootstraps per layer.
    Model(bench_model::ModelBenchArgs),
    /// The paper's comparison: one fine-tuning step and one inference of
    /// Gaussian kernel + LoRA against softmax + full fine-tuning, at the
    /// same shapes (the paper's by default: hours on a CPU).
    Compare(bench_compare::CompareBenchArgs),
}

/// Common options of commands that compute.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Which backend runs the computation.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Worker threads for the CPU (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Writes one line to standard output; a closed pipe or other write failure
/// is an `Error::Io` (the caller stops), never a panic.
pub(crate) fn print_line(line: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|source| crate::error::Error::Io {
            context: "writing to standard output".into(),
            source,
        })
}

/// A preset by name or, when `name_or_path` is an existing file, the JSON
/// parameter literal it holds, validated.
pub(crate) fn load_parameters(name_or_path: &str) -> Result<crate::params::Parameters> {
    let path = std::path::Path::new(name_or_path);
    if !path.is_file() {
        return crate::params::Parameters::preset(name_or_path);
    }
    let text = std::fs::read_to_string(path).map_err(|source| crate::error::Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let literal: crate::params::ParametersLiteral = serde_json::from_str(&text).map_err(|e| {
        crate::error::Error::InvalidParameters(format!(
            "{}: not a parameter literal: {e}",
            path.display()
        ))
    })?;
    literal.validate()
}

/// Parses the arguments and runs the command.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Params { json } => params::run(json),
        Command::Devices { json, backend } => devices::run(json, &backend),
        Command::Adapt(args) => adapt::run_adapt(&args),
        Command::Bench {
            suite: BenchSuite::Ckks(args),
        } => bench::run_ckks(&args),
        Command::Bench {
            suite: BenchSuite::Boot(args),
        } => bench_boot::run_boot(&args),
        Command::Bench {
            suite: BenchSuite::Poly(args),
        } => bench_poly::run_poly(&args),
        Command::Bench {
            suite: BenchSuite::Model(args),
        } => bench_model::run_model(&args),
        Command::Bench {
            suite: BenchSuite::Compare(args),
        } => bench_compare::run_compare(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Encrypt(args) => client::encrypt(&args),
        Command::Finetune(args) => finetune::run(&args),
        Command::Rehearse(args) => rehearse::run(&args),
        Command::Infer(args) => infer::run(&args),
        Command::Decrypt(args) => client::decrypt(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
