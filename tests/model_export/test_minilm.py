"""The MiniLM -> DistilBERT weight mapping computes the same hidden states as the BertModel."""

from __future__ import annotations

import torch
import transformers

from brandmon.model_export.minilm import distilbert_from_minilm, minilm_dir, minilm_tokenizer

SENTENCES = [
    "The new update broke my phone's camera, again.",
    "Lovely weather in Lisbon today!",
]


def test_mapped_distilbert_hidden_states_equal_the_bert_model() -> None:
    bert = transformers.BertModel.from_pretrained(str(minilm_dir())).eval()
    distil = distilbert_from_minilm({0: "negative", 1: "neutral", 2: "positive"}).eval()
    tokenizer = minilm_tokenizer()
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert set(enc) == {"input_ids", "attention_mask"}  # no token_type_ids
    with torch.inference_mode():
        expected = bert(**enc).last_hidden_state
        got = distil.distilbert(**enc).last_hidden_state
    real = enc["attention_mask"].bool()
    assert (got[real] - expected[real]).abs().max().item() < 1e-4


def test_position_embeddings_include_token_type_zero() -> None:
    from brandmon.model_export.minilm import load_bert_state

    bert = load_bert_state(minilm_dir())
    distil = distilbert_from_minilm({0: "negative", 1: "positive"})
    expected = (
        bert["embeddings.position_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0]
    )
    assert torch.equal(distil.distilbert.embeddings.position_embeddings.weight.data, expected)
