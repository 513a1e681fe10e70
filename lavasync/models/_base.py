"""The base of every Lavalink wire model, and the fast codec compiled from its fields.

Every model is a dataclass deriving from :class:`WireModel` (a dataclasses-json
``DataClassJsonMixin`` with camelCase wire names), so ``from_dict``/``to_dict``/``to_json``/
``schema()`` work as dataclasses-json documents them. On top of that each model has:

* ``Cls.from_wire(data)``: the hot-path decoder. The first call compiles a decoder for the
  class from its dataclass fields, type hints and dataclasses-json config (wire names,
  defaults, nested models); later calls run that specialised function. It checks required
  keys and JSON types, fills defaults for missing optional keys, keeps unknown keys and
  remembers which optional keys were absent, so ``to_wire`` gives the payload back as it came.
* ``obj.to_wire()``: a JSON-ready dict in wire names; ``UNSET`` fields are left out,
  snowflakes are written as decimal strings.

Bad wire data raises :class:`WireFormatError` (a ``ValueError``) naming the model and key.
``to_wire`` is what lavasync sends; dataclasses-json's own methods keep their own rules
(``schema().dump`` for instance writes a None filter as null, which a PATCH must not carry).

Models are plain mutable dataclasses. Nothing here locks: an instance is safe to share
between threads as long as nobody mutates it, which is how lavasync uses them.
"""

import dataclasses
import enum
import math
import threading
import typing
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Final, Literal, Optional, TypeVar, Union

import marshmallow
from dataclasses_json import DataClassJsonMixin, LetterCase, config
from dataclasses_json.core import _user_overrides_or_exts
from dataclasses_json.stringcase import camelcase

from ..errors import DecodeError

__all__ = [
    "UNSET",
    "Unset",
    "UnsetType",
    "WireFormatError",
    "WireModel",
    "snowflake",
]

#: Largest value a Java ``long`` holds; Lavalink uses it for "unknown length" and ids must fit.
MAX_LONG: Final = 2**63 - 1


