r"""Classical, learning-free colour-constancy estimators in the framework of van de Weijer et al. (2007).

Every method is one point of the family

.. math::
    e^{n,p,\sigma}_c \propto \Big( \sum_x \big| \partial^n f_{c,\sigma}(x) \big|^p \Big)^{1/p}

with :math:`f_{c,\sigma}` channel :math:`c` smoothed by a Gaussian of standard deviation :math:`\sigma`
pixels, :math:`|\partial^n \cdot|` the magnitude of its :math:`n`-th order Gaussian derivatives and
:math:`p = \infty` meaning the maximum. Gray World is :math:`e^{0,1,0}`, White Patch (max-RGB)
:math:`e^{0,\infty,0}`, Shades of Gray :math:`e^{0,p,0}`, General Gray World :math:`e^{0,p,\sigma}` and
Gray Edge :math:`e^{1,p,\sigma}` / :math:`e^{2,p,\sigma}`.

Implementation notes, following the authors' MATLAB code (``general_cc.m``, ``gDer.m``, ``norm_derivative.m``):

- kernels are truncated at ``floor(3 sigma + 0.5)`` pixels; the smoothing kernel sums to 1, the first and
  second derivative kernels are normalised to be exact on ``x`` and ``x**2`` (a ramp of slope ``a`` gives a
  derivative of exactly ``a``);
- second order uses the code's magnitude :math:`\sqrt{f_{xx}^2 + 4 f_{xy}^2 + f_{yy}^2}` (the Frobenius norm
  of the Hessian would weight :math:`f_{xy}^2` by 2);
- a pixel whose filter support touches an unusable pixel is excluded too (the mask is dilated by the kernel
  radius), so clipped highlights do not leak into their neighbours' derivatives;
- borders are mirrored (``reflect``: ``dcb|abcd|cba``) instead of zeroed.

Two backends give the same numbers (to float32 rounding): ``"torch"`` (``conv2d``; any device, float64,
autograd) and ``"opencv"`` (``cv2.sepFilter2D`` plane by plane on ``torch.get_num_threads()`` threads; CPU
only, computed in float32, 5 to 10 times faster on a CPU). ``backend="auto"`` picks OpenCV for CPU float32
tensors that need no gradient. Full resolution is always used; nothing is downsampled.

References:
    J. van de Weijer, Th. Gevers and A. Gijsenij, "Edge-based color constancy", IEEE TIP 16(9), 2007.
    G. Buchsbaum, "A spatial processor model for object colour perception", J. Franklin Inst. 310, 1980.
    E. H. Land, "The retinex theory of color vision", Scientific American 237(6), 1977.
    G. D. Finlayson and E. Trezzi, "Shades of gray and colour constancy", CIC 2004.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from tinct.constancy import _classical_opencv as opencv_engine
from tinct.constancy import _classical_torch as torch_engine
from tinct.core.checks import check_channel_dim, check_choice, check_shape
from tinct.core.exceptions import ShapeError, UnknownNameError

__all__ = [
    "BACKENDS",
    "CLASSICAL_METHODS",
    "ClassicalEstimator",
    "ClassicalMethod",
    "classical_method",
    "derivative_magnitude",
    "estimate",
    "general_gray_world",
    "general_gray_world_grid",
    "gray_edge",
    "gray_world",
    "shades_of_gray",
    "white_patch",
]

#: Valid ``backend`` names of the estimators.
BACKENDS = ("auto", "torch", "opencv")

_TRUNCATE = 3.0  # kernel half-width in sigmas, as in gDer.m


def _radius(sigma: float) -> int:
    return math.floor(_TRUNCATE * sigma + 0.5) if sigma > 0 else 0


def _kernels(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothing, first and second derivative kernels (float64, length ``2 r + 1``), as gDer.m builds them."""
    r = _radius(sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2 * sigma**2))
    g0 = gauss / gauss.sum()
    g1 = -(x / sigma**2) * gauss
    g1 = g1 / (x * g1).sum()
    g2 = (x**2 / sigma**4 - 1 / sigma**2) * gauss
    g2 = g2 - g2.mean()
    g2 = g2 / (0.5 * x**2 * g2).sum()
    return g0, g1, g2


