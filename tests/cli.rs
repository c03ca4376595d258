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
