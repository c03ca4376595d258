//! `heformer demo`: the whole exchange in one process (keys, encryption,
//! encrypted inference, decryption) on a few real sentences, compared with
//! the plaintext twin (the same polynomials: the difference is CKKS noise
//! and bootstrapping error) and with the exact non-linearities. With
//! `--finetune-steps K`, a short private fine-tuning comes first: `K`
//! encrypted steps of the adapters on training sentences (encrypted with
//! their labels), beside the same steps in `f64` (the twin trained the same
//! way), and the inference runs with the encrypted adapters it produced.
//! With `--json` the last line is one JSON object ([`Summary`]).

use std::path::PathBuf;
use std::time::Instant;

use super::client::{accuracy_note, argmax, classes, twin_accuracy, Client, Columns};
use super::infer::Server;
use super::keygen::{generate_keys, prng, DEFAULT_PARAMS};
use super::model::{load_model, LoadedModel, ModelSpec};
use super::BackendArgs;
use crate::error::{Error, Result};
use crate::model::encrypted::adamw::{EncryptedAdamW, EncryptedAdamWConfig};
use crate::model::encrypted::finetune::{
    flatten_adapters, parameter_change, set_trained_parameters, trained_parameters, TwinFineTuning,
};
use crate::model::encrypted::head::flatten_head;
use crate::model::encrypted::{
    AdapterMode, EncryptedAdapters, FineTuning, LabeledInput, ServerSetup,
};
use crate::model::friendly::{agreement, FriendlyModel, Variant};

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
    /// Private fine-tuning steps before the inference (the adapters then
    /// travel encrypted).
    #[arg(long, default_value_t = 0)]
    finetune_steps: u64,
    /// Training sentences per fine-tuning step (the first ones of the
    /// training split, then the next ones).
    #[arg(long, default_value_t = 2)]
    finetune_batch: usize,
    /// The fine-tuning's (constant) learning rate (AdamW's first steps
    /// move every parameter by about this much: a short run takes small
    /// steps; `heformer rehearse` finds a schedule for a long one).
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    /// After fine-tuning, the client decrypts its adapters and measures in
    /// the clear, on this many held-out sentences (the model's held-out
    /// split), the accuracy before fine-tuning, with the adapters it
    /// decrypted, and with the twin's trained the same way (0: none).
    #[arg(long, default_value_t = 0)]
    eval: usize,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The logits' bound the demo's loss is fitted on.
const LOGIT_BOUND: f64 = 4.0;

/// What the fine-tuning produced.
struct Tuned {
    /// The twin with the adapters the `f64` steps gave.
    twin: FriendlyModel,
    /// The twin with the adapters the encrypted steps gave (decrypted).
    decrypted: FriendlyModel,
    /// Mean wall time of a step, and the bootstraps of all steps.
    step_seconds: f64,
    bootstraps: usize,
    /// The encrypted adapters' change against the polynomial twin's and
    /// the exact twin's, in bits.
    adapter_bits: f64,
    adapter_bits_exact: f64,
    /// The trained parameters themselves against the polynomial twin's,
    /// in bits of their largest magnitude.
    parameter_bits: f64,
    /// The twin's loss on each step's batch.
    losses: Vec<f64>,
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
    /// Private fine-tuning steps, sentences per step, and the mean time of
    /// a step (forward, loss, backward, optimizer).
    finetune_steps: u64,
    finetune_batch: usize,
    finetune_step_seconds: Option<f64>,
    /// The encrypted adapters' change against the twin trained the same
    /// way (the circuit's polynomials: CKKS noise and bootstrapping alone),
    /// and against the exact twin (the polynomials' errors too), in bits.
    adapter_bits: Option<f64>,
    adapter_bits_exact: Option<f64>,
    /// The trained parameters themselves against the polynomial twin's,
    /// in bits of their largest magnitude (the change's bits shrink with
    /// the rate; the parameters' absolute noise does not).
    parameter_bits: Option<f64>,
    /// The twin's accuracy on the examples before fine-tuning.
    twin_accuracy_before: Option<f64>,
    /// Bootstraps of all fine-tuning steps, and the twin's loss on each
    /// step's batch.
    finetune_bootstraps: Option<usize>,
    twin_losses: Vec<f64>,
    /// With `--eval N`: the held-out sentences, and the accuracy on them
    /// before fine-tuning, with the decrypted adapters of the encrypted
    /// run, and with the twin's (all in the clear, on the client).
    eval_examples: usize,
    eval_accuracy_before: Option<f64>,
    eval_accuracy_encrypted: Option<f64>,
    eval_accuracy_twin: Option<f64>,
}

