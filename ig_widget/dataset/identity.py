"""Stable identities of what defines a computation: the model, ``preprocess``, the labels.

A store records them so that a resume with another model (other weights,
another architecture, another ``.keras`` file or factory), another
``preprocess`` or other labels is refused instead of mixed into the store.
An identity is a SHA-256 hex digest that is the same in every process for
the same definition (no ``id()``, no memory address, no generated layer
name), or None where no stable identity can be established; a store whose
identity is None cannot be resumed (guessing would risk mixing).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import platform
import sys
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

# Plain values a function may read from its module's globals (its constants).
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


class _Unstable(Exception):
    """Raised inside a digest when part of the value has no stable identity."""


def _feed(digest: Any, value: Any, seen: set[int]) -> None:
    """Add ``value``'s stable description to ``digest`` (raises _Unstable)."""
    if isinstance(value, _PLAIN):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
        return
    if id(value) in seen:  # a recursive structure: its place is enough
        digest.update(b"<cycle>;")
        return
    seen = seen | {id(value)}
    if isinstance(value, np.ndarray) or (hasattr(value, "__array__") and hasattr(value, "shape")):
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(f"array:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
        return
    if isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}[{len(value)}];".encode())
        for element in value:
            _feed(digest, element, seen)
        return
    if isinstance(value, Mapping):
        digest.update(f"mapping[{len(value)}];".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key, seen)
            _feed(digest, value[key], seen)
        return
    if isinstance(value, functools.partial):
        digest.update(b"partial;")
        _feed(digest, value.func, seen)
        _feed(digest, value.args, seen)
        _feed(digest, dict(value.keywords), seen)
        return
    if isinstance(value, types.MethodType):
        digest.update(b"method;")
        _feed(digest, value.__func__, seen)
        _feed_object(digest, value.__self__, seen)
        return
    if isinstance(value, types.FunctionType):
        _feed_function(digest, value, seen)
        return
    if isinstance(value, types.CodeType):
        _feed_code(digest, value, seen)
        return
    if isinstance(value, types.ModuleType):
        digest.update(f"module:{value.__name__};".encode())
        return
    if isinstance(value, (types.BuiltinFunctionType, type)):
        digest.update(f"named:{value.__module__}.{value.__qualname__};".encode())
        return
    _feed_object(digest, value, seen)


def _feed_code(digest: Any, code: types.CodeType, seen: set[int]) -> None:
    digest.update(f"code:{code.co_name}:{code.co_argcount}:{code.co_names};".encode())
    digest.update(code.co_code)
    for constant in code.co_consts:
        _feed(digest, constant, seen)


def _feed_function(digest: Any, function: types.FunctionType, seen: set[int]) -> None:
    digest.update(f"function:{function.__module__}.{function.__qualname__};".encode())
    _feed_code(digest, function.__code__, seen)
    _feed(digest, function.__defaults__, seen)
    _feed(digest, function.__kwdefaults__, seen)
    for cell in function.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # a cell not yet filled
            contents = None
        _feed(digest, contents, seen)
    # Plain constants the code reads from its module (a scale, a mean) are part of it;
    # modules and other functions are named by the code itself.
    for name in function.__code__.co_names:
        value = function.__globals__.get(name)
        if isinstance(value, _PLAIN) or isinstance(value, np.ndarray):
            _feed(digest, name, seen)
            _feed(digest, value, seen)


def _feed_object(digest: Any, value: Any, seen: set[int]) -> None:
    """An object: a Keras model, a torch Module, or anything that pickles the same."""
    if _is_keras_model(value):
        _feed_keras(digest, value, seen)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a ModelFactory
        digest.update(f"dataclass:{type(value).__module__}.{type(value).__qualname__};".encode())
        for field in dataclasses.fields(value):
            _feed(digest, field.name, seen)
            _feed(digest, getattr(value, field.name), seen)
        return
    if hasattr(value, "state_dict") and hasattr(value, "named_modules"):  # torch.nn.Module
        digest.update(f"torch:{type(value).__qualname__}:{value!r};".encode())
        for name, tensor in value.state_dict().items():
            _feed(digest, name, seen)
            _feed(digest, tensor.detach().cpu().numpy(), seen)
        return
    try:
        pickled = pickle.dumps(value, protocol=4)
    except Exception as exc:  # not picklable: no stable identity
        raise _Unstable(type(value).__name__) from exc
    digest.update(f"pickle:{type(value).__module__}.{type(value).__qualname__};".encode())
    digest.update(pickled)


