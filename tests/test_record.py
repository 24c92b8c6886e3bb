"""The records of steve.record behave as the dataclasses they replace.

Each Record subclass of the start-up modules is compared with the dataclass
``@dataclass(frozen=True, slots=True)`` (``@dataclass`` for a MutableRecord)
would make of the same fields: repr, equality, hash, frozen-ness, replace,
asdict, fields, pickling and copying.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
from typing import Any

import pytest

from steve.objects.oid import ObjectId
from steve.record import FrozenInstanceError, MutableRecord, Record, _Fields

MODULES = [
    "steve.config", "steve.objects.model", "steve.objects.oid", "steve.objects.signatures",
    "steve.objects.summary", "steve.porcelain.history", "steve.porcelain.log",
    "steve.porcelain.runs", "steve.refs.refs", "steve.refs.revparse", "steve.repo",
    "steve.store.base", "steve.store.kdf",
]  # fmt: skip


def records() -> list[type[_Fields]]:
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, _Fields) and value.__module__ == name:
                found.append(value)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def twin(cls: type[_Fields]) -> Any:
    """The dataclass of the same fields, made by dataclasses itself."""
    params = inspect.signature(cls.__init__).parameters
    spec = []
    for name in cls.__match_args__:
        kwargs: dict[str, Any] = {}
        if name in cls._factories:
            kwargs["default_factory"] = cls._factories[name]
        elif params[name].default is not inspect.Parameter.empty:
            kwargs["default"] = params[name].default
        if name not in cls._compared:
            kwargs["compare"] = False
        elif name not in cls._hashed:
            kwargs["hash"] = False
        spec.append((name, Any, dataclasses.field(**kwargs)))
    frozen = issubclass(cls, Record)
    made = dataclasses.make_dataclass(
        cls.__name__, spec, frozen=frozen, slots=frozen, order=cls is ObjectId
    )
    made.__qualname__ = cls.__qualname__
    return made


def sample(cls: type[_Fields], seed: int) -> list[Any]:
    if cls is ObjectId:
        return [bytes([seed]) * 32]
    if cls.__name__ == "RefRecord":
        return [None, f"refs/heads/b{seed}"]
    return [(f"v{seed}", seed, (seed, "x"))[i % 3] for i in range(len(cls.__match_args__))]


@pytest.mark.parametrize("cls", records(), ids=lambda c: c.__qualname__)
def test_a_record_behaves_as_its_dataclass(cls: type[_Fields]) -> None:
    other = twin(cls)
    a, a2, b = (cls(*sample(cls, s)) for s in (1, 1, 2))
    ta, ta2, tb = (other(*sample(cls, s)) for s in (1, 1, 2))
    if cls is not ObjectId:  # ObjectId keeps its own short repr
        assert repr(a) == repr(ta)
    assert (a == a2, a == b, a != b, a == 1) == (ta == ta2, ta == tb, ta != tb, ta == 1)
    assert cls.__match_args__ == other.__match_args__
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(ta)]
    assert dataclasses.is_dataclass(a) and dataclasses.is_dataclass(cls)
    if issubclass(cls, MutableRecord):
        with pytest.raises(TypeError):
            hash(a)
        return
    assert hash(a) == hash(ta) or None in sample(cls, 1)  # hash(None) differs per process
    assert hash(a) == hash(a2)
    name = cls.__match_args__[0]
    with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{name}'"):
        setattr(a, name, 1)
    with pytest.raises(AttributeError, match=f"cannot delete field '{name}'"):
        delattr(a, name)
    last = cls.__match_args__[-1]
    changed = dataclasses.replace(a, **{last: getattr(b, last)})
    assert type(changed) is cls
    assert repr(changed) == repr(a.replace(**{last: getattr(b, last)}))
    assert dataclasses.asdict(a) == dataclasses.asdict(ta)
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.copy(a) == a and copy.deepcopy(a) == a
    if cls is ObjectId:
        mine = (a < b, a <= b, b > a, b >= a, a < a2)
        assert mine == (ta < tb, ta <= tb, tb > ta, tb >= ta, ta < ta2)
