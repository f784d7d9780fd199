"""The rules a config field can declare, and the one function that checks them.

A field's type annotation says which values it takes: `int`, `float | None`, `Literal["class", "vector"]`,
`list[bool]`, or a named type with a rule such as `PositiveInt` (`Annotated[int, Rule(...)]`). `validate_section`
reads those annotations and raises `ConfigError` with a one-line message naming the field, the bad value and
what it must be. config.py declares the fields; nothing here knows which fields there are.
"""

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

from denoiser.utils.errors import shown


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and how to fix it."""


# ================================================================================= the rules a field can declare
class Rule(NamedTuple):
    """A condition on a value, attached to its type as `Annotated[int, Rule(...)]`: what the value must be, in
    words that complete "model.dropout must be ...", and a test that is only called on a value of that type."""

    must_be: str
    test: Callable[[Any], bool]


PositiveInt = Annotated[int, Rule("a positive integer", lambda value: value > 0)]
NonNegativeInt = Annotated[int, Rule("a non-negative integer", lambda value: value >= 0)]
PositiveFloat = Annotated[float, Rule("a positive number", lambda value: value > 0)]
Fraction = Annotated[float, Rule("a number in [0, 1)", lambda value: 0 <= value < 1)]
OpenFraction = Annotated[float, Rule("a number in (0, 1)", lambda value: 0 < value < 1)]
Percentile = Annotated[float, Rule("a number in (0, 100]", lambda value: 0 < value <= 100)]
AboveOne = Annotated[float, Rule("a number greater than 1", lambda value: value > 1)]
Levels = Annotated[
    list[PositiveInt], Rule("a non-empty list of positive integers, e.g. [1, 2, 3]", lambda value: len(value) > 0)
]
LevelInterval = Annotated[
    list[float],
    Rule(
        "two noise levels [low, high] with 0 <= low < high <= 1, e.g. [0.1, 0.8]",
        lambda value: len(value) == 2 and 0 <= value[0] < value[1] <= 1,
    ),
]
EvenPositiveInt = Annotated[
    int, Rule("a positive even integer (half sines, half cosines)", lambda value: value > 0 and value % 2 == 0)
]

ENCODER_FAMILIES = ("open_clip", "sentence_transformers", "transformers")  # as data/encoders.py loads them
# The encoder the text presets and `denoiser embed` use unless told otherwise: CLIP ViT-B-32 with open_clip's
# LAION-2B weights.
DEFAULT_ENCODER = "open_clip/ViT-B-32/laion2b_s34b_b79k"


def looks_like_an_encoder(spec: str) -> bool:
    """open_clip/MODEL/PRETRAINED, or FAMILY/NAME_OR_PATH for the other families (a path may hold slashes).

    Only the shape of the name is checked here; whether the encoder exists is found out when it is loaded
    (data/encoders.py).
    """
    family, _, rest = spec.partition("/")
    if family == "open_clip":
        parts = rest.split("/")
        return len(parts) == 2 and all(parts)
    return family in ENCODER_FAMILIES and bool(rest)


EncoderName = Annotated[
    str,
    Rule(
        f"open_clip/MODEL/PRETRAINED (e.g. {DEFAULT_ENCODER}), "
        "sentence_transformers/NAME_OR_PATH or transformers/NAME_OR_PATH",
        looks_like_an_encoder,
    ),
]


def only_if(other: str, *values) -> dict:
    """Field metadata: check this field only while field `other` has one of `values` (otherwise it is unused)."""
    return {"only_if": (other, values)}


def unused_fields(section) -> set[str]:
    """The fields of a config dataclass that its `only_if` metadata says are unused with the other fields' values."""
    unused = set()
    for item in dataclasses.fields(section):
        if "only_if" in item.metadata:
            other, values = item.metadata["only_if"]
            if getattr(section, other) not in values:
                unused.add(item.name)
    return unused


# ================================================================================= checking, in one place
def validate_section(section, checks: tuple[Callable[[Any], str | None], ...] = ()) -> None:
    """Check every field of a config dataclass against its annotation (and `only_if` metadata), then `checks`:
    functions of the whole section that return a problem in words, or None."""
    unused = unused_fields(section)
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if item.name in unused:
            continue
        if not accepts(item.type, value):
            hint = f" ({item.metadata['hint']})" if "hint" in item.metadata else ""
            raise ConfigError(f"{section.SECTION}.{item.name} must be {must_be(item.type)}, got {shown(value)}{hint}.")
    for check in checks:
        problem = check(section)
        if problem:
            raise ConfigError(problem)


def accepts(kind, value) -> bool:
    """Whether `value` is of the annotated type `kind` and passes its rules."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        return accepts(args[0], value) and all(rule.test(value) for rule in args[1:])
    if origin is Literal:  # compare types too: True == 1, but True is not a channel count
        return any(type(value) is type(choice) and value == choice for choice in args)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(option, value) for option in args)
    if origin is list:
        return isinstance(value, (list, tuple)) and all(accepts(args[0], entry) for entry in value)
    if kind in (int, float) and isinstance(value, bool):  # a bool is an int to Python, not to a config
        return False
    if kind is float:  # nan and inf are floats to Python, but no setting means them
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    return isinstance(value, kind)


def must_be(kind) -> str:
    """The annotated type `kind` in words: "a positive integer or null", "one of 'class', 'none'", ..."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        return args[1].must_be
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(must_be(option) for option in args)
    if origin is list:
        return f"a list whose entries are each {must_be(args[0])}"
    return {int: "an integer", float: "a finite number", str: "a text", bool: "true or false", type(None): "null"}[kind]


def floats_from_text(section: type, values: dict) -> dict:
    """`values` for the config dataclass `section`, with float fields given as text read as numbers ("1e-3":
    YAML 1.1 reads exponents without a dot as strings)."""
    values = dict(values)
    for item in dataclasses.fields(section):
        value = values.get(item.name)
        if isinstance(value, str) and is_float(item.type):
            try:
                values[item.name] = float(value)
            except ValueError:
                raise ConfigError(f"{section.SECTION}.{item.name} must be a number, got {shown(value)}.") from None
    return values


def is_float(kind) -> bool:
    """Whether the annotated type is a float, perhaps with rules (`Fraction`) or optional (`float | None`)."""
    if typing.get_origin(kind) in (Annotated, typing.Union, types.UnionType):
        return any(is_float(option) for option in typing.get_args(kind))
    return kind is float
