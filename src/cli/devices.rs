//! `heformer devices`: the compute backends, whether each answers, and what
//! a `--backend` choice resolves to.

use super::{print_line, BackendArgs};
use crate::backend::{create_backend, probe_backends};
use crate::error::Result;

pub(super) fn run(json: bool, choice: &BackendArgs) -> Result<()> {
    let probes = probe_backends();
    if !json {
        print_line(format_args!(
            "{:<7} {:<11} device or reason",
            "backend", "status"
        ))?;
    }
    for (kind, probe) in &probes {
        let (available, detail) = match probe {
            Ok(device) => (true, device.clone()),
            Err(e) => (false, e.to_string()),
        };
        if json {
            let line = serde_json::json!({
                "backend": kind.to_string(),
                "available": available,
                "detail": detail,
            });
            print_line(format_args!("{line}"))?;
        } else {
            let status = if available {
                "available"
            } else {
                "unavailable"
            };
            print_line(format_args!(
                "{:<7} {status:<11} {detail}",
                kind.to_string()
            ))?;
        }
    }
    let chosen = create_backend(choice.backend, choice.threads)?;
    if json {
        let line = serde_json::json!({
            "choice": format!("{:?}", choice.backend).to_lowercase(),
            "backend": chosen.kind().to_string(),
            "device": chosen.device_name(),
        });
        print_line(format_args!("{line}"))
    } else {
        print_line(format_args!(
            "--backend {}: {} on {}",
            format!("{:?}", choice.backend).to_lowercase(),
            chosen.kind(),
            chosen.device_name()
        ))
    }
}
