"""Tolerant, typed reading of a remote service's answer (any service: BigCommerce, SALESmanago, ...).

A client describes what it reads from an answer as a pydantic model of exactly those fields, and
reads every answer through `read_answer`. Each field is one of two kinds:

- **required** (a plain annotation, `id: int`): the product cannot go on without it. When it is
  missing or of the wrong type the whole answer is unreadable: `read_answer` raises `AnswerError`,
  which the client turns into an `Outcome.INVALID` recorded on the call (`AnswerError.remote_error`).
- **opportunistic** (`email: str | None = opportunistic()`): used when it is there. When it is
  missing or wrongly typed it takes its default (None unless given) and a warning names the call and
  the field; the notes are also handed back to the caller (the `notes` list) to record on the call.
  `opportunistic(often_absent=True)` is for a field the service often leaves out: only a wrong
  type is noted then.

An explicit null is a value, not a problem: declare `T | None` where the service may send null.
Fields the model does not declare are kept as they came (`extra="allow"`), so
`model_dump(exclude_unset=True)` gives callers that used the raw dict the same keys, the declared
ones validated (a missing field stays missing). A nested model or list in an opportunistic field
falls back as a whole when anything inside it is unreadable.

    class Shop(AnswerModel):
        id: str
        name: str = opportunistic("")
        currency: str | None = opportunistic()

    shop = read_answer(Shop, response_json, call="GET /v2/store", notes=notes)

Nothing here raises AttributeError/KeyError/TypeError for a strange answer: a body that is not an
object where one is expected, a list of non-objects, a string where a number should be, all end as
either a default with a warning or an `AnswerError`.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, NotRequired, Required, TypeVar, Union, cast, get_args, get_origin, overload

import msgspec
import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.types import Strict
from typing_extensions import TypedDict, is_typeddict

from smbc.core.remote_calls import Outcome, RemoteCallError, Service

log = logging.getLogger(__name__)

T = TypeVar("T")
# How many problems an AnswerError names; the rest are counted.
MAX_PROBLEMS_NAMED = 5
_OPPORTUNISTIC_KEY = "smbc_opportunistic"


def opportunistic(
    default: Any = None, *, default_factory: Callable[[], Any] | None = None, often_absent: bool = False
) -> Any:
    """Declare a field used only when present: missing or wrongly typed, it becomes `default`.

    `often_absent`: the service leaves the field out in ordinary answers, so its absence is no news
    (only a wrong type is noted)."""
    extra = {_OPPORTUNISTIC_KEY: "often_absent" if often_absent else True}
    if default_factory is not None:
        return Field(default_factory=default_factory, json_schema_extra=extra)
    return Field(default=default, json_schema_extra=extra)


@dataclass
class _Reading:
    """What one `read_answer` call collects while pydantic walks the answer."""

    call: str
    notes: list[str] = field(default_factory=list)

    def ignore(self, where: str, why: str) -> None:
        note = f"{where} ignored ({why})"
        self.notes.append(note)
        log.warning("%s: answer field %s", self.call, note)


def _reading(info: ValidationInfo) -> _Reading | None:
    context = info.context
    reading = context.get("reading") if isinstance(context, dict) else None
    return reading if isinstance(reading, _Reading) else None


def _opportunistic_kind(model: type[BaseModel], name: str) -> object:
    """True / "often_absent" for an opportunistic field, None for a required one."""
    info = model.model_fields.get(name)
    extra = info.json_schema_extra if info is not None else None
    return extra.get(_OPPORTUNISTIC_KEY) if isinstance(extra, dict) else None


def _describe(error: ValidationError) -> str:
    """Short, value-free description (an answer can carry personal data: never echo the input)."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg']}"