def _filter_bank(order: int, sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel along y, kernel along x) pairs whose responses' root-sum-square is the magnitude."""
    g0, g1, g2 = _kernels(sigma)
    if order == 0:
        return [(g0, g0)]
    if order == 1:
        return [(g0, g1), (g1, g0)]  # f_x, f_y
    return [(g0, g2), (g2, g0), (2.0 * g1, g1)]  # f_xx, f_yy, 2 f_xy (norm_derivative.m's weighting)


def _bank32(order: int, sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(ky.astype(np.float32), kx.astype(np.float32)) for ky, kx in _filter_bank(order, sigma)]


def _resolve_backend(backend: str, image: Tensor) -> str:
    check_choice(backend, BACKENDS, "backend")
    if backend != "auto":
        if backend == "opencv" and (image.device.type != "cpu" or image.requires_grad):
            raise ValueError("backend 'opencv' needs a CPU tensor that does not require grad")
        return backend
    fast = image.device.type == "cpu" and image.dtype == torch.float32 and not image.requires_grad
    return "opencv" if fast else "torch"


def derivative_magnitude(image: Tensor, order: int = 1, sigma: float = 1.0, backend: str = "auto") -> Tensor:
    r"""Per-channel magnitude of the ``order``-th Gaussian derivatives (``order=0``: the smoothed image).

    Args:
        image: linear RGB.
        order: 0 (Gaussian smoothing), 1 (:math:`\sqrt{f_x^2 + f_y^2}`) or 2
            (:math:`\sqrt{f_{xx}^2 + 4 f_{xy}^2 + f_{yy}^2}`, the weighting of the authors' code).
        sigma: Gaussian standard deviation in pixels, > 0.
        backend: one of :data:`BACKENDS`.

    Returns:
        Non-negative magnitudes, same shape as ``image``; float32 from the OpenCV backend.

    Shape:
        - image: :math:`(*, 3, H, W)`.
        - output: :math:`(*, 3, H, W)`.

    Note:
        Domain any real values (order 0 clamps them at 0 first, as the estimators do); range [0, inf).
        Borders are mirrored. The derivative kernels are exact on polynomials: a ramp ``a * x`` gives
        ``|a|`` (order 1) and ``a * x**2`` gives ``2 |a|`` (order 2) away from the border.

    Example:
        >>> ramp = torch.arange(16.0).expand(3, 16, 16) * torch.tensor([1.0, 2.0, 0.0]).view(3, 1, 1)
        >>> derivative_magnitude(ramp, order=1, sigma=1.0)[:, 8, 8].round(decimals=4)
        tensor([1., 2., 0.])

    References:
        J. van de Weijer, Th. Gevers and A. Gijsenij, "Edge-based color constancy", IEEE TIP 16(9), 2007.
    """
    x, _ = _check_inputs(image, None)
    _check_params(order, 1.0, sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 for Gaussian filtering, got {sigma}")
    if order == 0:
        x = x.clamp(min=0)
    if _resolve_backend(backend, x) == "opencv":
        planes = x.detach().float().contiguous().numpy().reshape(-1, *x.shape[-2:])
        mag = torch.from_numpy(opencv_engine.magnitudes(planes, _bank32(order, sigma), order))
    else:
        mag = torch_engine.magnitude(x, _filter_bank(order, sigma), order)
    return mag.reshape(image.shape)


def _check_inputs(image: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    check_channel_dim(image, -3, name="image")
    check_shape(image, ["*", "3", "H", "W"], "image")
    x = image.reshape(-1, *image.shape[-3:])
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if mask is None:
        return x, None
    check_shape(mask, ["*", "1", "H", "W"], "mask")
    if mask.shape[-2:] != image.shape[-2:] or mask.shape[:-3] != image.shape[:-3]:
        raise ShapeError(
            f"mask: expected shape {(*image.shape[:-3], 1, *image.shape[-2:])} to match image "
            f"{tuple(image.shape)}, got {tuple(mask.shape)}"
        )
    return x, mask.reshape(-1, 1, *mask.shape[-2:]).to(device=x.device, dtype=torch.bool)


def _check_params(order: int, p: float, sigma: float) -> None:
    check_choice(str(order), ("0", "1", "2"), "derivative order")
    if not p > 0:
        raise ValueError(f"p must be > 0 (or math.inf), got {p}")
    if not sigma >= 0 or math.isinf(sigma):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    if order > 0 and sigma == 0:
        raise ValueError(f"derivative order {order} needs sigma > 0 (the derivative's Gaussian scale)")


def _unit(est: Tensor) -> Tensor:
    """Unit-norm rows; all-zero rows (no usable pixel, no response) stay zero: no estimate."""
    # Not grey: a made-up grey estimate scores like a real one (0 degrees under a grey light), while a zero
    # vector has no direction and its angular error is NaN, which the statistics refuse.
    norm = torch.linalg.vector_norm(est, dim=-1, keepdim=True)
    return est / torch.where(norm > 0, norm, torch.ones_like(norm))


def _norms_opencv(
    x: Tensor, m: Tensor | None, order: int, ps: Sequence[float], sigmas: Sequence[float]
) -> Tensor:
    xs = x.detach().float().contiguous().numpy()
    ms = None if m is None else m.contiguous().numpy().view(np.uint8)
    # Unfiltered planes take ~0.2 ms: waking pool threads for one image's three would cost more than it saves.
    workers = torch.get_num_threads() if len(xs) >= 4 or any(s > 0 for s in sigmas) else 1
    keys = [(b, r) for b in range(len(xs)) for r in sorted({_radius(s) for s in sigmas})]
    weights = opencv_engine.parallel_map(
        lambda key: None if ms is None else opencv_engine.usable_mask(ms[key[0], 0], key[1]), keys, workers
    )
    usable = dict(zip(keys, weights, strict=True))
    banks = [_bank32(order, sigma) if sigma > 0 else [] for sigma in sigmas]
    jobs = [(b, j, c) for b in range(len(xs)) for j in range(len(sigmas)) for c in range(3)]

    def run(job: tuple[int, int, int]) -> list[float]:
        b, j, c = job
        return opencv_engine.plane_norms(xs[b, c], usable[(b, _radius(sigmas[j]))], banks[j], order, ps)

    out = np.zeros((len(xs), len(sigmas), len(ps), 3))
    for (b, j, c), values in zip(jobs, opencv_engine.parallel_map(run, jobs, workers), strict=True):
        out[b, j, :, c] = values
    return torch.from_numpy(out).float()


def general_gray_world_grid(
    image: Tensor,
    mask: Tensor | None = None,
    order: int = 0,
    ps: Sequence[float] = (1.0,),
    sigmas: Sequence[float] = (0.0,),
    backend: str = "auto",
) -> Tensor:
    """:func:`general_gray_world` at every (sigma, p) pair, filtering each image once per sigma.

    This is what makes tuning cheap: the derivative maps, the expensive part, are shared by every ``p``.

    Returns:
        Unit-norm estimates; entry ``[..., i, j, :]`` equals ``general_gray_world(image, mask, order,
        ps[j], sigmas[i], backend)``.

    Shape:
        - image: :math:`(*, 3, H, W)`; mask: :math:`(*, 1, H, W)` bool.
        - output: :math:`(*, len(sigmas), len(ps), 3)`.

    Example:
        >>> image = torch.tensor([0.2, 0.4, 0.4]).view(3, 1, 1).expand(3, 8, 8)
        >>> general_gray_world_grid(image, ps=(1.0, 4.0), sigmas=(0.0, 1.0)).shape
        torch.Size([2, 2, 3])
    """
    ps, sigmas = [float(p) for p in ps], [float(s) for s in sigmas]
    for sigma in sigmas:
        for p in ps:
            _check_params(order, p, sigma)
    x, m = _check_inputs(image, mask)
    if _resolve_backend(backend, x) == "opencv":
        raw = _norms_opencv(x, m, order, ps, sigmas)
    else:
        raw = torch_engine.norms(x, m, order, ps, [_filter_bank(order, s) if s > 0 else [] for s in sigmas])
    return _unit(raw).reshape(*image.shape[:-3], len(sigmas), len(ps), 3)


def general_gray_world(
    image: Tensor,
    mask: Tensor | None = None,
    order: int = 0,
    p: float = 1.0,
    sigma: float = 0.0,
    backend: str = "auto",
) -> Tensor:
    r"""Illuminant estimate :math:`e^{n,p,\sigma}` of the van de Weijer et al. (2007) framework.

    Args:
        image: linear camera RGB.
        mask: True where a pixel is unusable (saturated, below black, colour checker); None: all usable.
        order: derivative order :math:`n` (0, 1 or 2).
        p: Minkowski norm, > 0; ``math.inf`` takes the maximum.
        sigma: Gaussian scale in pixels, >= 0 (> 0 when ``order > 0``); 0 means no smoothing.
        backend: one of :data:`BACKENDS` (same numbers; OpenCV is faster on a CPU).

    Returns:
        The illuminant, unit Euclidean norm (zero where there is no estimate, see the Note), float32
        (float64 for a float64 image on the torch backend).

    Raises:
        ShapeError: bad image or mask shape. ValueError: ``p <= 0``, ``sigma < 0`` or ``order > 0`` with
        ``sigma == 0``. UnknownNameError: bad ``order`` or ``backend``.

    Shape:
        - image: :math:`(*, 3, H, W)`; mask: :math:`(*, 1, H, W)` bool.
        - output: :math:`(*, 3)`.

    Note:
        Domain linear RGB >= 0 (negative values count as 0 when ``order == 0``); range unit vectors with
        entries in [0, 1], or 0. Invariant to a global intensity scale and equivariant to per-channel gains.
        Pixels within ``floor(3 sigma + 0.5)`` of an unusable pixel are excluded too. An image with no
        usable pixel, or no response (all usable pixels black; no edge for ``order > 0``), returns the zero
        vector: no estimate, never an invented grey one. Its angular error is NaN, so a benchmark reports
        it instead of scoring it (:func:`tinct.constancy.baselines.run_baselines` names the images).

    Example:
        >>> image = torch.tensor([0.2, 0.4, 0.4]).view(3, 1, 1).expand(3, 4, 4)
        >>> general_gray_world(image)
        tensor([0.3333, 0.6667, 0.6667])

    References:
        J. van de Weijer, Th. Gevers and A. Gijsenij, "Edge-based color constancy", IEEE TIP 16(9), 2007.
    """
    return general_gray_world_grid(image, mask, order, (p,), (sigma,), backend)[..., 0, 0, :]


def gray_world(image: Tensor, mask: Tensor | None = None) -> Tensor:
    """Gray World (Buchsbaum 1980): the mean of the usable pixels, :math:`e^{0,1,0}`.

    Shapes, domain and range as :func:`general_gray_world`.

    Example:
        >>> gray_world(torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]], [[0.0, 0.0]]]))
        tensor([0.7071, 0.7071, 0.0000])
    """
    return general_gray_world(image, mask, order=0, p=1.0, sigma=0.0)


def white_patch(image: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""White Patch / max-RGB (Land 1977): the per-channel maximum of the usable pixels, :math:`e^{0,\infty,0}`.

    Saturated pixels must be flagged in ``mask``: a clipped highlight is the maximum of every channel and
    would turn the estimate grey. Shapes, domain and range as :func:`general_gray_world`.
    """
    return general_gray_world(image, mask, order=0, p=math.inf, sigma=0.0)


def shades_of_gray(image: Tensor, mask: Tensor | None = None, p: float = 6.0) -> Tensor:
    r"""Shades of Gray (Finlayson & Trezzi 2004): the Minkowski ``p``-norm of the pixels, :math:`e^{0,p,0}`.

    ``p = 1`` is Gray World and ``p -> inf`` tends to White Patch; ``p = 6`` is the paper's recommendation.
    Shapes, domain and range as :func:`general_gray_world`.
    """
    return general_gray_world(image, mask, order=0, p=p, sigma=0.0)


def gray_edge(
    image: Tensor, mask: Tensor | None = None, order: int = 1, p: float = 6.0, sigma: float = 2.0
) -> Tensor:
    r"""Gray Edge (van de Weijer et al. 2007): the ``p``-norm of ``order``-th derivative magnitudes,
    :math:`e^{n,p,\sigma}` with ``order`` 1 or 2 and ``sigma > 0``.

    Shapes, domain and range as :func:`general_gray_world`.
    """
    check_choice(str(order), ("1", "2"), "Gray Edge derivative order")
    return general_gray_world(image, mask, order=order, p=p, sigma=sigma)


@dataclass(frozen=True)
class ClassicalMethod:
    """A named point or family of :func:`general_gray_world`, with the grid its free parameters are tuned on.

    Attributes:
        name: key in :data:`CLASSICAL_METHODS`.
        label: display name.
        order: derivative order.
        defaults: every parameter (``p``, ``sigma``), used when not given or tuned.
        grid: candidate values of the free parameters only (empty for Gray World and White Patch).
    """

    name: str
    label: str
    order: int
    defaults: Mapping[str, float]
    grid: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def params(self, **overrides: float) -> dict[str, float]:
        """The defaults updated with ``overrides``; only free parameters (grid keys) may be overridden."""
        for key in overrides:
            if not self.grid:
                raise UnknownNameError(f"{self.name} has no free parameters, got {key!r}")
            check_choice(key, list(self.grid), f"parameter of {self.name}")
        return {**self.defaults, **{k: float(v) for k, v in overrides.items()}}

    def grid_points(self) -> list[dict[str, float]]:
        """Every combination of the grid's values (just the defaults without free parameters)."""
        points = [dict(self.defaults)]
        for key, values in self.grid.items():
            points = [{**pt, key: float(v)} for pt in points for v in values]
        return points

    def __call__(self, image: Tensor, mask: Tensor | None = None, **params: float) -> Tensor:
        return general_gray_world(image, mask, order=self.order, **self.params(**params))


_P_GRID = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0)
_SIGMA_GRID = (1.0, 2.0, 3.0, 4.0)
_TUNED = {"p": 6.0, "sigma": 2.0}  # middle of the grid: only a starting point, tune() picks per dataset

#: The classical methods by name, in the order tables list them.
CLASSICAL_METHODS: dict[str, ClassicalMethod] = {
    m.name: m
    for m in (
        ClassicalMethod("gray_world", "Gray World", 0, {"p": 1.0, "sigma": 0.0}),
        ClassicalMethod("white_patch", "White Patch", 0, {"p": math.inf, "sigma": 0.0}),
        ClassicalMethod("shades_of_gray", "Shades of Gray", 0, {"p": 6.0, "sigma": 0.0}, {"p": _P_GRID}),
        ClassicalMethod(
            "general_gray_world", "General Gray World", 0, _TUNED, {"p": _P_GRID, "sigma": _SIGMA_GRID}
        ),
        ClassicalMethod(
            "gray_edge_1", "Gray Edge (1st order)", 1, _TUNED, {"p": _P_GRID, "sigma": _SIGMA_GRID}
        ),
        ClassicalMethod(
            "gray_edge_2", "Gray Edge (2nd order)", 2, _TUNED, {"p": _P_GRID, "sigma": _SIGMA_GRID}
        ),
    )
}


def classical_method(method: str | ClassicalMethod) -> ClassicalMethod:
    """The :class:`ClassicalMethod` named ``method`` (a method passes through).

    Raises:
        UnknownNameError: unknown name; the message lists :data:`CLASSICAL_METHODS`.
    """
    if isinstance(method, ClassicalMethod):
        return method
    check_choice(method, CLASSICAL_METHODS, "classical colour-constancy method")
    return CLASSICAL_METHODS[method]


def estimate(method: str, image: Tensor, mask: Tensor | None = None, **params: float) -> Tensor:
    """Run the classical method ``method`` (a key of :data:`CLASSICAL_METHODS`) with its defaults updated by
    ``params``.

    Raises:
        UnknownNameError: unknown method or parameter; the message lists the valid ones.

    Example:
        >>> image = torch.tensor([0.2, 0.4, 0.4]).view(3, 1, 1).expand(3, 4, 4)
        >>> estimate("shades_of_gray", image, p=2)
        tensor([0.3333, 0.6667, 0.6667])
    """
    return classical_method(method)(image, mask, **params)


class ClassicalEstimator(nn.Module):
    """Module twin of :func:`estimate`: ``forward(image, mask=None)`` with a fixed method and parameters.

    Example:
        >>> ClassicalEstimator("gray_edge_1", sigma=1.0)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, method: str = "gray_world", **params: float) -> None:
        super().__init__()
        self.method = classical_method(method).name
        classical_method(method).params(**params)
        self.overrides = {k: float(v) for k, v in params.items()}

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        return estimate(self.method, image, mask, **self.overrides)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, params={classical_method(self.method).params(**self.overrides)}"
