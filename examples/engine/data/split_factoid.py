#!/usr/bin/env python3
"""Assigns the factoid questions to the calibration and report splits, and checks the split.

Rule: FNV-1a (32-bit) of the question's UTF-8 bytes; hash % 5 in {0, 1} -> calibration,
otherwise report (about 40 / 60). The rule depends on the question text only, so adding a
question never moves another one between splits.

    python3 split_factoid.py            # check that both files follow the rule (exit 1 if not)
    python3 split_factoid.py --write    # re-split the union of both files (sorted by id)
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"calibration": HERE / "calibration" / "factoid.jsonl", "report": HERE / "report" / "factoid.jsonl"}


def fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def split_of(question: str) -> str:
    return "calibration" if fnv1a32(question) % 5 < 2 else "report"


def read(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    items = {name: read(path) for name, path in FILES.items()}
    if "--write" in sys.argv[1:]:
        union = sorted(items["calibration"] + items["report"], key=lambda x: x["id"])
        for name, path in FILES.items():
            lines = [json.dumps(x, ensure_ascii=False) for x in union if split_of(x["question"]) == name]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"{path.relative_to(HERE)}: {len(lines)} questions")
        return 0
    bad = 0
    seen = set()
    for name, rows in items.items():
        for x in rows:
            if split_of(x["question"]) != name:
                print(f"{name}: {x['id']} belongs to {split_of(x['question'])}")
                bad += 1
            if x["question"] in seen:
                print(f"duplicate question: {x['question']}")
                bad += 1
            seen.add(x["question"])
        print(f"{name}: {len(rows)} questions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
