"""Frozen records with ``__slots__``, without :mod:`dataclasses` at import time.

``@dataclass(frozen=True, slots=True)`` compiles every generated method with
``exec`` when the class is created, and importing :mod:`dataclasses` imports
:mod:`inspect`: together most of what a short command spent in STEVE's own
modules at start-up (issue 13, goal 5).  The records on the start-up path
(objects, refs, the store's rows, the config) derive from :class:`Record`
instead, and behave as the dataclasses they replace:

- ``__init__`` is written out in each class (the fields in order, with their
  defaults; ``__post_init__`` checks stay in ``__init__``);
- equality compares the same class's fields in order (``_compared``: those
  a ``field(compare=False)`` left out), ``__hash__`` hashes the same tuple
  as the dataclass did (``_hashed``: without a ``field(hash=False)``);
- ``repr`` is the dataclass's ``Name(field=value, ...)``;
- assigning or deleting an attribute raises :class:`FrozenInstanceError`
  (an AttributeError, as dataclasses' own);
- ``__match_args__``, pickling and copying;
- :func:`dataclasses.fields`, :func:`dataclasses.replace`,
  :func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` work on
  them: ``__dataclass_fields__`` is made on first use (that use imports
  :mod:`dataclasses`, start-up does not).

``tests/test_record.py`` compares each record with the dataclass it replaces.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, ClassVar, Self


class FrozenInstanceError(AttributeError):
    """An attempt to change a frozen record (as ``dataclasses.FrozenInstanceError``)."""


class _DataclassFields:
    """``__dataclass_fields__``, made on first use from an equivalent dataclass."""

    def __get__(self, obj: object, owner: type[_Fields]) -> dict[str, Any]:
        made = owner.__dict__.get("_made_fields")
        if made is None:
            made = _dataclass_fields(owner)
            type.__setattr__(owner, "_made_fields", made)
        return made


def _dataclass_fields(cls: type[_Fields]) -> dict[str, Any]:
    import dataclasses
    import inspect

    params = inspect.signature(cls.__init__).parameters
    spec: list[tuple[str, Any, Any]] = []
    for name in cls.__match_args__:
        default = params[name].default
        kwargs: dict[str, Any] = {}
        if name in cls._factories:
            kwargs["default_factory"] = cls._factories[name]
        elif default is not inspect.Parameter.empty:
            kwargs["default"] = default
        if name not in cls._compared:
            kwargs["compare"] = False
        elif name not in cls._hashed:
            kwargs["hash"] = False
        spec.append((name, cls.__annotations__.get(name, Any), dataclasses.field(**kwargs)))
    shadow = dataclasses.make_dataclass(cls.__name__, spec, frozen=issubclass(cls, Record))
    fields: dict[str, Any] = getattr(shadow, "__dataclass_fields__")  # noqa: B009
    return fields


class _Fields:
    """What the records share: fields in ``__match_args__`` (in order;
    ``__slots__ = __match_args__``), equality, ``repr``, :meth:`replace`, pickling
    and ``__dataclass_fields__``."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _compared: ClassVar[tuple[str, ...]] = ()
    _hashed: ClassVar[tuple[str, ...]] = ()
    _factories: ClassVar[dict[str, Any]] = {}  # field(default_factory=...): made when None
    _compare_key: ClassVar[Any]
    _compare_one: ClassVar[bool]
    _hash_key: ClassVar[Any]
    _hash_one: ClassVar[bool]
    __dataclass_fields__: ClassVar[Any] = _DataclassFields()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__match_args__" not in cls.__dict__:
            return  # an intermediate base (Record, MutableRecord)
        names: tuple[str, ...] = cls.__dict__["__match_args__"]
        compared = cls.__dict__.get("_compared", names)
        hashed = cls.__dict__.get("_hashed", compared)
        cls._compared = compared
        cls._hashed = hashed
        # operator.attrgetter: called through the instance without binding, in C;
        # one field gives the value itself, wrapped in a 1-tuple as the dataclass did
        cls._compare_key = attrgetter(*compared) if compared else _no_fields
        cls._compare_one = len(compared) == 1
        cls._hash_key = attrgetter(*hashed) if hashed else _no_fields
        cls._hash_one = len(hashed) == 1

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            key = self._compare_key
            if self._compare_one:
                return bool((key(self),) == (key(other),))
            return bool(key(self) == key(other))
        return NotImplemented

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{self.__class__.__qualname__}({parts})"

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (as :func:`dataclasses.replace`)."""
        values = {name: getattr(self, name) for name in self.__match_args__}
        values.update(changes)
        cls: Any = self.__class__
        made: Self = cls(**values)
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, tuple(getattr(self, name) for name in self.__match_args__))


class Record(_Fields):
    """A frozen record (``@dataclass(frozen=True, slots=True)``).  A subclass names
    its fields in ``__match_args__``, sets ``__slots__ = __match_args__`` and writes
    ``__init__``, setting each field with ``object.__setattr__``."""

    __slots__ = ()

    def __hash__(self) -> int:
        if self._hash_one:
            return hash((self._hash_key(self),))
        return hash(self._hash_key(self))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


class MutableRecord(_Fields):
    """A mutable record (``@dataclass``, ``@dataclass(slots=True)``): equal by its
    fields, so unhashable.  A subclass with ``__slots__`` lists them as
    :class:`Record`'s do; one without gets a ``__dict__``."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]


class _NoFields:
    """The key of a record without fields (as ``attrgetter`` of none would be)."""

    __slots__ = ()

    def __call__(self, obj: object) -> tuple[()]:
        return ()


_no_fields = _NoFields()  # an instance, not a function: not bound as a method