class AnswerModel(BaseModel):
    """Base of every answer model: unknown fields kept, opportunistic fields tolerant."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _note_missing(cls, data: Any, info: ValidationInfo) -> Any:
        reading = _reading(info)
        if not isinstance(data, dict) or reading is None:
            return data
        for name, spec in cls.model_fields.items():
            present = name in data or (spec.alias is not None and spec.alias in data)
            if not present and _opportunistic_kind(cls, name) is True:
                reading.ignore(f"{cls.__name__}.{name}", "missing")
        return data

    @field_validator("*", mode="wrap")
    @classmethod
    def _tolerate(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            name = info.field_name or ""
            if not _opportunistic_kind(cls, name):
                raise
            reading = _reading(info)
            if reading is not None:
                reading.ignore(f"{cls.__name__}.{name}", f"wrong type: {_describe(error)}")
            return cls.model_fields[name].get_default(call_default_factory=True)


class AnswerError(ValueError):
    """An answer the product cannot use: a required field missing or of the wrong type."""

    def __init__(self, call: str, problems: list[str]) -> None:
        named = "; ".join(problems[:MAX_PROBLEMS_NAMED])
        more = len(problems) - MAX_PROBLEMS_NAMED
        suffix = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"{call}: unreadable answer: {named}{suffix}")
        self.call = call
        self.problems = problems

    def remote_error(self, service: Service, status: int | None = None) -> RemoteCallError:
        """The same problem as the `invalid` outcome of a call (never retried: it would answer alike)."""
        return RemoteCallError(Outcome.INVALID, str(self), service=service, status=status)


def decode_json(content: bytes) -> Any:
    """The JSON value of an answer's body, as `json.loads` reads it; ValueError when it is not JSON.

    pydantic's parser first (a page of orders decodes in two thirds of the time); what it refuses
    (a BOM, another encoding, a lone surrogate, or no JSON at all) is left to `json.loads` to decide."""
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        return json.loads(content)


@lru_cache(maxsize=256)
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


@overload
def read_answer(shape: type[T], data: Any, *, call: str, notes: list[str] | None = None) -> T: ...
@overload
def read_answer(shape: Any, data: Any, *, call: str, notes: list[str] | None = None) -> Any: ...
def read_answer(shape: Any, data: Any, *, call: str, notes: list[str] | None = None) -> Any:
    """`data` (parsed JSON) read as `shape` (an AnswerModel, or e.g. `list[Model]`).

    `call` names the call in warnings and errors ("GET /v3/customers"). Notes about ignored
    opportunistic fields are logged and appended to `notes` when given. Raises `AnswerError`.
    `AsSent(shape)` gives plain JSON instead of models, `Declared(shape)` plain JSON of the declared
    fields only (and takes the body's bytes)."""
    if isinstance(shape, AsSent):
        return _read_as_sent(shape.shape, data, call, notes)
    if isinstance(shape, Declared):
        return _read_declared(shape.shape, data, call, notes)
    reading = _Reading(call)
    try:
        value = _adapter(shape).validate_python(data, context={"reading": reading})
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in item["loc"]) or "answer"
            problems.append(f"{where}: {item['msg']}")
        raise AnswerError(call, problems) from None
    if notes is not None:
        notes.extend(reading.notes)
    return cast(Any, value)


@dataclass(frozen=True)
class AsSent:
    """`read_answer(AsSent(shape), ...)` hands back the answer as plain JSON (dicts and lists), the
    same as reading it as `shape` and dumping the models with `exclude_unset`.

    For pages of hundreds of objects: an answer exactly as modelled (every required and opportunistic
    field there and of its type, nothing to coerce) is checked once strictly, in pydantic's core
    without a Python call per field, and handed back as it came; anything else is read tolerantly."""

    shape: Any


_BASE_DECORATORS = {"_note_missing", "_tolerate"}


@lru_cache(maxsize=256)
def _strict_mirror(model: type[BaseModel]) -> Any:
    """`model` without its tolerance, as a TypedDict: opportunistic fields required unless often
    absent, undeclared keys not copied (validated with strict=True: nothing coerced). None when the
    model validates or dumps by code of its own (a mirror would skip it), so such answers always
    take the tolerant reading."""
    if _has_own_code(model):
        return None
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _mirrored(info.annotation)
        if annotation is _NO_MIRROR:
            return None
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        needed = info.is_required() or _opportunistic_kind(model, name) is True
        fields[name] = Required[annotation] if needed else NotRequired[annotation]
    return TypedDict(f"{model.__name__}AsSent", fields)  # type: ignore[operator]


def _has_own_code(model: type[BaseModel]) -> bool:
    """Whether `model` validates or dumps by code of its own, or has an alias (which would dump
    under the field's name: not the answer as sent)."""
    decorators = model.__pydantic_decorators__
    own = [
        name
        for kind in (
            decorators.validators,
            decorators.field_validators,
            decorators.root_validators,
            decorators.field_serializers,
            decorators.model_serializers,
            decorators.model_validators,
            decorators.computed_fields,
        )
        for name in kind
        if name not in _BASE_DECORATORS
    ]
    return bool(own) or any(info.alias is not None for info in model.model_fields.values())


_NO_MIRROR: Any = object()


