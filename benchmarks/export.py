"""Exported graphs against torch eager (issue #20): the same computation, in one process, on this CPU.

Sections (each can be skipped with ``--only``):

- ``colorizer``: one 1024 x 768 photo through each shipped automatic colorizer (the default, SIGGRAPH17,
  and the ECCV16 one, both at width 0.25) and through a SIGGRAPH17 network of the paper's width (1.0, random
  weights: the size of the released file ``tinct import-weights`` converts), torch eager (``torch.inference_mode``) against the same colorizer exported to ONNX in
  memory and run by onnxruntime (``load_colorizer(backend="onnxruntime")``, what ``tinct colorize --backend
  onnxruntime`` does). Two steps are timed: ``predict_ab_lowres`` on the photo's L (1 x 1 x 768 x 1024):
  resize to the network's 256 x 341 (antialiased), normalise, pad to 256 x 344, the network step, crop;
  that is ``tinct colorize``'s work between computing L and the last upsampling; and the network step alone
  (``network_ab`` on the padded 1 x 1 x 256 x 344 input), which is what the graph holds. Goal: onnxruntime
  at least 1.5 x faster than torch for the default colorizer (``predict_ab_lowres``).
- ``illuminant``: a batch of 32 linear 64 x 64 thumbnails through the CNN of
  ``configs/constancy/thumbnails_cnn.yaml`` and FFCC of ``configs/constancy/thumbnails.yaml`` (random
  weights: the speed does not depend on them), the task's forward in torch eager against its exported
  graph in onnxruntime. FFCC's torch forward also computes each estimate's uncertainty (an
  eigendecomposition) and filters by FFT; its graph does neither (real DFT matrix products, no
  uncertainty), so the graph module itself in torch eager is timed too.

Each figure is the median of ``--repeats`` (>= 7) runs after 2 warm-ups, taken in 3 rounds that run torch
and onnxruntime in turn (each back to back within a round); both use ``--threads`` threads
(``torch.set_num_threads`` and onnxruntime's intra-op threads; onnxruntime's threads do not spin between
runs, as :func:`tinct.nn.export.onnx_session` sets up every session).
Ratio = torch seconds / onnxruntime seconds (> 1: onnxruntime is faster). Never fails on time.

Example::

    python benchmarks/export.py                  # ~1 min on a 2-core CPU
    python benchmarks/export.py --only illuminant --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
CNN_RECIPE = ROOT / "configs" / "constancy" / "thumbnails_cnn.yaml"
FFCC_RECIPE = ROOT / "configs" / "constancy" / "thumbnails.yaml"
SECTIONS = ("colorizer", "illuminant")
GOAL = 1.5


def _medians(fns: dict[str, Callable[[], Any]], repeats: int, rounds: int = 3) -> dict[str, float]:
    """Median seconds of each function over ``repeats`` runs (in inference mode), taken in ``rounds`` rounds:
    each round runs every function in turn, one warm-up then its share of the timed runs back to back (each
    backend in its steady state, as in a process that uses one; a change of machine load hits all)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    per_round = [repeats // rounds + (i < repeats % rounds) for i in range(rounds)]
    with torch.inference_mode():
        for _ in range(2):  # first calls: allocations, onnxruntime's kernel selection
            for fn in fns.values():
                fn()
        for n in per_round:
            for name, fn in fns.items():
                fn()
                for _ in range(n):
                    t = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _lightness(h: int = 768, w: int = 1024) -> torch.Tensor:
    """A smooth L map with texture (L* in [0, 100]); timings do not depend on its content."""
    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return ((0.3 + 0.5 * x * y + 0.2 * torch.rand(h, w, generator=g)) * 100.0)[None, None]


class _File:
    """A colorizer file outside the package, named like a shipped one for the table."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self._path = name, path

    def path(self) -> Path:
        return self._path


def _release_size_colorizer(folder: Path) -> _File:
    """The SIGGRAPH17 network at the paper's width (1.0, 34 M parameters: the size of the released
    siggraph17-df00044c.pth that tinct import-weights converts), randomly initialised (the speed does not
    depend on the weights), as a tinct colorizer file with the shipped default's decoding."""
    from tinct.colorization.pretrained import DEFAULT_COLORIZER, FORMAT
    from tinct.colorization.siggraph import SIGGRAPHNet

    torch.manual_seed(0)
    config = DEFAULT_COLORIZER.card()["config"]
    config = {**config, "model": {**config["model"], "width": 1.0}}
    path = folder / "siggraph17_w1_random.pt"
    torch.save({"format": FORMAT, "config": config, "state_dict": SIGGRAPHNet(1.0).state_dict()}, path)
    return _File("siggraph17_w1 (release size, random)", path)


