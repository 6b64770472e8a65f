"""tinct: learning colour from images.

Differentiable colour science (:mod:`tinct.color`), datasets and synthetic scenes (:mod:`tinct.data`),
models (:mod:`tinct.models`), metrics (:mod:`tinct.metrics`), tasks (:mod:`tinct.tasks`) and the experiment
engine (:mod:`tinct.engine`, :func:`tinct.train`) behind the ``tinct`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinct")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "evaluate", "load_config", "predict", "train"]


def __getattr__(name: str):  # lazy, so `import tinct.color` does not pull in Lightning
    if name in {"train", "evaluate", "predict", "load_config"}:
        import tinct.engine as engine

        return getattr(engine, name)
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")