def _is_keras_model(value: Any) -> bool:
    package = type(value).__module__.split(".")[0]
    return package in ("keras", "tf_keras") and hasattr(value, "get_weights")


def _without_names(config: Any) -> Any:
    """A Keras config without the generated names ("conv2d_3") that differ between processes."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def _feed_keras(digest: Any, model: Any, seen: set[int]) -> None:
    digest.update(f"keras:{type(model).__qualname__};".encode())
    for layer in getattr(model, "layers", ()):
        digest.update(f"layer:{type(layer).__qualname__};".encode())
        try:
            config = layer.get_config()
        except Exception:  # a custom layer without get_config: its class and weights
            config = None
        digest.update(repr(_without_names(config)).encode())
    for weight in model.weights:
        _feed(digest, np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight), seen)


def fingerprint(value: Any) -> Any:
    """A JSON description of an option, for comparing a resumed run with the stored one:
    an array (or list) by its shape, dtype and the start of its SHA-256; anything else as is.

    Examples
    --------
    >>> fingerprint(np.zeros((2, 2), np.float32))["array"], fingerprint("blur")
    ([2, 2], 'blur')
    """
    if isinstance(value, (np.ndarray, list)):
        array = np.ascontiguousarray(value)
        sha256 = hashlib.sha256(array.tobytes()).hexdigest()[:16]
        return {"array": list(array.shape), "dtype": str(array.dtype), "sha256": sha256}
    return value


def digest(value: Any) -> str | None:
    """A stable identity of ``value`` (SHA-256 hex), or None where none can be established.

    Examples
    --------
    >>> digest(lambda x: x / 255) == digest(lambda x: x / 255)
    True
    >>> digest(lambda x: x / 255) == digest(lambda x: x / 127.5)
    False
    >>> digest(None) == digest(None) and digest(np.zeros(3)) != digest(np.ones(3))
    True
    >>> from ig_widget.dataset.compute import ModelFactory
    >>> digest(ModelFactory(lambda n: n, 3)) == digest(ModelFactory(lambda n: n, 3))
    True
    """
    hasher = hashlib.sha256()
    try:
        _feed(hasher, value, set())
    except _Unstable:
        return None
    return hasher.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (a saved ``.keras`` model)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def model_identity(model: Any) -> str | None:
    """The model's identity: of its ``.keras`` file, its factory, or its weights and layers."""
    if isinstance(model, (str, os.PathLike)):
        try:
            return "file:" + file_digest(model)
        except OSError:
            return None
    identity = digest(model)
    return None if identity is None else f"value:{identity}"


def labels_identity(labels: Any) -> str | None:
    """The labels' identity: of the values, or of the function of each source."""
    if labels is not None and not callable(labels):
        if hasattr(labels, "numpy") and not isinstance(labels, np.ndarray):
            labels = labels.numpy()
        try:
            labels = np.asarray(labels)
        except Exception:  # ragged or odd: the values as they are
            pass
    return digest(labels)


# The frameworks whose versions a store records when they are loaded.
FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")


def software_versions() -> dict[str, str]:
    """Versions of Python, NumPy, ig-widget and the frameworks this process has loaded.

    Frameworks are looked up in ``sys.modules`` only (nothing is imported), so
    the list names those that ran the model.

    Examples
    --------
    >>> sorted(software_versions())[:3]  # doctest: +SKIP
    ['ig-widget', 'keras', 'numpy']
    """
    from .. import __version__

    versions = {
        "ig-widget": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in FRAMEWORKS:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if isinstance(version, str):
            versions[name] = version
    return versions
