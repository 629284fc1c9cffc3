"""klog's message declarations agree with Apache Kafka's JSON specifications.

Walks every spec file under ``<repo>/../shared/kafka-protocol`` and compares it, field by
field, with the classes ``klog.wire`` builds: names, snake_case attributes, types,
versions, nullable versions, defaults (as a freshly constructed object holds them), tags,
tagged versions and nested structs. Also checks that the committed generated module is
what ``scripts/gen_messages.py`` produces from the specs today. Skips, saying so, when
the specs are not there.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from klog.wire import MESSAGE_CLASSES, METADATA_RECORDS, REQUESTS, RESPONSES, _schema

REPO = Path(__file__).resolve().parents[3]
SPEC_ROOT = REPO.parent / "shared" / "kafka-protocol"
SPEC_DIRS = ("messages", "metadata", "group-coordinator", "transaction-coordinator", "raft")

if not SPEC_ROOT.is_dir():
    pytest.skip(
        f"Kafka's JSON specs are not at {SPEC_ROOT} (expected <repo>/../shared/kafka-protocol); "
        "cannot check the message declarations against them",
        allow_module_level=True,
    )

MAX = 0x7FFF
SPEC_FILES = sorted(p for d in SPEC_DIRS for p in (SPEC_ROOT / d).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.strip().startswith("//")
    )
    return json.loads(text)


def versions(text: str | None) -> range:
    if text is None or text == "none":
        return range(0)
    m = re.fullmatch(r"(\d+)(\+|-(\d+))?", text)
    assert m, f"unparseable version range {text!r}"
    low = int(m.group(1))
    if m.group(2) == "+":
        return range(low, MAX + 1)
    return range(low, int(m.group(3) or low) + 1)


def snake(name: str) -> str:
    words = re.findall(r"KRaft|[A-Z]+(?![a-z])[0-9]*|[A-Z]?[a-z0-9]+", name)
    return "_".join(w.lower() for w in words)


PRIMITIVES = {
    "bool",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float64",
    "uuid",
    "string",
    "bytes",
    "records",
}


def expected_default(field: dict[str, Any], struct_cls: type | None) -> Any:
    raw = field.get("default")
    text = "" if raw is None else ("true" if raw is True else "false" if raw is False else str(raw))
    kind = field["type"]
    if kind.startswith("[]"):
        return None if text == "null" else []
    if struct_cls is not None:
        return None if text == "null" else struct_cls()
    if kind == "bool":
        return text.lower() == "true"
    if kind == "float64":
        return float(text or 0)
    if kind == "uuid":
        return uuid.UUID(int=0)
    if kind == "string":
        return None if text == "null" else text
    if kind == "bytes":
        return None if text == "null" else b""
    if kind == "records":
        return None
    if not text:
        return 0
    return int(text[2:], 16) if text.startswith("0x") else int(text)


def compare_fields(
    where: str,
    spec_fields: list[dict[str, Any]],
    cls: type,
    owner: type,
    structs: dict[str, list[dict[str, Any]]],
    problems: list[str],
) -> None:
    models = list(cls._FIELDS)
    names = [f["name"] for f in spec_fields]
    if [m.name for m in models] != names:
        problems.append(f"{where}: fields {[m.name for m in models]} != spec {names}")
        return
    instance = cls()
    for spec, model in zip(spec_fields, models, strict=True):
        at = f"{where}.{spec['name']}"
        tagged = versions(spec.get("taggedVersions"))
        field_versions = versions(spec["versions"]) if "versions" in spec else tagged
        nullable = versions(spec.get("nullableVersions"))
        nullable = range(
            max(nullable.start, field_versions.start),
            max(min(nullable.stop, field_versions.stop), max(nullable.start, field_versions.start)),
        )
        checks = {
            "attribute": (model.attr, snake(spec["name"])),
            "type": (model.type, spec["type"]),
            "versions": (model.versions, field_versions),
            "nullableVersions": (model.nullable_versions, nullable),
            "tag": (model.tag, None if spec.get("tag") is None else int(spec["tag"])),
            "taggedVersions": (model.tagged_versions, tagged),
            "flexibleVersions": (
                model.flexible_versions,
                versions(spec["flexibleVersions"]) if "flexibleVersions" in spec else None,
            ),
        }
        for what, (ours, theirs) in checks.items():
            if ours != theirs:
                problems.append(f"{at}: {what} {ours!r} != spec {theirs!r}")
        element = spec["type"].removeprefix("[]")
        struct_cls = None
        if element not in PRIMITIVES:
            struct_cls = getattr(owner, element, None)
            if struct_cls is None or model.struct is None or model.struct.cls is not struct_cls:
                problems.append(f"{at}: no struct class {element} on {owner.__name__}")
                continue
        default = expected_default(spec, None if spec["type"].startswith("[]") else struct_cls)
        if getattr(instance, model.attr) != default:
            problems.append(f"{at}: default {getattr(instance, model.attr)!r} != spec {default!r}")
        if struct_cls is not None and element not in structs.get("_seen", []):
            structs.setdefault("_seen", []).append(element)
            nested = spec.get("fields") or structs[element]
            compare_fields(f"{where}.{element}", nested, struct_cls, owner, structs, problems)


def struct_definitions(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found = {s["name"]: s["fields"] for s in spec.get("commonStructs", [])}

    def walk(fields: list[dict[str, Any]]) -> None:
        for f in fields:
            if "fields" in f:
                found[f["type"].removeprefix("[]")] = f["fields"]
                walk(f["fields"])

    walk(spec["fields"])
    for fields in list(found.values()):
        walk(fields)
    return found


def test_every_spec_file_has_a_class_and_nothing_else_does() -> None:
    spec_names = {load(p)["name"]: f"{p.parent.name}/{p.name}" for p in SPEC_FILES}
    assert set(MESSAGE_CLASSES) == set(spec_names)
    for name, cls in MESSAGE_CLASSES.items():
        assert cls._MODEL.source == spec_names[name]


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_declarations_agree_with_the_spec(path: Path) -> None:
    spec = load(path)
    cls = MESSAGE_CLASSES[spec["name"]]
    problems: list[str] = []
    top = {
        "apiKey": (cls.API_KEY, spec.get("apiKey")),
        "type": (cls.SPEC_TYPE, spec["type"]),
        "validVersions": (cls.VALID_VERSIONS, versions(spec["validVersions"])),
        "flexibleVersions": (cls.FLEXIBLE_VERSIONS, versions(spec["flexibleVersions"])),
    }
    for what, (ours, theirs) in top.items():
        if ours != theirs:
            problems.append(f"{spec['name']}: {what} {ours!r} != spec {theirs!r}")
    registry = {"request": REQUESTS, "response": RESPONSES, "metadata": METADATA_RECORDS}
    if spec["type"] in registry and registry[spec["type"]].get(spec["apiKey"]) is not cls:
        problems.append(f"{spec['name']}: not registered under API key {spec['apiKey']}")
    compare_fields(spec["name"], spec["fields"], cls, cls, struct_definitions(spec), problems)
    assert not problems, "\n".join(problems)


def test_generated_module_is_up_to_date() -> None:
    script = REPO / "scripts" / "gen_messages.py"
    loader = importlib.util.spec_from_file_location("gen_messages", script)
    assert loader is not None and loader.loader is not None
    gen = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gen)
    assert gen.declarations(SPEC_ROOT) == _schema.SPECS, (
        "klog/wire/_schema.py is stale: run scripts/gen_messages.py"
    )


def test_the_comparison_reports_disagreements() -> None:
    spec = load(SPEC_ROOT / "messages" / "MetadataResponse.json")
    topic = spec["fields"][4]
    topic["fields"][1]["nullableVersions"] = "10+"
    topic["fields"][3]["default"] = "true"
    topic["fields"][4]["fields"][2]["type"] = "int64"
    spec["fields"][0]["name"] = "ThrottleTime"
    problems: list[str] = []
    cls = MESSAGE_CLASSES["MetadataResponse"]
    compare_fields("M", spec["fields"], cls, cls, struct_definitions(spec), problems)
    assert len(problems) == 1 and "fields" in problems[0]
    spec["fields"][0]["name"] = "ThrottleTimeMs"
    problems.clear()
    compare_fields("M", spec["fields"], cls, cls, struct_definitions(spec), problems)
    assert sorted(p.split(":")[0] for p in problems) == [
        "M.MetadataResponseTopic.IsInternal",
        "M.MetadataResponseTopic.MetadataResponsePartition.LeaderId",
        "M.MetadataResponseTopic.Name",
    ]