def bench_colorizer(repeats: int) -> dict[str, Any]:
    from tinct.colorization.colorize import load_colorizer
    from tinct.colorization.pretrained import DEFAULT_COLORIZER, ECCV16_COLORIZER

    lightness = _lightness()
    h, w = lightness.shape[-2:]
    rows, results = [], {}
    tmp = tempfile.TemporaryDirectory(prefix="tinct-bench-")
    release_size = _release_size_colorizer(Path(tmp.name))
    for weights in (DEFAULT_COLORIZER, ECCV16_COLORIZER, release_size):
        model = None if weights is DEFAULT_COLORIZER else str(weights.path())
        eager, _ = load_colorizer(model)
        t = time.perf_counter()
        ort, _ = load_colorizer(model, backend="onnxruntime")
        export_s = time.perf_counter() - t
        nh, nw = eager.network_size(h, w)
        x = torch.zeros(1, 1, nh + (-nh % 8), nw + (-nw % 8))
        x[..., :nh, :nw] = (torch.nn.functional.interpolate(lightness, (nh, nw), mode="bilinear") - 50) / 100
        with torch.no_grad():
            diff = float((eager.predict_ab_lowres(lightness) - ort.predict_ab_lowres(lightness)).abs().max())
        steps = {
            "predict_ab_lowres": (lambda c: lambda: c.predict_ab_lowres(lightness)),
            "network_ab": (lambda c: lambda: c.network_ab(x)),
        }
        if weights is release_size:  # 34 M parameters: the network step alone (the resize is the same)
            del steps["network_ab"]
        entry: dict[str, Any] = {
            "export_s": export_s,
            "max_abs_diff_ab": diff,
            "network_input": list(x.shape),
        }
        for step, make in steps.items():
            m = _medians({"torch": make(eager), "onnxruntime": make(ort)}, repeats)
            ratio = m["torch"] / m["onnxruntime"]
            entry[step] = {"torch_s": m["torch"], "onnxruntime_s": m["onnxruntime"], "ratio": ratio}
            goal = f">= {GOAL}" if weights is DEFAULT_COLORIZER and step == "predict_ab_lowres" else ""
            rows.append([weights.name, step, m["torch"] * 1e3, m["onnxruntime"] * 1e3, ratio, goal])
        results[weights.name] = entry
    default = results[DEFAULT_COLORIZER.name]["predict_ab_lowres"]["ratio"]
    results["goal"] = {"ratio": GOAL, "met": bool(default >= GOAL)}
    print_table(
        f"colorizer, one {w} x {h} photo, {torch.get_num_threads()} threads (median of {repeats}, ms)",
        ["model", "step", "torch ms", "onnxruntime ms", "ratio", "goal"],
        rows,
    )
    tmp.cleanup()
    for name in (DEFAULT_COLORIZER.name, ECCV16_COLORIZER.name, release_size.name):
        r = results[name]
        print(f"  {name}: exported in {r['export_s']:.1f} s; max |ab difference| {r['max_abs_diff_ab']:.2g}")
    print(f"  goal (default colorizer, predict_ab_lowres) onnxruntime >= {GOAL} x torch: "
          f"{'met' if results['goal']['met'] else 'NOT met'} ({default:.2f} x)")  # fmt: skip
    return results


def _illuminant_task(recipe: Path) -> Any:
    from tinct.engine.config import load_config
    from tinct.engine.task import TASKS

    torch.manual_seed(0)
    task = TASKS.get("illuminant")(load_config(recipe, ["data.root=unused"])).eval()
    if task.is_ffcc:
        with torch.no_grad():
            task.ffcc.center_on(torch.rand(64, 3) + 0.2)
            for member in getattr(task.ffcc, "members", [task.ffcc]):  # an ensemble over shifted grids
                member.filter_v.normal_(0.0, 1e-4)
                member.bias_v.normal_(0.0, 1e-4)
    return task


def bench_illuminant(repeats: int, batch: int = 32, size: int = 64) -> dict[str, Any]:
    from tinct.constancy.export import IlluminantGraph, export_illuminant_graph
    from tinct.nn.export import onnx_session, run_onnx

    g = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, size, size, generator=g) * 0.9 + 0.05) * (
        0.4 + torch.rand(batch, 3, 1, 1, generator=g)
    )
    rows, results = [], {}
    for name, recipe in (("cnn", CNN_RECIPE), ("ffcc", FFCC_RECIPE)):
        task = _illuminant_task(recipe)
        t = time.perf_counter()
        exported = export_illuminant_graph(task, source=str(recipe.relative_to(ROOT)))
        export_s = time.perf_counter() - t
        session = onnx_session(exported.data)
        fns = {
            "torch": lambda task=task: task(images),
            "onnxruntime": lambda session=session: run_onnx(session, {"image": images}),
        }
        if name == "ffcc":
            graph = IlluminantGraph(task).eval()
            fns["torch_graph"] = lambda graph=graph: graph(images)
        m = _medians(fns, repeats)
        entry = {
            "recipe": str(recipe.relative_to(ROOT)),
            "torch_s": m["torch"],
            "onnxruntime_s": m["onnxruntime"],
            "ratio": m["torch"] / m["onnxruntime"],
            "export_s": export_s,
            "parity_max_abs_diff": exported.parity.max_abs_diff,
        }
        rows.append([name, "task forward", m["torch"] * 1e3, m["onnxruntime"] * 1e3, entry["ratio"]])
        if "torch_graph" in m:
            entry["torch_graph_s"] = m["torch_graph"]
            entry["ratio_graph"] = m["torch_graph"] / m["onnxruntime"]
            rows.append(["ffcc", "graph module (DFT, no uncertainty)", m["torch_graph"] * 1e3,
                         m["onnxruntime"] * 1e3, entry["ratio_graph"]])  # fmt: skip
        results[name] = entry
    print_table(
        f"illuminant, a batch of {batch} {size} x {size} thumbnails, {torch.get_num_threads()} threads "
        f"(median of {repeats}, ms)",
        ["estimator", "torch side", "torch ms", "onnxruntime ms", "ratio"],
        rows,
    )
    return {"batch": batch, "size": size, **results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--repeats", type=int, default=15, help="timed runs per figure (at least 7)")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (default 2)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "export.json")
    args = p.parse_args()
    repeats = max(7, args.repeats)
    torch.set_num_threads(args.threads)  # onnx_session's default intra-op threads follow torch's
    result: dict[str, Any] = {}
    if "colorizer" in args.only:
        result["colorizer"] = {"threads": args.threads, "repeats": repeats, **bench_colorizer(repeats)}
    if "illuminant" in args.only:
        result["illuminant"] = {"threads": args.threads, "repeats": repeats, **bench_illuminant(repeats)}
    write_results(args.out, result)


if __name__ == "__main__":
    main()
