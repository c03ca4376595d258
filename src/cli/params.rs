//! `heformer params`: the preset table, with the presets that can bootstrap
//! marked (they have a [`BootstrapConfig::for_preset`]).

use crate::circuits::boot::BootstrapConfig;
use crate::error::Result;
use crate::params::{preset_summaries, Parameters};

/// Whether the preset `name` has a bootstrapping configuration.
fn can_bootstrap(name: &str) -> Result<bool> {
    Ok(BootstrapConfig::for_preset(&Parameters::preset(name)?).is_some())
}

pub(super) fn run(json: bool) -> Result<()> {
    let summaries = preset_summaries();
    if json {
        for s in &summaries {
            let mut value = serde_json::to_value(s).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("bootstrap".into(), can_bootstrap(&s.name)?.into());
            }
            super::print_line(format_args!("{value}"))?;
        }
        return Ok(());
    }
    super::print_line(format_args!(
        "{:<26} {:>5} {:>8} {:>6} {:>5} {:>24} {:>9} {:>8} {:>5}",
        "name", "logN", "logQP", "levels", "dnum", "secret", "security", "claimed", "boot"
    ))?;
    for s in &summaries {
        let security = s
            .security_bits_estimate
            .map_or_else(|| "-".to_string(), |b| format!("{b:.0}"));
        let boot = if can_bootstrap(&s.name)? { "yes" } else { "-" };
        super::print_line(format_args!(
            "{:<26} {:>5} {:>8.1} {:>6} {:>5} {:>24} {:>9} {:>8} {:>5}",
            s.name, s.log_n, s.log_qp, s.levels, s.dnum, s.secret, security, s.claimed, boot
        ))?;
    }
    Ok(())
}
