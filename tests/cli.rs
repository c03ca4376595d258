//! The client/server commands through files (keygen → encrypt → infer →
//! decrypt in a temporary directory), their errors, and `demo --json`, on
//! the tiny test model (`--model tiny`: random weights, toy embedding, no
//! assets) at `TEST_INSECURE_BOOT_N11_L9`. The server runs with the secret
//! key moved out of the keys directory: it never needs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PARAMS: &str = "TEST_INSECURE_BOOT_N11_L9";

fn heformer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heformer"))
        .args(args)
        .output()
        .expect("the heformer binary runs")
}

/// Runs and asserts success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = heformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "heformer {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs and asserts a clean failure (an `error:` line, no panic); returns
/// stderr.
fn fails(args: &[&str]) -> String {
    let out = heformer(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "heformer {args:?}: {stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heformer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn client_and_server_through_files() {
    let dir = temp_dir("cli");
    let (keys, enc, out) = (dir.join("keys"), dir.join("enc"), dir.join("out"));
    let data = dir.join("data.jsonl");
    std::fs::write(
        &data,
        "{\"review\": \"warm, funny and moving\", \"sentiment\": \"positive\"}\n\
         {\"review\": \"dull and far too long\", \"sentiment\": \"negative\"}\n",
    )
    .unwrap();
    let columns = ["--text-column", "review", "--label-column", "sentiment"];
    let stderr = String::from_utf8_lossy(
        &heformer(&[
            "keygen",
            "--out",
            s(&keys),
            "--params",
            PARAMS,
            "--model",
            "tiny",
            "--seed",
            "7",
        ])
        .stderr,
    )
    .into_owned();
    assert!(stderr.contains("INSECURE"), "{stderr}");
    assert!(keys.join("secret.key").is_file() && keys.join("eval/galois.keys").is_file());

    let mut encrypt = vec![
        "encrypt",
        "--keys",
        s(&keys),
        "--data",
        s(&data),
        "--limit",
        "1",
    ];
    encrypt.extend(columns);
    encrypt.extend(["--out", s(&enc)]);
    ok(&encrypt);

    // The server, the secret key out of reach.
    let hidden = dir.join("secret.key.client");
    std::fs::rename(keys.join("secret.key"), &hidden).unwrap();
    let eval = keys.join("eval");
    let report = ok(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out),
    ]);
    assert!(report.contains("bootstraps"), "{report}");
    // Keys made without --encrypted-adapters serve no fine-tuning and take
    // no adapters.
    let refused = fails(&[
        "finetune",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&dir.join("run")),
    ]);
    assert!(refused.contains("--encrypted-adapters"), "{refused}");
    let refused = fails(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out),
        "--adapters",
        s(&dir.join("run/checkpoint.ckpt")),
    ]);
    assert!(refused.contains("--encrypted-adapters"), "{refused}");
    assert!(fails(&[
        "infer",
        "--eval-keys",
        s(&keys),
        "--input",
        s(&enc),
        "--out",
        s(&out)
    ])
    .contains("eval"));
    std::fs::rename(&hidden, keys.join("secret.key")).unwrap();

    let mut decrypt = vec![
        "decrypt",
        "--keys",
        s(&keys),
        "--input",
        s(&out),
        "--data",
        s(&data),
        "--limit",
        "1",
    ];
    decrypt.extend(columns);
    let report = ok(&decrypt);
    assert!(
        report.contains("predicted") && report.contains("accuracy"),
        "{report}"
    );

    // Clean errors: a corrupt example, missing files, an unknown preset.
    let example = enc.join("example-0000.ct");
    let bytes = std::fs::read(&example).unwrap();
    std::fs::write(&example, &bytes[..bytes.len() / 2]).unwrap();
    fails(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out),
    ]);
    fails(&[
        "decrypt",
        "--keys",
        s(&dir.join("nowhere")),
        "--input",
        s(&out),
    ]);
    fails(&[
        "keygen",
        "--out",
        s(&dir.join("k2")),
        "--params",
        "NO_SUCH_PRESET",
        "--model",
        "tiny",
    ]);
    fails(&[
        "keygen",
        "--out",
        s(&dir.join("k3")),
        "--params",
        "PN16_128",
        "--model",
        "tiny",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_prints_one_json_object_last() {
    let stdout = ok(&[
        "demo",
        "--json",
        "--model",
        "tiny",
        "--params",
        PARAMS,
        "--examples",
        "3",
        "--batch",
        "2",
        "--seed",
        "3",
    ]);
    // Two batches: two examples in lockstep, then one.
    let batches: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains("in lockstep"))
        .collect();
    assert_eq!(batches.len(), 2, "{stdout}");
    assert!(batches[0].starts_with("2 examples") && batches[1].starts_with("1 examples"));
    let last = stdout.lines().last().unwrap();
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in [
        "security_bits",
        "log_n",
        "backend",
        "examples",
        "agreement",
        "accuracy",
        "precision_bits",
        "seconds",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing in {last}");
    }
    assert_eq!(summary["examples"], 3);
    assert_eq!(summary["agreement"], 1.0);
    assert!(
        summary["precision_bits"].as_f64().unwrap() >= 10.0,
        "{last}"
    );
}

/// The demo's private fine-tuning (tiny model, one layer): one encrypted
/// step beside the twin's, the adapters compared in bits, then `--eval`'s
/// held-out accuracies: the decrypted adapters classify the toy sentences
/// as the twin trained the same way does.
#[test]
fn demo_fine_tunes_then_measures_held_out_accuracy() {
    let stdout = ok(&[
        "demo",
        "--json",
        "--model",
        "tiny",
        "--layers",
        "1",
        "--params",
        PARAMS,
        "--examples",
        "2",
        "--finetune-steps",
        "1",
        "--finetune-batch",
        "2",
        "--eval",
        "6",
        "--seed",
        "3",
    ]);
    assert!(
        stdout.contains("held-out accuracy on 6 sentences"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["finetune_steps"], 1);
    assert_eq!(summary["eval_examples"], 6);
    assert!(summary["finetune_step_seconds"].as_f64().unwrap() > 0.0);
    assert!(summary["adapter_bits"].as_f64().unwrap() >= 5.0, "{last}");
    assert!(
        summary["parameter_bits"].as_f64().unwrap() >= 12.0,
        "{last}"
    );
    for key in [
        "eval_accuracy_before",
        "eval_accuracy_encrypted",
        "eval_accuracy_twin",
    ] {
        let accuracy = summary[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{key} in {last}");
    }
    assert_eq!(
        summary["eval_accuracy_encrypted"], summary["eval_accuracy_twin"],
        "{last}"
    );
}

/// `rehearse`: the private fine-tuning's twin, with held-out accuracy every
/// `--every` steps and after the last; bad options fail cleanly.
#[test]
fn rehearse_measures_the_twin_along_the_way() {
    let dir = temp_dir("rehearse");
    let weights = dir.join("rehearsed.safetensors");
    let stdout = ok(&[
        "rehearse",
        "--json",
        "--model",
        "tiny",
        "--layers",
        "1",
        "--steps",
        "5",
        "--batch",
        "2",
        "--warmup",
        "1",
        "--eval",
        "6",
        "--every",
        "2",
        "--output",
        s(&weights),
    ]);
    let last = stdout.lines().last().unwrap();
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["steps"], 5);
    assert_eq!(summary["eval_examples"], 6);
    let steps: Vec<u64> = summary["accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [0, 2, 4, 5], "{last}");
    assert_eq!(summary["accuracy_after"], summary["accuracy"][3][1]);
    assert!(
        summary["final_loss"].as_f64().unwrap().is_finite(),
        "{last}"
    );
    assert!(std::fs::metadata(&weights).unwrap().len() > 0);
    for bad in ["--batch=0", "--lr=-1", "--steps=0"] {
        fails(&["rehearse", "--model", "tiny", "--layers", "1", bad]);
    }
}

/// The paper's comparison at the tiny shape (one layer): a record per
/// design, then the ratios, each time measured and every logit close to
/// the twin's.
#[test]
fn bench_compare_prints_both_designs_and_the_ratios() {
    let stdout = ok(&[
        "bench", "compare", "--json", "--shape", "tiny", "--layers", "1", "--params", PARAMS,
        "--seed", "3",
    ]);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{stdout}");
    for (record, design) in records.iter().zip(["friendly", "baseline"]) {
        assert_eq!(record["design"], design);
        assert!(
            record["inference_precision_bits"].as_f64().unwrap() >= 10.0,
            "{record}"
        );
        assert!(
            record["finetune_bootstraps"].as_u64().unwrap() > 0,
            "{record}"
        );
    }
    assert_eq!(records[1]["attention"], "softmax");
    let last = &records[2];
    for key in [
        "finetune_ratio",
        "inference_ratio",
        "shape",
        "backend",
        "friendly_finetune_seconds",
        "friendly_inference_seconds",
        "baseline_finetune_seconds",
        "baseline_inference_seconds",
    ] {
        assert!(last.get(key).is_some(), "{key} missing in {last}");
    }
    assert_eq!(last["shape"]["hidden"], 16);
    let ratio = last["baseline_finetune_seconds"].as_f64().unwrap()
        / last["friendly_finetune_seconds"].as_f64().unwrap();
    assert!((last["finetune_ratio"].as_f64().unwrap() - ratio).abs() < 1e-9);
    // A shape the model refuses is a clean error.
    fails(&[
        "bench", "compare", "--shape", "tiny", "--heads", "3", "--params", PARAMS,
    ]);
}

/// Private fine-tuning through files: keys for encrypted adapters, the
/// training data encrypted with its labels, two steps on the server, then
/// inference with the encrypted adapters and decryption. A run stopped
/// after step 1 and started again resumes from its checkpoint and ends
/// with the same file as an uninterrupted run.
#[test]
fn private_fine_tuning_through_files_resumes_exactly() {
    let dir = temp_dir("cli-finetune");
    let (keys, enc, out) = (dir.join("keys"), dir.join("enc"), dir.join("out"));
    let data = dir.join("data.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"warm, funny and moving\", \"label\": \"positive\"}\n\
         {\"text\": \"dull and far too long\", \"label\": \"negative\"}\n",
    )
    .unwrap();
    ok(&[
        "keygen",
        "--out",
        s(&keys),
        "--params",
        PARAMS,
        "--model",
        "tiny",
        "--encrypted-adapters",
        "--seed",
        "7",
    ]);
    assert!(keys.join("eval/public.key").is_file());
    ok(&[
        "encrypt",
        "--keys",
        s(&keys),
        "--data",
        s(&data),
        "--labels",
        "--out",
        s(&enc),
    ]);
    assert!(enc.join("example-0001.label.ct").is_file());
    let eval = keys.join("eval");
    let finetune = |run: &Path, steps: &str| {
        ok(&[
            "finetune",
            "--eval-keys",
            s(&eval),
            "--input",
            s(&enc),
            "--out",
            s(run),
            "--steps",
            steps,
            "--batch",
            "2",
            "--lr",
            "0.01",
            "--seed",
            "11",
        ])
    };
    let (whole, split) = (dir.join("whole"), dir.join("split"));
    let report = finetune(&whole, "2");
    assert!(
        report.contains("step 2/2") && report.contains("per epoch"),
        "{report}"
    );
    let report = finetune(&split, "1");
    assert!(report.contains("step 1/1"), "{report}");
    let report = finetune(&split, "2");
    assert!(
        report.contains("step 2/2") && !report.contains("step 1/"),
        "{report}"
    );
    let checkpoint = |run: &Path| std::fs::read(run.join("checkpoint.ckpt")).unwrap();
    assert!(
        checkpoint(&whole) == checkpoint(&split),
        "the resumed run differs"
    );
    assert!(finetune(&split, "2").contains("nothing to do"));
    // Training data without its labels is refused before any work.
    let unlabelled = dir.join("unlabelled");
    std::fs::create_dir_all(&unlabelled).unwrap();
    std::fs::copy(
        enc.join("example-0000.ct"),
        unlabelled.join("example-0000.ct"),
    )
    .unwrap();
    let refused = fails(&[
        "finetune",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&unlabelled),
        "--out",
        s(&dir.join("run3")),
    ]);
    assert!(refused.contains("--labels"), "{refused}");

    // Inference with the encrypted adapters; without them it is refused.
    ok(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out),
        "--adapters",
        s(&whole.join("checkpoint.ckpt")),
    ]);
    assert!(fails(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out)
    ])
    .contains("--adapters"));
    let report = ok(&[
        "decrypt",
        "--keys",
        s(&keys),
        "--input",
        s(&out),
        "--data",
        s(&data),
    ]);
    assert!(report.contains("accuracy"), "{report}");
    // A truncated checkpoint is a clean error.
    let path = whole.join("checkpoint.ckpt");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    fails(&[
        "infer",
        "--eval-keys",
        s(&eval),
        "--input",
        s(&enc),
        "--out",
        s(&out),
        "--adapters",
        s(&path),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}
