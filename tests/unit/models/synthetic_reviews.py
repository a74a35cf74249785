"""Generated review CSVs (``cat,label,review``) for tests: learnable, tiny, never the real data.

Each category has its own nouns and each sentiment its own phrases, so a model that learns
anything separates them; the filler words keep the texts from being identical.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

NOUNS = {
    "书籍": ["这本书", "作者", "印刷"],
    "平板": ["平板", "屏幕", "系统"],
    "手机": ["手机", "信号", "电池"],
    "计算机": ["电脑", "键盘", "显卡"],
    "水果": ["苹果", "橙子", "果肉"],
    "洗发水": ["洗发水", "头发", "香味"],
    "热水器": ["热水器", "水温", "安装"],
    "蒙牛": ["牛奶", "酸奶", "口感"],
    "衣服": ["衣服", "面料", "尺码"],
    "酒店": ["酒店", "房间", "前台"],
}
POSITIVE = ["很好", "非常满意", "推荐购买", "质量不错", "喜欢"]
NEGATIVE = ["很差", "太失望了", "不推荐", "质量不好", "退货了"]
FILLER = ["这次", "总体来说", "说实话", "买了以后", "用了三天", "iPhone12 Pro", "5000mAh", "!!!"]


def review(rng: random.Random, cat: str, positive: bool) -> str:
    noun = rng.choice(NOUNS[cat])
    phrase = rng.choice(POSITIVE if positive else NEGATIVE)
    return (
        f"{rng.choice(FILLER)}{noun}{phrase}，{rng.choice(NOUNS[cat])}{rng.choice(POSITIVE if positive else NEGATIVE)}"
    )


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    cats = list(NOUNS)
    out = []
    for i in range(n):
        cat, positive = cats[i % len(cats)], rng.random() < 0.5
        out.append({"cat": cat, "label": str(int(positive)), "review": review(rng, cat, positive)})
    return out


def write_csv(path: Path, data: list[dict[str, str]], columns: tuple[str, ...] = ("cat", "label", "review")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:  # BOM like the real files
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data)
    return path


def write_dataset(directory: Path, n_train: int = 400, n_dev: int = 100, seed: int = 0) -> Path:
    write_csv(directory / "os10_train.csv", rows(n_train, seed))
    write_csv(directory / "os10_dev.csv", rows(n_dev, seed + 1))
    return directory
