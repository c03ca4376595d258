//! `heformer demo`: the whole exchange in one process (keys, encryption,
//! encrypted inference, decryption) on a few real sentences, compared with
//! the plaintext twin (the same polynomials: the difference is CKKS noise
//! and bootstrapping error) and with the exact non-linearities. With
//! `--json` the last line is one JSON object ([`Summary`]).

use std::path::PathBuf;
use std::time::Instant;

use super::client::{accuracy_note, argmax, classes, Client, Columns};
use super::infer::Server;
use super::keygen::{generate_keys, prng, DEFAULT_PARAMS};
use super::model::{load_model, ModelSpec};
use super::BackendArgs;
use crate::error::{Error, Result};
use crate::model::encrypted::ServerSetup;
use crate::model::friendly::{agreement, Variant};

/// Options of `heformer demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Labelled texts (CSV with a header, or JSONL); default: held-out
    /// Rotten Tomatoes sentences (the model's built-in toy sentences for
    /// `--model tiny`).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    columns: Columns,
    /// Examples to run (the first ones).
    #[arg(long, default_value_t = 2)]
    examples: usize,
    /// Examples run in lockstep at a time (0: all at once); a batch shares
    /// its bootstraps, and memory grows with it.
    #[arg(long, default_value_t = 0)]
    batch: usize,
    /// A parameter preset that bootstraps, or a JSON parameter literal.
    #[arg(long, default_value = DEFAULT_PARAMS)]
    params: String,
    #[command(flatten)]
    model: ModelSpec,
    /// INSECURE, tests and benchmarks only: keys from this seed.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The demo's results.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    params: String,
    /// The estimated security (`null`: no estimate, test-only sets).
    security_bits: Option<f64>,
    log_n: u32,
    backend: String,
    model: String,
    examples: usize,
    /// Share of examples whose encrypted argmax is the twin's.
    agreement: f64,
    /// The same against the exact non-linearities.
    agreement_exact: f64,
    /// Encrypted predictions against the labels.
    accuracy: f64,
    /// The twin's and the exact model's accuracy.
    twin_accuracy: f64,
    exact_accuracy: f64,
    /// Logits against the twin's, worst example: −log2(max|a−b|/max|b|).
    precision_bits: f64,
    /// Bootstraps of each layer, then of the head (the first batch).
    layer_bootstraps: Vec<usize>,
    head_bootstraps: usize,
    keygen_seconds: f64,
    /// Encrypted inference per example (mean).
    inference_seconds: f64,
    /// The part of it spent bootstrapping.
    bootstrap_seconds: f64,
    /// The whole demo.
    seconds: f64,
    note: &'static str,
}

