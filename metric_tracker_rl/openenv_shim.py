"""Import OpenEnv's engine and client modules without its web interface (and so without
Gradio), until something asks for the whole package.

OpenEnv 0.10's ``openenv.core`` runs ``openenv.core.env_server/__init__.py``, which
imports ``http_server`` and ``web_interface`` (Gradio) eagerly, and
``openenv.core.rubrics/__init__.py`` imports its LLM judge (the openai client): seconds
for any process that only needs ``Environment``, the wire types, ``Rubric`` or
``EnvClient``.

``install()`` adds an import hook for exactly those three packages: when one of them is
imported, its module is created but its ``__init__`` waits, so importing a submodule
(``openenv.core.env_server.interfaces``) loads that module alone. The first attribute
asked of a waiting package (``from openenv.core import GenericEnvClient``,
``openenv.core.env_server.create_app``) runs its real ``__init__`` in place, so code that
uses OpenEnv as published sees it complete. Nothing of OpenEnv is copied or changed.
Nothing is imported by ``install()`` itself.

The shim becomes unnecessary once ``openenv.core.env_server`` and
``openenv.core.rubrics`` load ``http_server``, ``web_interface`` and ``llm_judge``
lazily (a module ``__getattr__``, as ``openenv.core`` already does for its clients).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Any

DEFERRED = frozenset({"openenv.core", "openenv.core.env_server", "openenv.core.rubrics"})
_WAITING = "_metric_tracker_waiting_loader"  # set on a package whose __init__ has not run
_lock = threading.RLock()


class _DeferringLoader(importlib.abc.Loader):
    """Creates the package module as its own loader would, and runs ``__init__`` later."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_source, ...
        return getattr(self.loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__[_WAITING] = self.loader

        def __getattr__(attribute: str) -> Any:
            complete(module)
            return getattr(module, attribute)

        module.__dict__["__getattr__"] = __getattr__


class _DeferringFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: ModuleType | None = None):
        if name not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return spec  # not the layout this shim knows: import it as usual
        spec.loader = _DeferringLoader(spec.loader)
        return spec


def install() -> None:
    """Add the import hook once (a no-op for packages that are imported already)."""
    with _lock:
        if not any(isinstance(finder, _DeferringFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _DeferringFinder())


def complete(module: ModuleType) -> ModuleType:
    """Run a waiting package's own ``__init__``; idempotent."""
    with _lock:
        loader = module.__dict__.pop(_WAITING, None)
        if loader is not None:
            module.__dict__.pop("__getattr__", None)
            loader.exec_module(module)
        return module


def is_waiting(name: str) -> bool:
    """Whether a package was imported and its ``__init__`` has not run yet."""
    module = sys.modules.get(name)
    return module is not None and _WAITING in module.__dict__
