"""The optional n-gram bag beside [CLS]: saved and loaded with the heads, same outputs after."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from shoppulse.models.training.multitask import MultiTaskClassifier, NgramBag, load_multitask  # noqa: E402

HEADS = {"sentiment": ["negative", "positive"], "interest": ["书籍", "酒店", "水果"]}


def _model(ngram: dict | None) -> MultiTaskClassifier:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return MultiTaskClassifier(BertModel(config, add_pooling_layer=False), HEADS, ngram=ngram).eval()


def test_round_trip_keeps_the_bag_and_the_outputs(tmp_path: Path) -> None:
    model = _model({"vocab_size": 40, "buckets": 97, "dim": 8})
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = model(ids, mask)
    model.save(tmp_path / "m")
    loaded = load_multitask(tmp_path / "m", attn_implementation=None)
    assert loaded.ngram is not None and loaded.ngram.settings == model.ngram.settings  # type: ignore[union-attr]
    with torch.no_grad():
        for a, b in zip(expected, loaded(ids, mask), strict=True):
            assert torch.allclose(a, b, atol=1e-6)


def test_bag_ignores_padding_and_sees_word_order() -> None:
    torch.manual_seed(0)
    bag = NgramBag(vocab_size=20, buckets=31, dim=4)
    short = bag(torch.tensor([[2, 5, 6, 3]]), torch.tensor([[1, 1, 1, 1]]))
    padded = bag(torch.tensor([[2, 5, 6, 3, 0, 0]]), torch.tensor([[1, 1, 1, 1, 0, 0]]))
    swapped = bag(torch.tensor([[2, 6, 5, 3]]), torch.tensor([[1, 1, 1, 1]]))
    assert torch.allclose(short, padded, atol=1e-6)
    assert not torch.allclose(short, swapped)  # bigrams: 好不 ≠ 不好


def test_heads_read_cls_and_bag_together() -> None:
    plain, with_bag = _model(None), _model({"vocab_size": 40, "buckets": 97, "dim": 8})
    assert plain.heads["sentiment"].in_features == 16
    assert with_bag.heads["sentiment"].in_features == 24


def test_ensemble_mode_adds_the_bag_heads_logits_and_round_trips(tmp_path: Path) -> None:
    model = _model({"vocab_size": 40, "buckets": 97, "dim": 8, "mode": "ensemble"})
    assert model.heads["interest"].in_features == 16  # the encoder heads read [CLS] only
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        encoder_logits, bag_logits = model.path_logits(ids, mask)
        combined = model(ids, mask)
    assert bag_logits is not None
    for head, total in enumerate(combined):
        assert torch.allclose(total, encoder_logits[head] + bag_logits[head])
    model.save(tmp_path / "m")
    loaded = load_multitask(tmp_path / "m", attn_implementation=None)
    assert loaded.ngram is not None and loaded.ngram.mode == "ensemble"
    with torch.no_grad():
        for a, b in zip(combined, loaded(ids, mask), strict=True):
            assert torch.allclose(a, b, atol=1e-6)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        NgramBag(vocab_size=10, buckets=5, dim=2, mode="sum")