/// Held-out accuracies of `--eval` (see [`Summary`]).
struct HeldOut {
    examples: usize,
    before: f64,
    encrypted: f64,
    twin: f64,
}

pub(super) fn run(args: &DemoArgs) -> Result<()> {
    let start = Instant::now();
    let mut spec = args.model.clone();
    spec.encrypted_adapters |= args.finetune_steps > 0;
    let model = load_model(&spec)?;
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
    let (mut adapters, tuned) = match model.adapters {
        AdapterMode::Encrypted => {
            let (adapters, tuned) = fine_tune(args, &model, &server, &mut client)?;
            (Some(adapters), Some(tuned))
        }
        AdapterMode::Merged => (None, None),
        AdapterMode::Full => {
            return Err(Error::InvalidParameters(
                "demo: full fine-tuning is the comparison's baseline (heformer bench compare)"
                    .into(),
            ))
        }
    };
    let twin_model = tuned.as_ref().map_or(&model.twin, |t| &t.twin);

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
        let result = server.infer(&encrypted, adapters.as_mut())?;
        for (offset, ((input, &label), ciphertext)) in
            inputs.iter().zip(labels).zip(&result.logits).enumerate()
        {
            let logits = client.logits(server.model(), ciphertext)?;
            let forward = |variant| {
                twin_model
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
    let twin_accuracy_before = match &tuned {
        Some(_) => {
            let mut correct_before = 0;
            for (input, &label) in inputs.iter().zip(&labels) {
                let trace = model.twin.forward(
                    input.embeddings.view(),
                    &input.mask,
                    Variant::Polynomial,
                )?;
                correct_before += usize::from(argmax(&trace.logits) == label);
            }
            Some(share(correct_before))
        }
        None => None,
    };
    let held_out = match &tuned {
        Some(tuned) if args.eval > 0 => Some(held_out_accuracies(&model, tuned, args.eval)?),
        _ => None,
    };
    if let Some(h) = &held_out {
        super::print_line(format_args!(
            "held-out accuracy on {} sentences (the client, in the clear): before fine-tuning {:.4}, with the decrypted adapters {:.4}, with the twin's {:.4}",
            h.examples, h.before, h.encrypted, h.twin
        ))?;
    }
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
        finetune_steps: args.finetune_steps,
        finetune_batch: args.finetune_batch,
        finetune_step_seconds: tuned
            .as_ref()
            .filter(|_| args.finetune_steps > 0)
            .map(|t| t.step_seconds),
        adapter_bits: tuned
            .as_ref()
            .filter(|_| args.finetune_steps > 0)
            .map(|t| t.adapter_bits),
        adapter_bits_exact: tuned
            .as_ref()
            .filter(|_| args.finetune_steps > 0)
            .map(|t| t.adapter_bits_exact),
        parameter_bits: tuned
            .as_ref()
            .filter(|_| args.finetune_steps > 0)
            .map(|t| t.parameter_bits),
        twin_accuracy_before,
        finetune_bootstraps: tuned
            .as_ref()
            .filter(|_| args.finetune_steps > 0)
            .map(|t| t.bootstraps),
        twin_losses: tuned.as_ref().map(|t| t.losses.clone()).unwrap_or_default(),
        eval_examples: held_out.as_ref().map_or(0, |h| h.examples),
        eval_accuracy_before: held_out.as_ref().map(|h| h.before),
        eval_accuracy_encrypted: held_out.as_ref().map(|h| h.encrypted),
        eval_accuracy_twin: held_out.as_ref().map(|h| h.twin),
    };
    if args.json {
        return super::print_line(format_args!(
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        ));
    }
    let s = &summary;
    if let (Some(step), Some(bits), Some(before)) = (
        s.finetune_step_seconds,
        s.adapter_bits,
        s.twin_accuracy_before,
    ) {
        super::print_line(format_args!(
            "private fine-tuning: {} steps of {} sentences, {step:.1} s per step, adapters {bits:.1} bits against the twin's; twin accuracy before {before:.2}",
            s.finetune_steps, s.finetune_batch
        ))?;
    }
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

/// The accuracies of `--eval`: the first `count` held-out sentences through
/// the circuit's polynomials, before fine-tuning, with the decrypted
/// adapters, and with the twin's.
///
/// Errors: no held-out sentence, those of the embedding and the twin.
fn held_out_accuracies(model: &LoadedModel, tuned: &Tuned, count: usize) -> Result<HeldOut> {
    let mut data = model.held_out.clone();
    data.examples.truncate(count);
    if data.is_empty() {
        return Err(Error::OutOfRange {
            op: "demo",
            detail: "--eval: no held-out sentences".into(),
        });
    }
    let classes_count = model.twin.config().classes;
    let (_, labels) = classes(&data, model.held_out.label_set(), classes_count)?;
    let inputs = model.embed(&data.texts())?;
    let accuracy = |twin: &FriendlyModel| twin_accuracy(twin, &inputs, &labels);
    Ok(HeldOut {
        examples: inputs.len(),
        before: accuracy(&model.twin)?,
        encrypted: accuracy(&tuned.decrypted)?,
        twin: accuracy(&tuned.twin)?,
    })
}

/// The demo's private fine-tuning: the model's adapters encrypted by the
/// client, `--finetune-steps` steps on the server (each on the next
/// `--finetune-batch` training sentences, encrypted with their labels),
/// the same steps on the twin in `f64`, and the adapters compared.
fn fine_tune(
    args: &DemoArgs,
    model: &LoadedModel,
    server: &Server,
    client: &mut Client,
) -> Result<(EncryptedAdapters, Tuned)> {
    let config = model.twin.config();
    let optimizer_config = EncryptedAdamWConfig::default();
    let level = server.input_level();
    let mut adapters = client.encrypt_adapters(
        &model.twin,
        server.model(),
        level,
        optimizer_config.parameter_bound,
    )?;
    let gradient_bounds = model
        .gradient_bounds
        .ok_or_else(|| Error::InvalidParameters("no gradient bounds".into()))?;
    eprintln!("gradient bounds (of the loss-scaled backward): {gradient_bounds:?}");
    let scales = model
        .gradient_scales
        .clone()
        .ok_or_else(|| Error::InvalidParameters("no gradient scales".into()))?;
    let tuning = FineTuning::new(server.model(), gradient_bounds, LOGIT_BOUND)?
        .with_gradient_scales(scales.clone());
    eprintln!(
        "{} parameter ciphertexts, {} in the optimizer's compact view",
        adapters.parameters().len(),
        adapters.optimizer_count()
    );
    let mut optimizer =
        EncryptedAdamW::new(optimizer_config, vec![true; adapters.optimizer_count()])?;
    let twin_of = |variant| {
        TwinFineTuning::new(&model.twin, optimizer_config, variant)?
            .with_gradient_scales(scales.clone())
    };
    let (mut twin, mut exact_twin) = (twin_of(Variant::Polynomial)?, twin_of(Variant::Exact)?);
    let mut weights = model.twin.weights().clone();
    let mut exact_weights = weights.clone();
    let initial = trained_parameters(&weights, adapters.targets())?;
    let needed = args.finetune_steps as usize * args.finetune_batch;
    let mut train = model.train.clone();
    if train.len() < needed {
        return Err(Error::OutOfRange {
            op: "demo",
            detail: format!("{needed} training sentences wanted, {} held", train.len()),
        });
    }
    train.examples.truncate(needed);
    let (_, train_labels) = classes(&train, model.train.label_set(), config.classes)?;
    let train_inputs = model.embed(&train.texts())?;
    let (mut seconds, mut bootstraps, mut losses) = (0.0, 0, Vec::new());
    let batches = train_inputs
        .chunks(args.finetune_batch.max(1))
        .zip(train_labels.chunks(args.finetune_batch.max(1)));
    for (step, (inputs, labels)) in batches.enumerate() {
        let batch = inputs
            .iter()
            .zip(labels)
            .map(|(input, &label)| {
                Ok(LabeledInput {
                    input: client.encrypt(server.model(), input, level)?,
                    label: client.encrypt_label(server.model(), label, level)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let clock = Instant::now();
        let report = tuning.step(
            server.evaluator(),
            &mut adapters,
            &mut optimizer,
            &batch,
            (batch.len(), args.lr),
            &mut server.refresher(),
        )?;
        server.evaluator().context().backend().synchronize()?;
        let step_seconds = clock.elapsed().as_secs_f64();
        seconds += step_seconds;
        bootstraps += report.bootstraps;
        let sequences: Vec<_> = inputs
            .iter()
            .zip(labels)
            .map(|(input, &label)| (input.embeddings.view(), input.mask.as_slice(), label))
            .collect();
        let loss = twin.step(&mut weights, &sequences, args.lr)?;
        exact_twin.step(&mut exact_weights, &sequences, args.lr)?;
        losses.push(loss);
        super::print_line(format_args!(
            "fine-tuning step {}: {} sentences, {step_seconds:.1} s (forward {:.1} s, backward {:.1} s, optimizer {:.1} s; {} bootstraps, {:.1} s), twin loss {loss:.4}",
            step + 1,
            batch.len(),
            report.forward_seconds,
            report.backward_seconds,
            report.optimizer_seconds,
            report.bootstraps,
            report.bootstrap_seconds,
        ))?;
    }
    let decrypted = client.decrypt_adapters(server.model(), &adapters)?;
    let mut got = flatten_adapters(&decrypted.adapters.iter().flatten().collect::<Vec<_>>());
    got.extend(flatten_head(&decrypted.head));
    let mut decrypted_weights = model.twin.weights().clone();
    set_trained_parameters(&mut decrypted_weights, adapters.targets(), &got)?;
    let want = trained_parameters(&weights, adapters.targets())?;
    let want_exact = trained_parameters(&exact_weights, adapters.targets())?;
    let change = |after: &[Vec<f64>]| parameter_change(&initial, after);
    let adapter_bits = agreement(&change(&got), &change(&want));
    let adapter_bits_exact = agreement(&change(&got), &change(&want_exact));
    let parameter_bits = agreement(got.iter().flatten(), want.iter().flatten());
    if args.finetune_steps > 0 {
        super::print_line(format_args!(
            "encrypted adapters after {} steps: their change agrees with the twin's to {adapter_bits:.1} bits (with the exact twin's to {adapter_bits_exact:.1} bits), the parameters themselves to {parameter_bits:.1} bits",
            args.finetune_steps
        ))?;
    }
    Ok((
        adapters,
        Tuned {
            twin: FriendlyModel::new(config.clone(), weights)?,
            decrypted: FriendlyModel::new(config.clone(), decrypted_weights)?,
            step_seconds: seconds / args.finetune_steps.max(1) as f64,
            bootstraps,
            adapter_bits,
            adapter_bits_exact,
            parameter_bits,
            losses,
        },
    ))
}
