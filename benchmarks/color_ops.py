"""Speed of tinct's colour core against colour-science, scikit-image and scikit-learn, in one process.

Cases (issue #3): CIEDE2000 on 1M Lab pairs, sRGB -> CIELAB on a 1024x1024 image (float32 and float64),
and soft encoding of a 256x256 ab map (from a real photo) into the 313 bins against scikit-learn's
``NearestNeighbors(algorithm="ball_tree")``, which is how the original colorization release did it.
Prints a table of medians and ratios (reference time / tinct time; > 1 means tinct is faster) and the
largest disagreement with each reference, and writes JSON. Timings are medians of ``--repeats`` runs
after one warm-up; they are noisy on a shared 2-core machine, so read ratios, not absolute times, and never
use them as a pass/fail test.

    python benchmarks/color_ops.py [--repeats 7] [--out benchmarks/results/color_ops.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

TARGETS = {"ciede2000": 3.0, "srgb_to_lab": 2.0, "soft_encode": 20.0}


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up (and the result for the agreement check)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_ciede2000(repeats: int, n: int) -> list[dict[str, Any]]:
    import colour
    from skimage.color import deltaE_ciede2000

    from tinct.color import delta_e_ciede2000

    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        lo, hi = np.array([0.0, -110.0, -110.0]), np.array([100.0, 110.0, 110.0])
        a = (lo + (hi - lo) * rng.random((n, 3))).astype(dtype)
        b = np.clip(a + rng.normal(0, 8, (n, 3)), lo, hi).astype(dtype)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        t_tinct, r_tinct = median_time(lambda: delta_e_ciede2000(ta, tb, dim=-1), repeats)
        t_colour, r_colour = median_time(lambda: colour.delta_E(a, b, method="CIE 2000"), repeats)
        t_sk, r_sk = median_time(lambda: deltaE_ciede2000(a, b), repeats)
        r = r_tinct.double().numpy()
        rows.append(
            {
                "case": "ciede2000",
                "size": f"{n:,} pairs",
                "dtype": np.dtype(dtype).name,
                "tinct_s": t_tinct,
                "colour_s": t_colour,
                "skimage_s": t_sk,
                "max_abs_diff_colour": float(np.abs(r - r_colour).max()),
                "max_abs_diff_skimage": float(np.abs(r - r_sk).max()),
            }
        )
    return rows


def bench_srgb_to_lab(repeats: int, side: int) -> list[dict[str, Any]]:
    import colour
    from skimage.color import rgb2lab

    from tinct.color import rgb_to_lab

    rng = np.random.default_rng(1)
    rows = []
    for dtype in (np.float32, np.float64):
        hwc = rng.random((side, side, 3)).astype(dtype)
        chw = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
        t_tinct, r_tinct = median_time(lambda: rgb_to_lab(chw), repeats)
        t_colour, r_colour = median_time(lambda: colour.XYZ_to_Lab(colour.sRGB_to_XYZ(hwc)), repeats)
        t_sk, r_sk = median_time(lambda: rgb2lab(hwc), repeats)
        r = r_tinct.double().numpy().transpose(1, 2, 0)
        rows.append(
            {
                "case": "srgb_to_lab",
                "size": f"{side}x{side}",
                "dtype": np.dtype(dtype).name,
                "tinct_s": t_tinct,
                "colour_s": t_colour,
                "skimage_s": t_sk,
                "max_abs_diff_colour": float(np.abs(r - r_colour).max()),
                # scikit-image uses a 6-decimal matrix, white (0.95047, 1, 1.08883) and rounded constants: ~0.02 apart by design
                "max_abs_diff_skimage": float(np.abs(r - r_sk).max()),
            }
        )
    return rows


def _photo_ab(side: int) -> np.ndarray:
    from skimage import data
    from skimage.color import rgb2lab
    from skimage.transform import resize

    img = resize(data.astronaut(), (side, side), anti_aliasing=True)
    return rgb2lab(img)[:, :, 1:].astype(np.float32)


def bench_soft_encode(repeats: int, side: int) -> list[dict[str, Any]]:
    from sklearn.neighbors import NearestNeighbors

    from tinct.color import ab_bins, soft_encode, soft_encode_dense

    k, sigma = 5, 5.0
    ab = _photo_ab(side)
    flat = ab.reshape(-1, 2).astype(np.float64)
    bins = ab_bins(dtype=torch.float64).numpy()
    nbrs = NearestNeighbors(n_neighbors=k, algorithm="ball_tree").fit(bins)
    n = flat.shape[0]

    def ref_sparse() -> tuple[np.ndarray, np.ndarray]:
        dists, inds = nbrs.kneighbors(flat)
        w = np.exp(-(dists**2) / (2 * sigma**2))
        return w / w.sum(axis=1, keepdims=True), inds

    def ref_dense() -> np.ndarray:
        w, inds = ref_sparse()
        out = np.zeros((n, bins.shape[0]), dtype=np.float32)
        out[np.arange(n)[:, None], inds] = w
        return out

    tab = torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))
    t_sparse, _ = median_time(lambda: soft_encode(tab, k=k, sigma=sigma), repeats)
    t_dense, d_t = median_time(lambda: soft_encode_dense(tab, k=k, sigma=sigma), repeats)
    t_ref_sparse, _ = median_time(ref_sparse, repeats)
    t_ref_dense, d_ref = median_time(ref_dense, repeats)
    d_t = d_t.reshape(bins.shape[0], -1).T.numpy()
    diff = float(np.abs(d_t - d_ref).max())
    return [
        {
            "case": "soft_encode (weights+indices)",
            "size": f"{side}x{side}, k={k}",
            "dtype": "float32",
            "tinct_s": t_sparse,
            "sklearn_s": t_ref_sparse,
            "max_abs_diff_sklearn": diff,
        },
        {
            "case": "soft_encode (dense 313)",
            "size": f"{side}x{side}, k={k}",
            "dtype": "float32",
            "tinct_s": t_dense,
            "sklearn_s": t_ref_dense,
            "max_abs_diff_sklearn": diff,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--ab-side", type=int, default=256)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "color_ops.json"))
    args = parser.parse_args()

    rows = bench_ciede2000(args.repeats, args.pairs) + bench_srgb_to_lab(args.repeats, args.side)
    rows += bench_soft_encode(args.repeats, args.ab_side)
    for r in rows:
        refs = [r[k] for k in ("colour_s", "skimage_s", "sklearn_s") if k in r]
        r["fastest_reference_s"] = min(refs)
        r["speedup"] = r["fastest_reference_s"] / r["tinct_s"]
        key = r["case"].split(" ")[0]
        r["target"] = TARGETS[key]
        r["meets_target"] = r["speedup"] >= r["target"]

    header = f"{'case':32s} {'size':18s} {'dtype':8s} {'tinct':>9s} {'colour':>9s} {'skimage':>9s} {'sklearn':>9s} {'speedup':>8s} {'target':>7s} {'max|diff|':>10s}"
    print(
        "(speedup = fastest reference / tinct; max|diff| against colour-science, or scikit-learn for soft encoding)"
    )
    print(header)
    print("-" * len(header))
    fmt = lambda v: f"{v * 1e3:7.1f}ms" if isinstance(v, float) else f"{'-':>9s}"  # noqa: E731
    for r in rows:
        diff = r.get("max_abs_diff_colour", r.get("max_abs_diff_sklearn"))
        print(
            f"{r['case']:32s} {r['size']:18s} {r['dtype']:8s} {fmt(r['tinct_s'])} {fmt(r.get('colour_s'))} "
            f"{fmt(r.get('skimage_s'))} {fmt(r.get('sklearn_s'))} {r['speedup']:7.1f}x {r['target']:6.0f}x {diff:10.2e}"
        )
    print()
    write_results(Path(args.out), {"speed": {"repeats": args.repeats, "rows": rows}})


if __name__ == "__main__":
    main()
