"""The in-memory model of Kafka's message declarations (``klog.wire._schema``).

Turns the declarations into ``MessageModel`` / ``StructModel`` / ``FieldModel`` objects with
version ranges parsed into ``range``s, struct references resolved and defaults interpreted
exactly as Kafka's generator does (``FieldSpec.fieldDefault``). ``klog.wire.messages``
builds classes from these and ``klog.wire._codegen`` compiles codecs from them. The models
are built once at import and never mutated afterwards (except that ``StructModel.cls`` is
set once when its class is created); shareable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from klog.wire.primitives import ZERO_UUID

# Kafka versions are int16; an open range "N+" ends at Short.MAX_VALUE.
MAX_VERSION = 0x7FFF
NO_VERSIONS = range(0)

FIXED_TYPES = {
    # type: (struct format code, size)
    "bool": ("?", 1),
    "int8": ("b", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "uint32": ("I", 4),
    "int64": ("q", 8),
    "float64": ("d", 8),
}
PRIMITIVE_TYPES = frozenset({*FIXED_TYPES, "uuid", "string", "bytes", "records"})


def parse_versions(text: str | None) -> range:
    """Kafka's version-range syntax: "none", "N", "N+", "N-M"."""
    if text is None or text == "none":
        return NO_VERSIONS
    if text.endswith("+"):
        return range(int(text[:-1]), MAX_VERSION + 1)
    low, _, high = text.partition("-")
    return range(int(low), int(high or low) + 1)


def intersect(a: range, b: range) -> range:
    low, high = max(a.start, b.start), min(a.stop, b.stop)
    return range(low, high) if low < high else NO_VERSIONS


def snake_case(name: str) -> str:
    """Kafka field name -> Python attribute: "ThrottleTimeMs" -> "throttle_time_ms"."""
    # "KRaft" is one word, not K + Raft.
    name = name.replace("KRaft", "Kraft")
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def default_text(raw: Any) -> str:
    """A spec default as the string Kafka's generator sees (JSON numbers and bools coerce)."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


@dataclass(eq=False)
class StructModel:
    name: str
    fields: list[FieldModel] = field(default_factory=list)
    cls: type | None = None


@dataclass(eq=False)
class FieldModel:
    name: str
    attr: str
    type: str
    versions: range
    nullable_versions: range
    tag: int | None
    tagged_versions: range
    # Only set where a field overrides the message's flexible versions (RequestHeader.ClientId).
    flexible_versions: range | None
    default_text: str
    struct: StructModel | None = None

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.element_type not in PRIMITIVE_TYPES and not self.is_array

    def default_value(self) -> Any:
        """The immutable default, or ``list`` / the struct model for a fresh list / struct."""
        text = self.default_text
        kind = self.type
        if self.is_array:
            return None if text == "null" else list
        if self.is_struct:
            return None if text == "null" else self.struct
        if kind == "bool":
            return text.lower() == "true"
        if kind in FIXED_TYPES and kind != "float64":
            if not text:
                return 0
            if text.startswith("0x"):
                return int(text[2:], 16)
            return int(text, 10)
        if kind == "float64":
            return float(text) if text else 0.0
        if kind == "uuid":
            if text:
                raise ValueError(f"{self.name}: uuid defaults are not supported")
            return ZERO_UUID
        if kind == "string":
            return None if text == "null" else text
        if kind == "bytes":
            if text not in ("", "null"):
                raise ValueError(f"{self.name}: a bytes default must be empty or null")
            return None if text == "null" else b""
        if kind == "records":
            return None
        raise ValueError(f"{self.name}: unknown type {kind}")

    def present_in(self, version: int) -> bool:
        return version in self.versions

    def tagged_in(self, version: int) -> bool:
        return version in self.tagged_versions and version in self.versions

    def nullable_in(self, version: int) -> bool:
        return version in self.nullable_versions

    def compact_in(self, version: int, message_flexible: range) -> bool:
        """Whether lengths use the compact (varint) encoding at ``version``."""
        flexible = (
            self.flexible_versions if self.flexible_versions is not None else message_flexible
        )
        return version in flexible


@dataclass(eq=False)
class MessageModel:
    name: str
    spec_type: str
    api_key: int | None
    valid_versions: range
    flexible_versions: range
    source: str
    struct: StructModel
    structs: dict[str, StructModel]


def build_message(decl: dict[str, Any]) -> MessageModel:
    name = decl["name"]
    structs: dict[str, StructModel] = {}
    pending: list[tuple[FieldModel, str]] = []

    def define(struct_name: str, fields: tuple[dict[str, Any], ...]) -> StructModel:
        if struct_name in structs:
            raise ValueError(f"{name}: struct {struct_name} is defined twice")
        model = StructModel(struct_name)
        structs[struct_name] = model
        model.fields = [build_field(f) for f in fields]
        return model

    def build_field(f: dict[str, Any]) -> FieldModel:
        tagged = parse_versions(f.get("taggedVersions"))
        versions = parse_versions(f["versions"]) if "versions" in f else tagged
        model = FieldModel(
            name=f["name"],
            attr=snake_case(f["name"]),
            type=f["type"],
            versions=versions,
            nullable_versions=intersect(parse_versions(f.get("nullableVersions")), versions),
            tag=None if f.get("tag") is None else int(f["tag"]),
            tagged_versions=tagged,
            flexible_versions=(
                parse_versions(f["flexibleVersions"]) if "flexibleVersions" in f else None
            ),
            default_text=default_text(f.get("default")),
        )
        element = model.element_type
        if element not in PRIMITIVE_TYPES:
            if "fields" in f:
                model.struct = define(element, f["fields"])
            else:
                pending.append((model, element))
        return model

    for common in decl.get("commonStructs", ()):
        define(common["name"], common["fields"])
    top = StructModel(name)
    top.fields = [build_field(f) for f in decl["fields"]]
    for model, element in pending:
        if element not in structs:
            raise ValueError(f"{name}.{model.name}: unknown struct type {element}")
        model.struct = structs[element]
    return MessageModel(
        name=name,
        spec_type=decl["type"],
        api_key=decl.get("apiKey"),
        valid_versions=parse_versions(decl["validVersions"]),
        flexible_versions=parse_versions(decl["flexibleVersions"]),
        source=decl["source"],
        struct=top,
        structs=structs,
    )


def has_records(struct_model: StructModel) -> bool:
    """Whether a ``records`` field occurs anywhere in the struct or its nested structs."""
    stack, seen = [struct_model], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for member in current.fields:
            if member.type == "records":
                return True
            if member.struct is not None:
                stack.append(member.struct)
    return False
