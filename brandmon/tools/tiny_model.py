"""A tiny randomly initialised DistilBERT checkpoint for tests: exportable in a few seconds.

The tokenizer is a WordPiece built in code (no downloads) over a small vocabulary: special
tokens, a few hundred common words, single letters and digits with their `##` forms, so every
ASCII text tokenizes without [UNK] storms. It is saved as a DistilBertTokenizerFast that
emits only input_ids and attention_mask, like the default model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORDS = """
the a an and or but not no is are was were be been it this that i you he she we they my your
our their me him her us them to of in on at for with from by about as into over after before
good great love excellent amazing best happy thanks nice awesome fine like liked
bad awful hate terrible worst broken poor sad angry slow late never again disappointed
phone app service store order delivery battery camera price movie film game food coffee flight
today tomorrow yesterday night day week new old time update customer support team
what why how when where who do does did can could will would should have has had get got
very so too really just still yet all some any more most much many one two three
""".split()  # noqa: SIM905 (a word list reads better as text)
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_PUNCT = "!?.,:;'\"()-@#/&*+=<>$%"


def tiny_vocab() -> list[str]:
    """Special tokens first (so [PAD] is id 0), then words, characters and `##` pieces."""
    vocab = list(SPECIAL_TOKENS)
    for token in [*_WORDS, *_CHARS, *_PUNCT, *(f"##{c}" for c in _CHARS)]:
        if token not in vocab:
            vocab.append(token)
    return vocab


def tiny_tokenizer(max_length: int = 128) -> object:
    """A DistilBertTokenizerFast over `tiny_vocab()`, lower-casing like BERT uncased."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import DistilBertTokenizerFast

    vocab = {token: i for i, token in enumerate(tiny_vocab())}
    backend = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = DistilBertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return tokenizer


def make_tiny_checkpoint(
    path: Path,
    labels: Sequence[str] = ("NEGATIVE", "POSITIVE"),
    seed: int = 0,
    head_scale: float = 1.0,
    weight_std: float | None = None,
) -> Path:
    """Write a random DistilBertForSequenceClassification (dim 32, 2 layers) and its tokenizer
    to `path`; return `path`. `head_scale` sets the classifier heads' init std so that logits
    are spread out and int8 rounding rarely flips a prediction. With the default init every
    text gets the same label; `weight_std` (e.g. 0.3) redraws every weight matrix with that
    std, so that the label depends on the text (for tests that compare predictions)."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tokenizer = tiny_tokenizer()
    config = DistilBertConfig(
        vocab_size=len(tiny_vocab()),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=128,
        pad_token_id=0,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config).eval()
    with torch.no_grad():
        if weight_std is not None:
            for weight in model.parameters():
                if weight.dim() == 2:
                    weight.normal_(0.0, weight_std)
        for layer in (model.pre_classifier, model.classifier):
            layer.weight.normal_(0.0, head_scale)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))  # type: ignore[attr-defined]
    return path