class UnsetType(enum.Enum):
    """Type of :data:`UNSET`: "this field was not given" (as opposed to ``None`` = JSON null)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: The "not given" sentinel of request models: an UNSET field is never sent.
UNSET: Final = UnsetType.UNSET
#: Use in annotations: ``Union[int, Unset]``; narrow with ``if value is not UNSET``.
Unset = Literal[UnsetType.UNSET]


class WireFormatError(DecodeError):
    """A Lavalink JSON payload lacks a required key or has a value of the wrong type.

    A ``ValueError`` (through :class:`lavasync.DecodeError`); ``model`` and ``key`` say where.
    """

    def __init__(self, message: str, *, model: str = "", key: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.key = key


def snowflake(value: object, name: str = "id") -> int:
    """A Discord snowflake as ``int``, from an int or a decimal string.

    Raises ValueError (naming ``name``) for bools, negative or too large numbers and anything
    that is not a plain decimal number.
    """
    cls = value.__class__
    if cls is str:
        text = typing.cast(str, value)
        if len(text) < 19 and text.isdigit() and text.isascii():  # < 10**18: fits, fast path
            return int(text)
    elif cls is int and 0 <= typing.cast(int, value) <= MAX_LONG:
        return typing.cast(int, value)
    return _snowflake_slow(value, name)


def _snowflake_slow(value: object, name: str) -> int:
    if isinstance(value, str):
        if not (value.isdigit() and value.isascii()):
            raise ValueError(f"{name} must be a snowflake (decimal digits), not {value!r}")
        result = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        result = int(value)
    else:
        raise ValueError(
            f"{name} must be a snowflake (an int or a decimal string), not {type(value).__name__}"
            f" {value!r}"
        )
    if not 0 <= result <= MAX_LONG:
        raise ValueError(f"{name} must be a snowflake between 0 and 2**63-1, not {value!r}")
    return result


def _lenient_snowflake(value: Any) -> Any:
    """A snowflake as int when it is one; any other string is kept as it came (placeholders)."""
    if type(value) is str and value.isdigit() and value.isascii():
        return int(value)
    return value


def _is_unset(value: object) -> bool:
    return value is UNSET


def _identity(value: Any) -> Any:
    return value


_W = TypeVar("_W", bound="WireModel")


class WireModel(DataClassJsonMixin):
    """Base of every Lavalink wire model (see the module docstring).

    Instances hold no lock: share them between threads freely as long as nobody mutates
    them (lavasync never mutates a model after decoding it). Compilation of the codec on
    first use is thread-safe.
    """

    dataclass_json_config = config(letter_case=LetterCase.CAMEL)["dataclasses_json"]

    # Per-instance bookkeeping, set only on decoded instances that need it (class defaults).
    _wire_absent: ClassVar[tuple[str, ...]] = ()
    _wire_extra: ClassVar[Optional[dict[str, Any]]] = None
    # Liberal reading (see liberal_wire): run the class's _wire_liberal even on the fast path
    _wire_hook_first: ClassVar[bool] = False

    @classmethod
    def from_wire(cls: type[_W], data: Mapping[str, Any]) -> _W:
        """Decode a wire payload (a parsed JSON object). Raises :class:`WireFormatError`."""
        codec = _codec_for(cls)
        return typing.cast(_W, codec.from_wire(cls, data))

    def to_wire(self) -> dict[str, Any]:
        """This model as a JSON-ready dict in wire names (UNSET fields left out)."""
        return _codec_for(type(self)).to_wire(self)

    @classmethod
    def from_server(cls: type[_W], data: Mapping[str, Any]) -> _W:
        """Decode what a server answered, liberally (see :func:`liberal_wire`).

        The strict :meth:`from_wire` runs first (the fast path); only when it fails is the
        payload normalised: a missing or null field gets a sensible default, a value of the
        wrong JSON type is coerced or defaulted, so one odd field never costs the whole answer.
        Only the keys a model names in ``_wire_essential`` (without them the answer carries
        nothing useful) still raise :class:`WireFormatError`.
        """
        if cls._wire_hook_first and isinstance(data, Mapping):
            hook = _liberal_hook(cls)
            if hook is not None:
                data = hook(dict(data))  # a shape that decodes strictly but means otherwise
        try:
            return cls.from_wire(data)
        except WireFormatError:
            if not isinstance(data, Mapping):
                raise
        return cls.from_wire(liberal_wire(cls, data))

    @property
    def wire_extras(self) -> dict[str, Any]:
        """Keys the server sent that this model does not know (plugins add some); a copy."""
        extra = self._wire_extra
        return dict(extra) if extra else {}


# --------------------------------------------------------------------------- field helpers
#
# Field metadata under the "lavasync" key steers the compiled codec:
#   snowflake: "strict" | "lenient"   int in Python, decimal string on the wire
#   omit_none: True                   None is not written (absent = off)
#   decode / encode: callables        custom conversion of the wire value


def _meta(
    lavasync: dict[str, Any],
    *,
    encoder: Optional[Callable[..., Any]] = None,
    decoder: Optional[Callable[..., Any]] = None,
    mm_field: Optional[marshmallow.fields.Field] = None,
    field_name: Optional[str] = None,
    exclude: Optional[Callable[[Any], bool]] = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(
        config(
            encoder=encoder,
            decoder=decoder,
            mm_field=mm_field,
            field_name=field_name,
            exclude=exclude,
        )
    )
    metadata["lavasync"] = lavasync
    return metadata


def _sf_encode(value: Any) -> Any:
    return None if value is None else str(value)


def _sf_decode(value: Any) -> Any:
    return snowflake(value)


def snowflake_meta(*, lenient: bool = False) -> dict[str, Any]:
    """Field metadata for a snowflake: ``int`` in Python, decimal string on the wire.

    Use as ``guild_id: int = field(metadata=snowflake_meta())``. ``lenient`` keeps a
    non-numeric string as it came instead of failing (placeholders in example payloads).
    """
    decoder = _lenient_snowflake if lenient else _sf_decode
    return _meta(
        {"snowflake": "lenient" if lenient else "strict"},
        encoder=_sf_encode,
        decoder=decoder,
        mm_field=_SnowflakeField(decoder),
    )


class _CamelField(marshmallow.fields.Field):
    """A marshmallow field given through dataclasses-json's ``mm_field``: dataclasses-json
    then leaves the wire name to the field, so take the camelCase of the attribute name."""

    def _bind_to_schema(self, field_name: str, schema: Any) -> None:
        if self.data_key is None:
            self.data_key = typing.cast(str, typing.cast(Any, camelcase)(field_name))
        super()._bind_to_schema(field_name, schema)


class _SnowflakeField(_CamelField):
    """Marshmallow field for ``schema()``: a snowflake dumps as a string, loads as an int."""

    def __init__(self, decoder: Callable[[Any], Any]) -> None:
        super().__init__(allow_none=True)
        self.decoder = decoder

    def _serialize(self, value: Any, attr: Optional[str], obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value)

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        try:
            return self.decoder(value)
        except ValueError as exc:
            raise marshmallow.ValidationError(str(exc)) from None


def _is_none(value: object) -> bool:
    return value is None


#: Field metadata for an optional value left out of the wire dict when None (absent = off).
#: Use as ``field(default=None, metadata=OMIT_NONE)``.
OMIT_NONE: Final = _meta({"omit_none": True}, exclude=_is_none)


def unset_meta(nested: Optional[Callable[[], type["WireModel"]]] = None) -> dict[str, Any]:
    """Field metadata for a request field that is never sent while UNSET.

    Use as ``field(default=UNSET, metadata=unset_meta())``. ``nested`` names the model type
    (lazily) so that dataclasses-json's ``from_dict`` and ``schema()`` build it too.
    """
    decoder: Callable[[Any], Any] = _identity
    if nested is not None:
        get_model = nested

        def decode_nested(value: Any) -> Any:
            model = get_model()
            if value is UNSET or isinstance(value, model):  # a default, or decoded already
                return value
            return model.from_dict(value)

        decoder = decode_nested
        inner: marshmallow.fields.Field = marshmallow.fields.Nested(
            lambda: get_model().schema(), allow_none=True
        )
    else:
        inner = marshmallow.fields.Raw(allow_none=True)
    return _meta({}, decoder=decoder, exclude=_is_unset, mm_field=_UnsetField(inner))


class _UnsetField(_CamelField):
    """Marshmallow field for ``schema()``: skips UNSET on dump, loads absent as UNSET."""

    def __init__(self, inner: marshmallow.fields.Field) -> None:
        super().__init__(load_default=UNSET, dump_default=marshmallow.missing, allow_none=True)
        self.inner = inner

    def _bind_to_schema(self, field_name: str, schema: Any) -> None:
        super()._bind_to_schema(field_name, schema)
        self.inner._bind_to_schema(field_name, schema)

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        value = super().get_value(obj, attr, accessor=accessor)
        return marshmallow.missing if value is UNSET else value

    def _serialize(self, value: Any, attr: Optional[str], obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return self.inner._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return self.inner.deserialize(value, attr, data, **kwargs)


# --------------------------------------------------------------------------- the compiler

_MISSING: Any = object()
_KIND_SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}
_compile_lock = threading.RLock()


class _Codec:
    """The compiled decoder/encoder of one model class."""

    __slots__ = ("dec", "enc", "from_wire", "specs", "to_wire")

    def __init__(self) -> None:
        self.specs: list[_Spec] = []
        self.dec: Callable[[Any], Any] = _not_ready
        self.enc: Callable[[Any], dict[str, Any]] = _not_ready
        self.from_wire: Callable[[Any, Any], Any] = _not_ready
        self.to_wire: Callable[[Any], dict[str, Any]] = _not_ready


def _not_ready(*args: Any) -> Any:  # pragma: no cover - only reachable on a compiler bug
    raise RuntimeError("wire codec used before it was compiled")


_codecs: dict[type, _Codec] = {}


def _codec_for(cls: type) -> _Codec:
    codec = _codecs.get(cls)
    if codec is not None and codec.dec is not _not_ready:
        return codec
    with _compile_lock:
        return _compile(cls)


class _Spec:
    """What the compiler needs to know about one field."""

    def __init__(self, cls: type, f: "dataclasses.Field[Any]", hint: Any, key: str) -> None:
        self.name = f.name
        self.key = key
        meta: dict[str, Any] = dict(f.metadata.get("lavasync", {}))
        self.snowflake: Optional[str] = meta.get("snowflake")
        self.omit_none: bool = bool(meta.get("omit_none"))
        self.custom_decode: Optional[Callable[[Any], Any]] = meta.get("decode")
        self.custom_encode: Optional[Callable[[Any], Any]] = meta.get("encode")
        self.has_default = f.default is not dataclasses.MISSING
        self.has_factory = f.default_factory is not dataclasses.MISSING
        self.default: Any = f.default
        self.factory: Any = f.default_factory
        self.unsettable = False
        self.nullable = False
        self.kind = "any"  # str int float bool any dict list model
        self.elem: Any = None  # list element: a scalar kind name, "any", or a model class
        self.model: Any = None
        self._classify(cls, hint)

    @property
    def required(self) -> bool:
        return not (self.has_default or self.has_factory)

    def _classify(self, cls: type, hint: Any) -> None:
        args = _union_args(hint)
        if args is not None:
            rest = []
            for arg in args:
                if arg is type(None):
                    self.nullable = True
                elif arg == Unset:
                    self.unsettable = True
                else:
                    rest.append(arg)
            hint = rest[0] if len(rest) == 1 else Any
        self.kind, self.elem, self.model = _kind_of(hint)


def _union_args(hint: Any) -> Optional[tuple[Any, ...]]:
    if typing.get_origin(hint) is Union:
        flat: list[Any] = []
        for arg in typing.get_args(hint):
            inner = _union_args(arg)
            flat.extend(inner if inner is not None else (arg,))
        return tuple(flat)
    return None


def _kind_of(hint: Any) -> tuple[str, Any, Any]:
    if hint in _KIND_SCALARS:
        return _KIND_SCALARS[hint], None, None
    origin = typing.get_origin(hint)
    # (on 3.9 a ``list[X]`` alias passes isinstance(..., type): check the origin first)
    if origin is None and isinstance(hint, type) and issubclass(hint, WireModel):
        return "model", None, hint
    if hint is dict or origin is dict or hint is Mapping or origin is Mapping:
        return "dict", None, None
    if hint is list or origin is list:
        args = typing.get_args(hint)
        if not args:
            return "list", "any", None
        elem_kind, _, elem_model = _kind_of(args[0])
        if elem_kind == "model":
            return "list", elem_model, None
        return "list", elem_kind if elem_kind in ("str", "int", "float", "bool") else "any", None
    return "any", None, None


_CHECKS = {
    "str": "type({v}) is str",
    "int": "type({v}) is int",
    "float": "(type({v}) is float or type({v}) is int)",
    "bool": "type({v}) is bool",
    "dict": "type({v}) is dict",
    "list": "type({v}) is list",
}
_EXPECT = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "dict": "a JSON object",
    "list": "a JSON array",
    "model": "a JSON object",
}


def _compile(cls: type) -> _Codec:
    """Compile (once) the decoder and encoder of ``cls`` and of the models it nests."""
    codec = _codecs.get(cls)
    if codec is not None:
        return codec  # compiled, or being compiled higher up this thread's stack (recursion)
    if not (isinstance(cls, type) and issubclass(cls, WireModel)):
        raise TypeError(f"{cls!r} is not a WireModel")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    codec = _Codec()
    _codecs[cls] = codec
    try:
        _build(cls, codec)
    except BaseException:
        del _codecs[cls]
        raise
    return codec


def _build(cls: type, codec: _Codec) -> None:
    hints = typing.get_type_hints(cls)
    overrides = typing.cast(Any, _user_overrides_or_exts)(cls)
    specs: list[_Spec] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: init=False fields are not supported")
        letter_case = overrides[f.name].letter_case
        key = letter_case(f.name) if letter_case is not None else f.name
        specs.append(_Spec(cls, f, hints[f.name], key))
    codec.specs = specs

    name = cls.__name__
    g: dict[str, Any] = {
        "_cls": cls,
        "_M": _MISSING,
        "UNSET": UNSET,
        "_new": object.__new__,
        "_as_dict": _as_dict,
        "_missing": _missing_key,
        "_bad": _bad_value,
        "_badlist": _bad_list,
        "_sf": snowflake,
        "_lsf": _lenient_snowflake,
        "_extras": _collect_extras,
        "_drop_absent": _drop_absent,
        "_WFE": WireFormatError,
        "_known": frozenset(s.key for s in specs),
        "_specs": {s.name: s for s in specs},
        "_fixup": cls.__dict__.get("_wire_fixup"),
        "_post_init": getattr(cls, "__post_init__", None),
        "_slow_from": _slow_from_wire,
        "_slow_to": _slow_to_wire,
    }
    # nested models: compile first (a model being compiled up the stack resolves lazily)
    nested_names: dict[type, str] = {}

    def ref(model: type) -> str:
        if model not in nested_names:
            nested_names[model] = f"_n{len(nested_names)}"
        return nested_names[model]

    for s in specs:
        if s.model is not None:
            ref(s.model)
        if isinstance(s.elem, type):
            ref(s.elem)

    dec_body = _decoder_source(specs, g, ref, name)
    enc_body = _encoder_source(specs, g, ref)
    source = "\n".join(
        [
            "def dec(d):",
            *dec_body,
            "def from_wire(cls, d):",
            "    if cls is not _cls:",
            "        return _slow_from(cls, d)",
            *dec_body,
            "def enc(o):",
            *enc_body,
            "def to_wire(o):",
            "    if o.__class__ is not _cls:",
            "        return _slow_to(o)",
            *enc_body,
        ]
    )
    for model, alias in nested_names.items():
        child = _compile(model)
        g[alias + "d"] = _late(child, "dec") if child.dec is _not_ready else child.dec
        g[alias + "e"] = _late(child, "enc") if child.enc is _not_ready else child.enc
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<lavasync wire codec {name}>", "exec"), g, namespace)
    codec.dec = namespace["dec"]
    codec.enc = namespace["enc"]
    codec.from_wire = namespace["from_wire"]
    codec.to_wire = namespace["to_wire"]
    # Install the compiled functions on the class itself: no lookup left on the hot path.
    cls.from_wire = classmethod(namespace["from_wire"])  # type: ignore[attr-defined]
    cls.to_wire = namespace["to_wire"]  # type: ignore[attr-defined]


def _late(codec: _Codec, attr: str) -> Callable[[Any], Any]:
    """Forward to a codec that is still being compiled (recursive models)."""

    def call(value: Any) -> Any:
        return getattr(codec, attr)(value)

    return call


def _decoder_source(
    specs: list[_Spec], g: dict[str, Any], ref: Callable[[type], str], name: str
) -> list[str]:
    lines = [
        "    if type(d) is not dict:",
        "        d = _as_dict(d, _cls)",
    ]
    required = [s for s in specs if s.required]
    if required:
        lines.append("    try:")
        lines.extend(f"        v_{s.name} = d[{s.key!r}]" for s in required)
        lines.append("    except KeyError as e:")
        lines.append("        raise _missing(_cls, e.args[0]) from None")
    lines.append("    absent = ()")
    lines.append("    m = 0")
    for s in specs:
        v = f"v_{s.name}"
        conv = _decode_value_lines(s, v, g, ref)
        if conv and s.nullable:
            conv = [f"if {v} is not None:"] + ["    " + line for line in conv]
        if s.required:
            lines.extend("    " + line for line in conv)
            continue
        if s.unsettable:
            lines.append(f"    {v} = d.get({s.key!r}, UNSET)")
            lines.append(f"    if {v} is UNSET:")
            lines.append("        m += 1")
        else:
            lines.append(f"    {v} = d.get({s.key!r}, _M)")
            lines.append(f"    if {v} is _M:")
            lines.append(f"        {v} = {_default_expr(s, g)}")
            if not s.omit_none:  # an omitted None is left out anyway: nothing to remember
                lines.append(f"        absent += ({s.name!r},)")
            lines.append("        m += 1")
        if conv:
            # defaults are trusted; only a value that came from the wire is checked
            lines.append("    else:")
            lines.extend("        " + line for line in conv)
    lines.append(f"    if len(d) != {len(specs)} - m:")
    lines.append("        extra = _extras(d, _known)")
    lines.append("    else:")
    lines.append("        extra = None")
    items = ", ".join(f"{s.name!r}: v_{s.name}" for s in specs)
    lines.append(f"    od = {{{items}}}")
    lines.append("    if absent:")
    lines.append("        od['_wire_absent'] = absent")
    lines.append("    if extra:")
    lines.append("        od['_wire_extra'] = extra")
    if g["_fixup"] is not None:
        lines.append("    _fixup(od)")
    lines.append("    o = _new(_cls)")
    lines.append("    o.__dict__ = od")
    if g["_post_init"] is not None:
        lines.append("    o.__post_init__()")
    lines.append("    return o")
    return lines


def _default_expr(s: _Spec, g: dict[str, Any]) -> str:
    if s.has_factory:
        if s.factory is dict:
            return "{}"
        if s.factory is list:
            return "[]"
        g[f"_df_{s.name}"] = s.factory
        return f"_df_{s.name}()"
    if s.default is None or s.default is UNSET or isinstance(s.default, (bool, int, float, str)):
        return repr(s.default) if s.default is not UNSET else "UNSET"
    g[f"_dv_{s.name}"] = s.default
    return f"_dv_{s.name}"


def _decode_value_lines(
    s: _Spec, v: str, g: dict[str, Any], ref: Callable[[type], str]
) -> list[str]:
    """Statements that check ``v`` (a value from the wire) and convert it in place."""
    bad = f"_bad(_cls, {s.key!r}, {v}, {_describe(s)!r})"
    if s.custom_decode is not None:
        g[f"_cd_{s.name}"] = s.custom_decode
        return [
            "try:",
            f"    {v} = _cd_{s.name}({v})",
            "except _WFE as e:",
            f"    raise _bad(_cls, {s.key!r}, {v}, None, e) from None",
            "except (TypeError, ValueError, KeyError) as e:",
            f"    raise _bad(_cls, {s.key!r}, {v}, None, e) from None",
        ]
    if s.snowflake == "strict":
        return [
            f"if type({v}) is str and {v}.isdigit() and {v}.isascii() and len({v}) < 20:",
            f"    {v} = int({v})",
            "else:",
            "    try:",
            f"        {v} = _sf({v}, {s.key!r})",
            "    except ValueError:",
            f"        raise {bad} from None",
        ]
    if s.snowflake == "lenient":
        return [f"if type({v}) is str:", f"    {v} = _lsf({v})"]
    if s.kind == "model":
        alias = ref(s.model)
        return [
            "try:",
            f"    {v} = {alias}d({v})",
            "except _WFE as e:",
            f"    raise _bad(_cls, {s.key!r}, {v}, None, e) from None",
        ]
    if s.kind == "list":
        out = [f"if type({v}) is not list:", f"    raise {bad}"]
        if isinstance(s.elem, type):
            alias = ref(s.elem)
            out += [
                "try:",
                f"    {v} = [{alias}d(x) for x in {v}]",
                "except _WFE as e:",
                f"    raise _bad(_cls, {s.key!r}, {v}, None, e) from None",
            ]
        elif s.elem in _CHECKS:
            check = _CHECKS[s.elem].format(v="x")
            out += [
                f"for x in {v}:",
                f"    if not {check}:",
                f"        raise _badlist(_cls, {s.key!r}, x, {_EXPECT[s.elem]!r})",
            ]
        return out
    if s.kind in _CHECKS:
        return [f"if not {_CHECKS[s.kind].format(v=v)}:", f"    raise {bad}"]
    return []


def _describe(s: _Spec) -> str:
    text = "a snowflake (decimal string)" if s.snowflake else _EXPECT.get(s.kind, "a value")
    return text + (" or null" if s.nullable else "")


def _encode_expr(s: _Spec, v: str, g: dict[str, Any], ref: Callable[[type], str]) -> str:
    """An expression turning the non-None, non-UNSET Python value ``v`` into wire form."""
    if s.custom_encode is not None:
        g[f"_ce_{s.name}"] = s.custom_encode
        return f"_ce_{s.name}({v})"
    if s.snowflake:
        return f"str({v})"
    if s.kind == "model":
        return f"{ref(s.model)}e({v})"
    if s.kind == "list":
        if isinstance(s.elem, type):
            return f"[{ref(s.elem)}e(x) for x in {v}]"
        return f"list({v})"
    if s.kind == "dict":
        return f"dict({v})"
    return v


def _encoder_source(specs: list[_Spec], g: dict[str, Any], ref: Callable[[type], str]) -> list[str]:
    plain: list[str] = []
    lines: list[str] = []
    for s in specs:
        attr = f"o.{s.name}"
        conv = _encode_expr(s, "v", g, ref)
        simple = conv == "v"
        if s.unsettable or s.omit_none:
            skip = "UNSET" if s.unsettable else "None"
            lines.append(f"    v = {attr}")
            lines.append(f"    if v is not {skip}:")
            if s.unsettable and s.nullable and not simple:
                lines.append(f"        r[{s.key!r}] = None if v is None else {conv}")
            else:
                lines.append(f"        r[{s.key!r}] = {conv}")
        elif simple:
            plain.append(f"{s.key!r}: {attr}")
        elif s.nullable:
            lines.append(f"    v = {attr}")
            lines.append(f"    r[{s.key!r}] = None if v is None else {conv}")
        else:
            plain.append(f"{s.key!r}: {_encode_expr(s, attr, g, ref)}")
    out = [f"    r = {{{', '.join(plain)}}}"]
    out.extend(lines)
    out += [
        "    a = o._wire_absent",
        "    if a:",
        "        _drop_absent(o, r, a, _specs)",
        "    x = o._wire_extra",
        "    if x:",
        "        for k in x:",
        "            if k not in r:",
        "                r[k] = x[k]",
        "    return r",
    ]
    return out


# --------------------------------------------------------------------------- runtime helpers


def _as_dict(data: Any, cls: type) -> dict[str, Any]:
    if isinstance(data, Mapping):
        return dict(data)
    raise WireFormatError(
        f"{cls.__name__}: expected a JSON object, got {type(data).__name__} {_short(data)}",
        model=cls.__name__,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _missing_key(cls: type, key: str) -> WireFormatError:
    return WireFormatError(
        f"{cls.__name__}: required key {key!r} is missing", model=cls.__name__, key=key
    )


def _bad_value(
    cls: type,
    key: str,
    value: Any,
    expected: Optional[str],
    cause: Optional[BaseException] = None,
) -> WireFormatError:
    if cause is not None:
        message = f"{cls.__name__}.{key}: {cause}"
    else:
        message = (
            f"{cls.__name__}.{key}: expected {expected}, got {type(value).__name__} {_short(value)}"
        )
    return WireFormatError(message, model=cls.__name__, key=key)


def _bad_list(cls: type, key: str, item: Any, expected: str) -> WireFormatError:
    return WireFormatError(
        f"{cls.__name__}.{key}: every item must be {expected}, got {type(item).__name__} "
        f"{_short(item)}",
        model=cls.__name__,
        key=key,
    )


def _collect_extras(data: dict[str, Any], known: frozenset[str]) -> Optional[dict[str, Any]]:
    extra = {k: v for k, v in data.items() if k not in known}
    return extra or None


def _drop_absent(obj: Any, wire: dict[str, Any], absent: tuple[str, ...], specs: Any) -> None:
    """Leave out keys that were absent when decoded and still hold their default."""
    for name in absent:
        spec = specs[name]
        default = spec.factory() if spec.has_factory else spec.default
        if getattr(obj, name) == default:
            wire.pop(spec.key, None)


def _slow_from_wire(cls: type, data: Any) -> Any:
    """from_wire reached through a subclass that has not been compiled yet."""
    return _codec_for(cls).from_wire(cls, data)


def _slow_to_wire(obj: Any) -> dict[str, Any]:
    return _codec_for(type(obj)).to_wire(obj)


# --------------------------------------------------------------------------- liberal reading
#
# Servers other than Lavalink (NodeLink, proxies, older builds) omit fields, send null where
# Lavalink sends "" or 0, or use another JSON type. A model that names a class attribute
# ``_wire_liberal(d) -> d`` rewrites its own known deviations first; ``_wire_essential`` lists
# the wire keys without which the payload is useless (those still raise).

_SCALAR_DEFAULTS: dict[str, Any] = {"str": "", "int": 0, "float": 0.0, "bool": False}


def _liberal_hook(cls: type) -> Optional[Callable[[dict[str, Any]], dict[str, Any]]]:
    """The class's own ``_wire_liberal`` (not an inherited one), as a plain function."""
    if "_wire_liberal" not in cls.__dict__:
        return None
    return typing.cast(Callable[[dict[str, Any]], dict[str, Any]], cls._wire_liberal)  # type: ignore[attr-defined]


