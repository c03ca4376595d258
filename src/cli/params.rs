//! `heformer params`: the preset table.

use crate::error::Result;
use crate::params::preset_summaries;

pub(super) fn run(json: bool) -> Result<()> {
    let summaries = preset_summaries();
    if json {
        for s in &summaries {
            super::print_line(format_args!(
                "{}",
                serde_json::to_string(s).unwrap_or_default()
            ))?;
        }
        return Ok(());
    }
    super::print_line(format_args!(
        "{:<24} {:>5} {:>8} {:>6} {:>5} {:>24} {:>9} {:>8}",
        "name", "logN", "logQP", "levels", "dnum", "secret", "security", "claimed"
    ))?;
    for s in &summaries {
        let security = s
            .security_bits_estimate
            .map_or_else(|| "-".to_string(), |b| format!("{b:.0}"));
        super::print_line(format_args!(
            "{:<24} {:>5} {:>8.1} {:>6} {:>5} {:>24} {:>9} {:>8}",
            s.name, s.log_n, s.log_qp, s.levels, s.dnum, s.secret, security, s.claimed
        ))?;
    }
    Ok(())
}