def _mirrored(annotation: Any) -> Any:
    """`annotation` with every answer model in it replaced by its strict mirror."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        mirror = _strict_mirror(annotation)
        return _NO_MIRROR if mirror is None else mirror
    if annotation is Any:
        return _NO_MIRROR  # a TypedDict would take a model's extras as declared: keep to models
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        inner = _mirrored(args[0])
        return _NO_MIRROR if inner is _NO_MIRROR else Annotated[(inner, *annotation.__metadata__)]
    if not args:
        return annotation
    mirrored = tuple(_mirrored(arg) for arg in args)
    if _NO_MIRROR in mirrored:
        return _NO_MIRROR
    if origin in (Union, UnionType):
        return Union[mirrored]  # noqa: UP007 (built from a tuple)
    if origin in (list, dict):
        return origin[mirrored]
    return _NO_MIRROR  # a container this mirror does not know: read it tolerantly


@lru_cache(maxsize=256)
def _shape_mirror(shape: Any) -> Any:
    return _mirrored(shape)


def _read_as_sent(shape: Any, data: Any, call: str, notes: list[str] | None) -> Any:
    mirror = _shape_mirror(shape)
    if mirror is not _NO_MIRROR:
        try:
            _adapter(mirror).validate_python(data, strict=True)
        except ValidationError:
            pass  # something missing, odd or to coerce: the tolerant reading decides
        else:
            return data
    value = read_answer(shape, data, call=call, notes=notes)
    return _adapter(shape).dump_python(value, exclude_unset=True)


@dataclass(frozen=True)
class Declared:
    """`read_answer(Declared(shape), body)`: the answer as plain JSON holding only the fields that
    `shape`'s models declare, for a caller that reads nothing else (an order of a /v2 page carries
    ten times the fields the product reads). `body` may be the answer's bytes: an answer exactly as
    modelled (what `AsSent` lets through as it came) is then decoded and checked in one pass in
    msgspec's core, the fields left out skipped, never built; anything else is decoded and read
    tolerantly as ever (notes, defaults, `AnswerError`), then cut to the declared fields."""

    shape: Any


_Check = Callable[[Any], bool]


class _Untranslatable(Exception):
    """A shape msgspec cannot check as pydantic's strict mirror would: it is always read tolerantly."""


@dataclass(frozen=True)
class _FastShape:
    decoder: msgspec.json.Decoder[Any]  # the strict shape: what `AsSent`'s mirror requires
    check: _Check | None  # the models' own value checks (a date readable, money a number)
    lenient: Any  # every field optional: cuts a tolerant reading's dump to the declared fields


class _Translation:
    """An answer shape as msgspec types: each model a TypedDict of its declared fields, required as
    `AsSent`'s mirror requires them (or none, `lenient`), `AfterValidator`s kept as Python checks."""

    def __init__(self, *, lenient: bool) -> None:
        self.lenient = lenient
        self.models: dict[Any, tuple[dict[str, Any], frozenset[str], _Check | None]] = {}

    def shape(self, annotation: Any) -> tuple[Any, _Check | None]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation)
        if annotation is float:
            return int | float, None  # msgspec would hand an integer back as a float
        if annotation in (int, str, bool, type(None), None):
            return annotation, None
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            inner, check = self.shape(args[0])
            return inner, _with_validators(check, annotation.__metadata__)
        if origin is list and len(args) == 1:
            inner, check = self.shape(args[0])
            return list[inner], None if check is None else _each(check)  # type: ignore[valid-type]
        if origin is dict and len(args) == 2 and args[0] is str:
            inner, check = self.shape(args[1])
            return dict[str, inner], None if check is None else _each_value(check)  # type: ignore[valid-type]
        if origin in (Union, UnionType):
            return self.union(args)
        raise _Untranslatable(repr(annotation))  # Any, tuples, sets, ...: read tolerantly

    def model(self, model: type[BaseModel]) -> tuple[Any, _Check | None]:
        if _has_own_code(model):
            raise _Untranslatable(model.__name__)
        fields: dict[str, Any] = {}
        checks: list[tuple[str, _Check]] = []
        required: set[str] = set()
        for name, info in model.model_fields.items():
            annotation, check = self.shape(info.annotation)
            check = _with_validators(check, info.metadata)
            needed = not self.lenient and (info.is_required() or _opportunistic_kind(model, name) is True)
            fields[name] = Required[annotation] if needed else NotRequired[annotation]
            if needed:
                required.add(name)
            if check is not None:
                checks.append((name, check))
        typed = TypedDict(f"{model.__name__}Declared", fields)  # type: ignore[operator]
        check = _fields_check(checks) if checks else None
        self.models[typed] = (fields, frozenset(required), check)
        return typed, check

    def union(self, args: tuple[Any, ...]) -> tuple[Any, _Check | None]:
        members: list[tuple[Any, _Check | None]] = []
        for arg in args:
            translated, check = self.shape(arg)
            if get_origin(translated) in (Union, UnionType):  # a nested union: flattened, its check kept
                members += [(inner, check) for inner in get_args(translated)]
            else:
                members.append((translated, check))
        models = [(t, c) for t, c in members if t in self.models]
        others = [(t, c) for t, c in members if t not in self.models]
        if len(models) > 1:  # msgspec takes one object type in a union: the models' fields merged
            others.append(self.merged([t for t, _ in models]))
        else:
            others += models
        kinds: dict[type, _Check | None] = {}
        for translated, check in others:
            for kind in _python_types(translated):
                if kinds.get(kind, check) is not check:
                    raise _Untranslatable("two members of a union read the same JSON type")
                kinds[kind] = check
        union = Union[tuple(dict.fromkeys(t for t, _ in others))]  # noqa: UP007 (built from a tuple)
        return union, _by_type(kinds) if any(kinds.values()) else None

    def merged(self, models: list[Any]) -> tuple[Any, _Check]:
        """One TypedDict of the models' fields (all optional) and a check that the object is one of them."""
        fields: dict[str, Any] = {}
        for typed in models:
            for name, annotation in self.models[typed][0].items():
                bare = get_args(annotation)[0]
                if fields.get(name, bare) != bare:
                    raise _Untranslatable(f"{name}: of another type in another member")
                fields[name] = bare
        branches = [(required, check) for _, required, check in (self.models[t] for t in models)]

        def one_of(value: Any) -> bool:
            return any(
                required <= value.keys() and (check is None or check(value)) for required, check in branches
            )

        name = "Or".join(t.__name__ for t in models)
        return TypedDict(name, {n: NotRequired[a] for n, a in fields.items()}), one_of  # type: ignore[operator]


