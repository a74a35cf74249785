"""Can word polarity tell a clause without a verdict from one with a verdict? (docs/model.md)

The classical baseline (jieba + TF-IDF + logistic regression, fitted on os10_train.csv) scores each
aspect clause of the hand-written sets; three "evidence" scores are compared with the gold
"none" labels by ROC AUC (1.0: evidence separates them perfectly, 0.5: no better than chance):
|decision| of the clause, the sum of |coefficient x tf-idf| over words that are not aspect
triggers, and the largest such |coefficient|.

    python scripts/verdict_gate_experiment.py --data ../shared/data/reviews
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from shoppulse.models.evaluation.aspect_eval import load_mentions
from shoppulse.models.evaluation.baseline import build_pipeline
from shoppulse.models.evaluation.data_io import TRAIN_FILE, read_reviews
from shoppulse.models.serving.keywords import load_aspects

EVAL = Path(__file__).resolve().parents[1] / "models" / "data" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder with os10_train.csv")
    args = parser.parse_args()
    train = read_reviews(args.data / TRAIN_FILE)
    pipeline = build_pipeline()
    pipeline.fit([r.review for r in train], [r.label for r in train])
    vectorizer, model = pipeline.steps[0][1], pipeline.steps[1][1]
    names, coef = vectorizer.get_feature_names_out(), model.coef_[0]
    lexicon = load_aspects()
    triggers = {w for words in lexicon.triggers.values() for w in words}
    report = {}
    for name in ("aspects_tune", "aspects"):
        mentions = load_mentions(EVAL / f"{name}.jsonl", lexicon)
        features = vectorizer.transform([m.clause for m in mentions])
        decision = np.abs(model.decision_function(features))
        summed, largest = [], []
        for i in range(len(mentions)):
            row = features.getrow(i)
            weights = [abs(coef[j] * v) for j, v in zip(row.indices, row.data, strict=True) if names[j] not in triggers]
            summed.append(sum(weights))
            largest.append(max([abs(coef[j]) for j in row.indices if names[j] not in triggers] or [0.0]))
        judged = np.asarray([m.gold != "none" for m in mentions])
        report[name] = {
            "none": int((~judged).sum()),
            "judged": int(judged.sum()),
            "auc": {
                key: round(float(roc_auc_score(judged, values)), 3)
                for key, values in (("abs_decision", decision), ("sum_abs_weight", summed), ("max_abs_coef", largest))
            },
        }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