pub(super) fn run(args: &DemoArgs) -> Result<()> {
    let start = Instant::now();
    let model = load_model(&args.model)?;
    let (mut data, label_set) = match &args.data {
        Some(path) => args.columns.read(path, None)?,
        None => (model.held_out.clone(), model.held_out.label_set()),
    };
    data.examples.truncate(args.examples);
    if data.is_empty() {
        return Err(Error::OutOfRange {
            op: "demo",
            detail: "no examples to run (--examples 0?)".into(),
        });
    }
    let (_, labels) = classes(&data, label_set, model.twin.config().classes)?;
    let params = super::load_parameters(&args.params)?;
    let ctx = super::files::context(&params, &args.backend)?;
    let (setup, bootstrapper) =
        ServerSetup::with_bootstrapper(model.twin.config(), ctx.clone(), model.adapters)?;
    let (key_count, capped) = setup.galois_key_count(&params);
    eprintln!(
        "heformer demo: {} (N = 2^{}), backend {}, {} examples, {} Galois keys ({} capped below the top level)",
        params.name(),
        params.log_n(),
        ctx.backend().kind(),
        data.len(),
        key_count,
        capped,
    );
    let keygen_start = Instant::now();
    let (secret, keys) = generate_keys(&ctx, &setup, prng(args.seed)?)?;
    let keygen_seconds = keygen_start.elapsed().as_secs_f64();
    let server = Server::with_setup(model.encrypted(ctx.clone())?, keys, (setup, bootstrapper))?;
    let mut client = Client::new(&ctx, secret)?;

    let inputs = model.embed(&data.texts())?;
    let (mut same, mut same_exact, mut correct, mut twin_correct, mut exact_correct) =
        (0, 0, 0, 0, 0);
    let mut precision = f64::INFINITY;
    let (mut inference_seconds, mut bootstrap_seconds) = (0.0, 0.0);
    let mut bootstraps_of_first = None;
    let batch = if args.batch == 0 {
        inputs.len()
    } else {
        args.batch
    };
    for (first, (inputs, labels)) in inputs
        .chunks(batch)
        .zip(labels.chunks(batch))
        .enumerate()
        .map(|(k, chunk)| (k * batch, chunk))
    {
        let encrypted = inputs
            .iter()
            .map(|input| client.encrypt(server.model(), input, server.input_level()))
            .collect::<Result<Vec<_>>>()?;
        let result = server.infer(&encrypted, None)?;
        for (offset, ((input, &label), ciphertext)) in
            inputs.iter().zip(labels).zip(&result.logits).enumerate()
        {
            let logits = client.logits(server.model(), ciphertext)?;
            let forward = |variant| {
                model
                    .twin
                    .forward(input.embeddings.view(), &input.mask, variant)
                    .map(|trace| trace.logits)
            };
            let (twin, exact) = (forward(Variant::Polynomial)?, forward(Variant::Exact)?);
            let (predicted, twin_predicted, exact_predicted) =
                (argmax(&logits), argmax(&twin), argmax(&exact));
            same += usize::from(predicted == twin_predicted);
            same_exact += usize::from(predicted == exact_predicted);
            correct += usize::from(predicted == label);
            twin_correct += usize::from(twin_predicted == label);
            exact_correct += usize::from(exact_predicted == label);
            let bits = agreement(&logits, &twin);
            precision = precision.min(bits);
            let index = first + offset;
            super::print_line(format_args!(
                "example {index}: encrypted logits {logits:.4}, twin {twin:.4} ({bits:.1} bits), exact {exact:.4}; predicted {predicted}, label {label}"
            ))?;
        }
        super::print_line(format_args!(
            "{} examples in lockstep: {:.1} s ({:.1} s bootstrapping), {} bootstraps (per layer {:?}, head {})",
            inputs.len(),
            result.seconds,
            result.bootstrap_seconds,
            result.bootstraps,
            result.layer_bootstraps,
            result.head_bootstraps
        ))?;
        inference_seconds += result.seconds;
        bootstrap_seconds += result.bootstrap_seconds;
        bootstraps_of_first.get_or_insert((result.layer_bootstraps, result.head_bootstraps));
    }
    let (layer_bootstraps, head_bootstraps) = bootstraps_of_first.unwrap_or_default();
    let count = data.len();
    let share = |n: usize| n as f64 / count as f64;
    let summary = Summary {
        params: params.name().to_string(),
        security_bits: params.estimated_security_bits(),
        log_n: params.log_n(),
        backend: ctx.backend().kind().to_string(),
        model: format!("{:?} ({} layers)", args.model.model, args.model.layers).to_lowercase(),
        examples: count,
        agreement: share(same),
        agreement_exact: share(same_exact),
        accuracy: share(correct),
        twin_accuracy: share(twin_correct),
        exact_accuracy: share(exact_correct),
        precision_bits: precision,
        layer_bootstraps,
        head_bootstraps,
        keygen_seconds,
        inference_seconds: inference_seconds / count as f64,
        bootstrap_seconds: bootstrap_seconds / count as f64,
        seconds: start.elapsed().as_secs_f64(),
        note: accuracy_note(&args.model),
    };
    if args.json {
        return super::print_line(format_args!(
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        ));
    }
    let s = &summary;
    let security = s.security_bits.map_or_else(
        || "none (INSECURE test set)".into(),
        |b| format!("{b:.0} bits"),
    );
    super::print_line(format_args!(
        "params {} (log_n {}, security {security}), backend {}, model {}\n\
         examples {}: agreement with the twin {:.2}, with the exact model {:.2}\n\
         accuracy {:.2} (twin {:.2}, exact {:.2}; {})\n\
         precision {:.1} bits (logits against the twin, worst example)\n\
         bootstraps per layer {:?}, head {}\n\
         keys {:.1} s, encrypted inference {:.1} s per example, {:.1} s in all",
        s.params,
        s.log_n,
        s.backend,
        s.model,
        s.examples,
        s.agreement,
        s.agreement_exact,
        s.accuracy,
        s.twin_accuracy,
        s.exact_accuracy,
        s.note,
        s.precision_bits,
        s.layer_bootstraps,
        s.head_bootstraps,
        s.keygen_seconds,
        s.inference_seconds,
        s.seconds
    ))
}
