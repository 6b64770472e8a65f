"""Training throughput (images/s) of shipped configs on this machine's CPU, or a GPU with --accelerator gpu.

Runs ``tinct.engine.train`` on a config with a short budget and reads the steady-state speed from a
callback (the first epoch is warm-up: data generation caches, cuDNN autotuning). Prints a table and
writes JSON. Example:

    python benchmarks/train_throughput.py configs/illuminant/mondrian_small_cnn.yaml --epochs 3
    python benchmarks/train_throughput.py configs/illuminant/mondrian_mobilenet_v2_log.yaml --accelerator gpu
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results


class _Timer(L.Callback):
    def __init__(self) -> None:
        self.epoch_rates: list[float] = []
        self._n = 0
        self._t = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._n, self._t = 0, time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._n += int(batch["image"].shape[0])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.epoch_rates.append(self._n / (time.perf_counter() - self._t))


def main() -> None:
    from tinct.engine import load_config, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.json"))
    args = parser.parse_args()

    rows = []
    for path in args.configs:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(
                path,
                [
                    *args.overrides,
                    f"trainer.max_epochs={args.epochs}",
                    "trainer.progress=none",
                    f"output_dir={tmp}",
                    f"trainer.accelerator={args.accelerator}",
                ],
            )
            timer = _Timer()
            m = train(cfg, callbacks=[timer], verbose=False)
            steady = timer.epoch_rates[1:] or timer.epoch_rates
            rows.append(
                {
                    "config": path,
                    "backbone": cfg.model.backbone,
                    "input_space": cfg.model.input_space,
                    "image_size": cfg.data.size,
                    "batch_size": cfg.data.batch_size,
                    "accelerator": args.accelerator,
                    "images_per_s": statistics.median(steady),
                    "epoch_rates": timer.epoch_rates,
                    "test_angular_mean": m.get("test/angular_mean"),
                }
            )
    device = (
        torch.cuda.get_device_name(0)
        if args.accelerator != "cpu" and torch.cuda.is_available()
        else platform.processor() or "cpu"
    )
    print(
        f"{'config':50s} {'backbone':14s} {'size':>5s} {'batch':>6s} {'images/s':>10s}  device: {device}, threads {torch.get_num_threads()}"
    )
    for r in rows:
        print(
            f"{r['config']:50s} {r['backbone']:14s} {r['image_size']:5d} {r['batch_size']:6d} {r['images_per_s']:10.1f}"
        )
    # One section per config and accelerator: a later run of another config keeps this one's record.
    write_results(
        Path(args.out), {f"{r['config']} ({r['accelerator']})": {**r, "device": device} for r in rows}
    )


if __name__ == "__main__":
    main()