def _python_types(translated: Any) -> list[type]:
    if translated is None or translated is type(None):
        return [type(None)]
    origin = get_origin(translated)
    if origin is list:
        return [list]
    if origin is dict or is_typeddict(translated):
        return [dict]
    if origin in (Union, UnionType):
        return [kind for inner in get_args(translated) for kind in _python_types(inner)]
    return [translated]


def _with_validators(check: _Check | None, metadata: Any) -> _Check | None:
    validators: list[Callable[[Any], Any]] = []
    for meta in metadata:
        if isinstance(meta, Strict) and meta.strict:
            continue  # msgspec never coerces
        if isinstance(meta, AfterValidator) and len(inspect.signature(meta.func).parameters) == 1:
            validators.append(meta.func)
            continue
        raise _Untranslatable(repr(meta))  # a constraint or a validator msgspec cannot see
    if not validators:
        return check

    def valid(value: Any) -> bool:
        if check is not None and not check(value):
            return False
        try:
            for validator in validators:
                validator(value)
        except (ValueError, AssertionError):  # what pydantic reports as a validation error
            return False
        return True

    return valid


def _each(check: _Check) -> _Check:
    return lambda values: all(check(value) for value in values)


def _each_value(check: _Check) -> _Check:
    return lambda values: all(check(value) for value in values.values())


def _fields_check(checks: list[tuple[str, _Check]]) -> _Check:
    def check(value: dict[str, Any]) -> bool:
        for name, field_check in checks:
            field_value = value.get(name, _ABSENT)
            if field_value is not _ABSENT and not field_check(field_value):
                return False
        return True

    return check


def _by_type(kinds: dict[type, _Check | None]) -> _Check:
    def check(value: Any) -> bool:
        kind_check = kinds.get(type(value))
        return kind_check is None or kind_check(value)

    return check


_ABSENT = object()


@lru_cache(maxsize=64)
def _fast_shape(shape: Any) -> _FastShape | None:
    """`shape` as msgspec reads it; None when it cannot say what pydantic's strict mirror would."""
    try:
        strict, check = _Translation(lenient=False).shape(shape)
        lenient, _ = _Translation(lenient=True).shape(shape)
    except _Untranslatable:
        return None
    return _FastShape(msgspec.json.Decoder(strict), check, lenient)


def _read_declared(shape: Any, data: Any, call: str, notes: list[str] | None) -> Any:
    fast = _fast_shape(shape)
    if isinstance(data, bytes | bytearray | memoryview):
        if fast is not None:
            try:
                value = fast.decoder.decode(data)
            except msgspec.DecodeError:
                pass  # not exactly as modelled, or not JSON: decoded again below to decide
            else:
                if fast.check is None or fast.check(value):
                    return value
        try:
            data = decode_json(bytes(data))
        except ValueError:
            raise AnswerError(call, ["not JSON"]) from None
    value = _read_as_sent(shape, data, call, notes)
    if fast is None:
        return value  # a shape msgspec cannot read: every field as sent
    try:
        return msgspec.convert(value, fast.lenient)
    except msgspec.ValidationError:
        return value
