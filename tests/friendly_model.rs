//! The friendly transformer built from all-MiniLM-L6-v2's first two layers
//! (`FriendlyWeights::from_bert`), one tokenized sentence through the exact
//! and the polynomial forward, per-layer agreement printed in bits.
//!
//! The mapped model is not MiniLM (pre-LN, Gaussian-kernel attention, GLU
//! with ReLU; see `heformer::model::friendly::weights`), so nothing is
//! compared with MiniLM's own outputs; what is checked is that its
//! activations stay inside the ranges chosen below and that the twin
//! tracks the exact forward there.
//!
//! Needs the assets of `scripts/fetch-assets.sh`; without them it prints
//! `SKIPPED` and the reason, and passes.

use heformer::assets::{describe_missing, AssetPaths};
use heformer::data::tokenizer::SentenceTokenizer;
use heformer::model::config::BertConfig;
use heformer::model::friendly::{
    ApproximationRanges, FriendlyConfig, FriendlyModel, FriendlyWeights, Variant,
};
use heformer::model::reference::ReferenceBert;
use heformer::model::weights::BertWeights;

const SEQ_LEN: usize = 32;
const SENTENCE: &str = "a gripping, beautifully shot film that never loses its nerve.";

#[test]
fn friendly_model_from_minilm_twin_against_exact() {
    let assets = AssetPaths::from_env();
    if let Some(reason) = describe_missing(&assets.minilm_files()) {
        println!("SKIPPED friendly_model_from_minilm_twin_against_exact: {reason}");
        return;
    }
    let bert_config = BertConfig::from_file(&assets.minilm_config()).unwrap();
    let bert = BertWeights::load(&assets.minilm_weights(), bert_config.clone()).unwrap();
    let config = FriendlyConfig {
        hidden: bert_config.hidden_size,
        heads: bert_config.num_attention_heads,
        ffn: bert_config.intermediate_size,
        seq_len: SEQ_LEN,
        layer_norm_eps: bert_config.layer_norm_eps,
        // Measured on this sentence: with ReLU on [−16, 16] three gate inputs
        // fall outside, with variances on [1/4, 64] seventeen; these ranges
        // hold every input (the default exp range does too).
        ranges: ApproximationRanges {
            relu_bound: 64.0,
            variance: (1.0 / 256.0, 1024.0),
            ..ApproximationRanges::default()
        },
        ..FriendlyConfig::default()
    };
    let weights = FriendlyWeights::from_bert(&bert, &config, 1).unwrap();
    let model = FriendlyModel::new(config, weights).unwrap();

    let tokenizer = SentenceTokenizer::from_file(&assets.minilm_tokenizer(), SEQ_LEN).unwrap();
    let batch = tokenizer.encode_batch(&[SENTENCE]).unwrap();
    let ids = batch.ids.row(0).to_vec();
    let mask = batch.attention_mask.row(0).to_vec();
    let embeddings = ReferenceBert::new(bert)
        .hidden_states(&ids, &mask, 0)
        .unwrap();

    let exact = model
        .forward(embeddings.view(), &mask, Variant::Exact)
        .unwrap();
    let twin = model
        .forward(embeddings.view(), &mask, Variant::Polynomial)
        .unwrap();
    println!("fitted errors {:?}", model.polynomials().errors());
    println!(
        "range violations: exact {:?}, twin {:?}",
        exact.violations, twin.violations
    );
    let stages = twin.agreement_bits(&exact);
    // As in the unit test: the worst fitted error relative to its
    // function's scale, less 4 bits of amplification.
    let floor = -model.worst_relative_fit_error().log2() - 4.0;
    assert_eq!(exact.violations.total(), 0, "{:?}", exact.violations);
    assert_eq!(twin.violations.total(), 0, "{:?}", twin.violations);
    for (stage, stage_bits) in &stages {
        println!("MiniLM (2 layers) twin vs exact, {stage:>17}: {stage_bits:5.1} bits");
        assert!(
            *stage_bits >= floor,
            "{stage}: {stage_bits:.1} < {floor:.1}"
        );
    }
}