def liberal_wire(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` that ``cls.from_wire`` accepts: missing/null/mistyped fields are
    replaced by defaults (recursively), unknown keys kept. Essential keys are left alone."""
    codec = _codec_for(cls)
    out = dict(data)
    hook = _liberal_hook(cls)
    if hook is not None:
        out = hook(out)
    essential: tuple[str, ...] = getattr(cls, "_wire_essential", ())
    for s in codec.specs:
        if s.unsettable:
            continue
        must = s.key in essential  # without a usable value the strict decoder raises
        value = out.get(s.key, _MISSING)
        if value is _MISSING:
            if s.required and not must:
                out[s.key] = _liberal_default(s)
            continue
        if value is None:
            if not s.nullable and not must:
                if s.required:
                    out[s.key] = _liberal_default(s)
                else:
                    del out[s.key]  # the field's own default applies
            continue
        fixed = _liberal_value(s, value)
        if fixed is _MISSING:
            if must:
                continue
            if s.required:
                out[s.key] = _liberal_default(s)
            else:
                del out[s.key]
        else:
            out[s.key] = fixed
    return out


def _liberal_default(s: _Spec) -> Any:
    if s.has_factory:
        return s.factory()
    if s.has_default:
        return s.default
    if s.nullable:
        return None
    if s.snowflake:
        return 0
    if s.kind in _SCALAR_DEFAULTS:
        return _SCALAR_DEFAULTS[s.kind]
    if s.kind == "list":
        return []
    if s.kind == "dict":
        return {}
    if s.kind == "model":
        return liberal_wire(s.model, {})
    return None


def _liberal_value(s: _Spec, value: Any) -> Any:
    """``value`` made acceptable for the field, or _MISSING when it cannot be."""
    if s.snowflake == "strict":
        try:
            return snowflake(value, s.key)
        except ValueError:
            return _MISSING
    if s.custom_decode is not None or s.snowflake:
        return value
    kind = s.kind
    if kind == "model":
        return liberal_wire(s.model, value) if isinstance(value, Mapping) else _MISSING
    if kind == "list":
        if not isinstance(value, list):
            return _MISSING
        if isinstance(s.elem, type):
            return [liberal_wire(s.elem, x) for x in value if isinstance(x, Mapping)]
        if s.elem in _SCALAR_DEFAULTS:
            items = [_liberal_scalar(s.elem, x) for x in value]
            return [x for x in items if x is not _MISSING]
        return value
    if kind in _SCALAR_DEFAULTS:
        return _liberal_scalar(kind, value)
    if kind == "dict":
        return value if isinstance(value, dict) else _MISSING
    return value


def _liberal_scalar(kind: str, value: Any) -> Any:
    cls = type(value)
    if kind == "str":
        if cls is str:
            return value
        if cls is int or cls is float:
            return str(value)
        return _MISSING
    if kind == "int":
        if cls is int:
            return value
        if cls is float and math.isfinite(value):
            return int(value)
        if cls is str and value.strip().lstrip("-").isdigit():
            return int(value)
        return _MISSING
    if kind == "float":
        if cls is int or cls is float:
            return value
        return _MISSING
    if kind == "bool":
        if cls is bool:
            return value
        if cls is int:
            return value != 0
        if cls is str and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return _MISSING
    return value  # pragma: no cover
