"""The classical baseline the BERT has to beat: jieba words, TF-IDF of 1-2 grams, logistic regression.

It is kept runnable (``python -m shoppulse.models.evaluation.baseline --data DIR``) so the comparison in docs/model.md
can be reproduced on the same split, with the same cleaning and the same perturbations.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from shoppulse.models.evaluation.data_io import DEV_FILE, TRAIN_FILE, read_reviews
from shoppulse.models.evaluation.perturb import noisy_copy, truncate
from shoppulse.models.serving.text import clean_text


def _jieba_tokens(text: str) -> list[str]:
    import jieba

    return [tok for tok in jieba.lcut(clean_text(text)) if tok.strip()]


def build_pipeline(c: float = 8.0, seed: int = 0):  # type: ignore[no-untyped-def]
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vectorizer = TfidfVectorizer(
        tokenizer=_jieba_tokens,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
    )
    return make_pipeline(vectorizer, LogisticRegression(C=c, max_iter=2000, random_state=seed))


def _scores(y_true: list, y_pred: list) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4),
    }


def run_baseline(data_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Fit one pipeline per task on train, score it on dev, truncated dev and noisy dev."""
    train = read_reviews(data_dir / TRAIN_FILE)
    dev = read_reviews(data_dir / DEV_FILE)
    dev_texts = [r.review for r in dev]
    variants = {
        "dev": dev_texts,
        "first_32_chars": [truncate(t, 32) for t in dev_texts],
        "noisy": noisy_copy(dev_texts),
    }
    report: dict[str, dict[str, dict[str, float]]] = {}
    for task, key in (("sentiment", "label"), ("interest", "cat")):
        pipeline = build_pipeline()
        pipeline.fit([r.review for r in train], [getattr(r, key) for r in train])
        y_true = [getattr(r, key) for r in dev]
        report[task] = {name: _scores(y_true, list(pipeline.predict(texts))) for name, texts in variants.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder with os10_train.csv and os10_dev.csv")
    args = parser.parse_args()
    start = time.perf_counter()
    report = run_baseline(args.data)
    print(json.dumps({"baseline": report, "wall_s": round(time.perf_counter() - start, 1)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
