"""Targets of issue #19 (colorization as representation learning), from ``tinct study transfer``.

Sections (each can be skipped with ``--only``):

- ``study``: read ``--study`` (the folder of ``tinct study transfer``): the colorization encoder's best linear
  probe vs the random encoders' best (blocks chosen on validation; margin on the test photos with its
  bootstrap 95 % interval), fine-tuning from colorization vs the same network from scratch (same budget;
  paired bootstrap), the share of confusions inside a colour group for each model and for the CIELAB
  histogram baseline, the semantic-interpretability table, and the time of the whole study on this machine
  (target <= 2 h) with each run's training throughput.
- ``throughput``: training steps of the recipe's classifier (SIGGRAPH17 encoder blocks 1-5 at width 0.25,
  the seed head, batch 32 of 112 x 112 crops, AdamW) in float32 and in bf16 autocast, fine-tuned and frozen,
  in one process: photos per second (medians) and the ratios to float32 fine-tuning.

Example::

    tinct study transfer --out runs/study-transfer        # resumable
    python benchmarks/transfer.py --study runs/study-transfer
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _common import print_table, write_results

SECTIONS = ("study", "throughput")


def _verdict(ci: list[float]) -> str:
    return "met" if ci[0] > 0 else "**missed**" if ci[1] < 0 else "not significant (interval spans 0)"


def bench_study(study: Path) -> dict[str, Any]:
    record = json.loads((study / "study.json").read_text())
    rows: list[list[Any]] = []
    margin = record["probe"]["margin"]
    if margin:
        ci = [100 * v for v in margin["ci95"]]
        rows.append([
            "best linear probe: colorization encoder - random encoders (test accuracy, points)",
            f"{100 * margin['margin']:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]", "> 0: " + _verdict(ci),
        ])  # fmt: skip
    seeds = record.get("seeds") or {}
    if "margin" in seeds:
        m = seeds["margin"]
        rows.append([
            f"fine-tuned from colorization - from scratch, {m['seeds']} training seeds (test accuracy, points)",
            f"{m['points']:+.1f} [{m['ci95'][0]:+.1f}, {m['ci95'][1]:+.1f}]; per seed "
            + ", ".join(f"{d:+.1f}" for d in m["per_seed"]),
            "> 0: " + _verdict(m["ci95"]),
        ])  # fmt: skip
    for key, label in (("finetuned_minus_scratch", "fine-tuned, seed 0"), ("frozen_minus_scratch", "frozen")):
        m = record["margins"].get(key)
        if m:
            rows.append([
                f"{label} from colorization - from scratch (same budget; test accuracy, points)",
                f"{m['points']:+.1f} [{m['ci95'][0]:+.1f}, {m['ci95'][1]:+.1f}]",
                "> 0: " + _verdict(m["ci95"]) if label.startswith("fine-tuned") else "reported",
            ])  # fmt: skip
    shares = {r["name"]: r["test"].get("within_group_confusion") for r in record["variants"].values()}
    shares["CIELAB histogram + logistic regression"] = record["histogram_baseline"].get(
        "within_group_confusion"
    )
    chance = record.get("within_group_confusion_chance")
    rows.append([
        f"share of confusions inside a colour group (even spread: {100 * (chance or float('nan')):.0f} %)",
        "; ".join(f"{k}: {100 * v:.0f} %" for k, v in shares.items() if v is not None), "reported",
    ])  # fmt: skip
    total = sum(record["timings_s"].values())
    rows.append(
        [
            "whole study on this machine",
            f"{total / 60:.1f} min",
            f"<= 120 min: {'met' if total <= 7200 else '**missed**'}",
        ]
    )
    rows.append([
        "training throughput (photos/s, whole fit incl. validation)",
        "; ".join(f"{r['name']}: {r['throughput']:.0f}" for r in record["variants"].values()), "reported",
    ])  # fmt: skip
    print_table(
        "transfer study (held-out test photos; choices on validation)", ["check", "result", "target"], rows
    )
    return {
        "probe_margin": margin,
        "margins": record["margins"],
        "seeds": seeds,
        "within_group_confusion": shares,
        "within_group_confusion_chance": chance,
        "study_minutes": total / 60,
        "timings_s": record["timings_s"],
        "throughput": {r["name"]: r["throughput"] for r in record["variants"].values()},
        "interpretability": record["interpretability"],
    }


def bench_throughput(repeats: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from tinct.colorization.transfer.encoders import ColorizationEncoder, ImageClassifier

    torch.manual_seed(0)
    x, y = torch.rand(32, 3, 112, 112), torch.randint(0, 5, (32,))
    results: dict[str, float] = {}
    for frozen in (0, 5):
        for precision in ("float32", "bf16"):
            model = ImageClassifier(ColorizationEncoder("siggraph17", 0.25, 5), 5, "seed")
            model.encoder.freeze(frozen)
            model.train()
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
            times = []
            for i in range(repeats + 1):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = F.cross_entropy(model(model.encoder.prepare(x)).float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i:  # the first step warms up
                    times.append(time.perf_counter() - t0)
            results[f"{'frozen' if frozen else 'fine-tuned'} {precision}"] = 32 / statistics.median(times)
    ref = results["fine-tuned float32"]
    print_table(
        f"training steps, batch 32 x 112 x 112 (medians of {repeats})",
        ["setting", "photos / s", "ratio to fine-tuned float32"],
        [[k, v, v / ref] for k, v in results.items()],
    )
    return {"photos_per_s": results, "ratio": {k: v / ref for k, v in results.items()}, "repeats": repeats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default="runs/study-transfer", help="folder of `tinct study transfer`")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--repeats", type=int, default=7, help="timed steps per setting (throughput)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "transfer.json"))
    args = p.parse_args()
    result: dict[str, Any] = {}
    if "study" in args.only:
        study = Path(args.study)
        if (study / "study.json").is_file():
            result["study"] = bench_study(study)
        else:
            print(f"study: skipped, no study at {study} (run `tinct study transfer --out {study}`)")
    if "throughput" in args.only:
        result["throughput"] = bench_throughput(args.repeats)
    write_results(Path(args.out), result)


if __name__ == "__main__":
    main()
