"""tinct: learning colour from images.

Shared layers, lowest first: :mod:`tinct.core` (checks, errors, registry, atomic files, config base),
:mod:`tinct.color` (differentiable colour science), :mod:`tinct.io` (images, EXIF), :mod:`tinct.spectral`
(measured spectra), :mod:`tinct.nn` (backbones, heads) and :mod:`tinct.engine` (training, evaluation,
sweeps, reports). Above them one package per domain: :mod:`tinct.constancy`, :mod:`tinct.colorization`,
:mod:`tinct.patch`; on top the ``tinct`` command (:mod:`tinct.cli`). Dependencies point down only
(``lint-imports`` checks it). :mod:`tinct.api` gives the batch functions ``tinct.colorize``,
``tinct.estimate_illuminant`` and ``tinct.predict_patch``; :mod:`tinct.demo` the web demo (``tinct serve``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinct")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "colorize",
    "estimate_illuminant",
    "evaluate",
    "load_config",
    "predict",
    "predict_patch",
    "train",
]


def __getattr__(name: str):  # lazy, so `import tinct.color` does not pull in Lightning
    if name in {"train", "evaluate", "predict", "load_config"}:
        import tinct.engine as engine

        return getattr(engine, name)
    if name in {"colorize", "estimate_illuminant", "predict_patch"}:
        # by name, not an import statement: lower layers import ``tinct`` (its version), and a static import
        # here would make them depend on the API layer above them in lint-imports' graph
        from importlib import import_module

        return getattr(import_module("tinct.api"), name)
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")
