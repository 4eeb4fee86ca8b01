"""Forms made from the services' own request schemas (their OpenAPI documents), and the answers read back.

The console states no rule of its own: a form shows what the service's request model asks (its fields, their
descriptions, bounds and choices), and the service validates what is sent. A yes/no question without a default
starts unanswered: an unasked contraindication must not read as "no" (intake's ScreeningAnswers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any

Schema = Mapping[str, Any]


class FieldKind(StrEnum):
    yes_no = "yes_no"
    whole_number = "whole_number"
    number = "number"
    text = "text"
    long_text = "long_text"
    choice = "choice"
    choices = "choices"  # several of a list
    lines = "lines"  # a list of words: one per line
    date = "date"
    date_time = "date_time"
    email = "email"
    json = "json"  # a structure no simple input fits: typed as JSON


@dataclass(frozen=True)
class FormField:
    name: str  # dotted path into the request body: "address.line1"
    label: str
    kind: FieldKind
    required: bool
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    pattern: str | None = None
    options: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # what each option is called, where not its value
    default: object = None

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def step(self) -> str:
        return "1" if self.kind is FieldKind.whole_number else "any"


@dataclass
class FormSection:
    """The fields of one object of the request (the request itself, or a nested part such as an address)."""

    title: str
    fields: list[FormField] = field(default_factory=list)
    required: bool = True


def _label(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


class SchemaReader:
    def __init__(self, document: Schema) -> None:
        self.document = document

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            ref = str(schema["$ref"])
            target: Any = self.document
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            merged = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **merged}
        if "allOf" in schema and len(schema["allOf"]) == 1:
            inner = self.resolve(schema["allOf"][0])
            schema = {**inner, **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema

    def nullable(self, schema: Schema) -> tuple[Schema, bool]:
        """The schema without ``| None``, and whether None was allowed."""
        options = schema.get("anyOf")
        if options:
            real = [self.resolve(o) for o in options if o.get("type") != "null"]
            if len(real) == 1:
                extra = {k: v for k, v in schema.items() if k != "anyOf"}
                return {**real[0], **extra}, len(real) < len(options)
        return self.resolve(schema), False

    def request_schema(self, method: str, path: str) -> Schema:
        operation = self.document["paths"][path][method.lower()]
        content = operation["requestBody"]["content"]
        return self.resolve(content["application/json"]["schema"])

    def sections(self, schema: Schema, prefix: str = "", title: str = "") -> list[FormSection]:
        schema = self.resolve(schema)
        required = set(schema.get("required", []))
        top = FormSection(title)  # the request's own model name says nothing to a user: only its parts get a title
        found = [top]
        for name, raw in schema.get("properties", {}).items():
            inner, may_be_none = self.nullable(raw)
            path = f"{prefix}{name}"
            if inner.get("type") == "object" and "properties" in inner:
                nested = self.sections(inner, f"{path}.", _label(name))
                nested[0].required = name in required and not may_be_none
                found += nested
                continue
            top.fields.append(self._field(path, name, raw, inner, name in required and not may_be_none))
        return [s for s in found if s.fields]

    def _field(self, path: str, name: str, raw: Schema, schema: Schema, required: bool) -> FormField:
        kind = FieldKind.text
        options: tuple[str, ...] = ()
        kind_of = schema.get("type")
        if "enum" in schema:
            kind, options = FieldKind.choice, tuple(str(v) for v in schema["enum"])
        elif kind_of == "boolean":
            kind = FieldKind.yes_no
        elif kind_of == "integer":
            kind = FieldKind.whole_number
        elif kind_of == "number":
            kind = FieldKind.number
        elif kind_of == "array":
            items = self.resolve(schema.get("items", {}))
            if "enum" in items:
                kind, options = FieldKind.choices, tuple(str(v) for v in items["enum"])
            elif items.get("type") == "string":
                kind = FieldKind.lines
            else:
                kind = FieldKind.json
        elif kind_of == "string":
            kind = {"date": FieldKind.date, "date-time": FieldKind.date_time, "email": FieldKind.email}.get(
                str(schema.get("format", "")), FieldKind.text
            )
            if kind is FieldKind.text and int(schema.get("maxLength", 0)) > 200:
                kind = FieldKind.long_text
        elif kind_of == "object" or kind_of is None:
            kind = FieldKind.json
        description = str(raw.get("description") or schema.get("description") or "")
        if kind is FieldKind.date_time and description.startswith("an ISO 8601 time"):
            description = "on the site's clock"  # the console adds the site's offset (read_answers)
        return FormField(
            name=path,
            label=_label(name),
            kind=kind,
            required=required,
            help=description,
            minimum=schema.get("minimum", schema.get("exclusiveMinimum")),
            maximum=schema.get("maximum", schema.get("exclusiveMaximum")),
            max_length=schema.get("maxLength"),
            pattern=schema.get("pattern"),
            options=options,
            default=raw.get("default", schema.get("default")),
        )


class FormError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _value(field: FormField, entries: list[str], zone: tzinfo) -> object:
    text = entries[0].strip() if entries else ""
    if field.kind is FieldKind.choices:
        return [e for e in entries if e]
    if field.kind is FieldKind.lines:
        return [line.strip() for line in text.splitlines() if line.strip()] or None
    if text == "":
        return None
    if field.kind is FieldKind.yes_no:
        if text not in ("yes", "no"):
            raise FormError(field.name, "answer yes or no")
        return text == "yes"
    if field.kind is FieldKind.whole_number:
        try:
            return int(text)
        except ValueError:
            raise FormError(field.name, "a whole number") from None
    if field.kind is FieldKind.number:
        try:
            return float(text)
        except ValueError:
            raise FormError(field.name, "a number") from None
    if field.kind is FieldKind.json:
        try:
            return json.loads(text)
        except ValueError:
            raise FormError(field.name, "not valid JSON") from None
    if field.kind is FieldKind.date_time:
        # A browser's date and time carries no zone: it is the site's wall clock, sent with its offset.
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise FormError(field.name, "a date and time, YYYY-MM-DDTHH:MM") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()
    return text


def read_answers(sections: list[FormSection], form: Mapping[str, list[str]], zone: tzinfo = UTC) -> dict[str, Any]:
    """The request body the answers make. A field left empty is left out, so that the service, not the console,
    says what is missing; an optional part (an address) left wholly empty is left out as a whole."""
    body: dict[str, Any] = {}
    for section in sections:
        values: dict[str, object] = {}
        for one in section.fields:
            value = _value(one, form.get(one.name, []), zone)
            if value is not None and value != []:
                values[one.name] = value
            elif one.kind is FieldKind.choices and one.required:
                values[one.name] = []
        if not values and not section.required:
            continue
        for name, value in values.items():
            target = body
            *parents, last = name.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[last] = value
    return body


def entered(form: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """What was typed, to show again beside the service's refusal."""
    return {name: values for name, values in form.items() if name != "csrf"}


def wall_clock(moment: datetime, zone: tzinfo) -> str:
    """A time as a date-and-time input shows it: the site's wall clock, to the minute."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def chosen_from(sections: list[FormSection], name: str, labels: Mapping[str, str]) -> list[FormSection]:
    """The field ``name`` as a choice among known records (a consent document, a course), each by its label,
    rather than an id to type."""
    for section in sections:
        section.fields = [
            replace(f, kind=FieldKind.choice, options=tuple(labels), labels=labels) if f.name == name else f
            for f in section.fields
        ]
    return sections


def without(sections: list[FormSection], *names: str) -> list[FormSection]:
    """The sections without the fields a page fills itself (the patient of the page, say), a part's with it."""

    def dropped(name: str) -> bool:
        return any(name == n or name.startswith(n + ".") for n in names)

    for section in sections:
        section.fields = [f for f in section.fields if not dropped(f.name)]
    return [s for s in sections if s.fields]
