"""The fast path of variables: templates of text, fields, `a or b` and arg-less filters
are evaluated by plain Python calls. Whatever the row, they must give exactly what the
sandboxed Jinja render gives (`compile_variable(..., fast=False)`), or fail as it does."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pbx_connector.errors import RowError
from pbx_connector.mapping import _FAST_FILTERS, RowMapper, compile_variable
from pbx_connector.templates import TEMPLATES

#: Field names: identifiers, names of Jinja globals (a bare name then means the global
#: in a row without such a field), and names only `row["…"]` can reach.
NAMES = ["mail", "sn", "telephoneNumber", "range", "lipsum", "dict", "Telefon geschäftlich"]
IDENTIFIERS = [n for n in NAMES if n.isidentifier()]

text_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "", " ", "  padded  ", "\t\n", "Zoë O'Brien", "MÜLLER", "ǆemal", "ß",
            "+49 991 12345-100", "0991 123", "100", "*31#", "x-", "-", "{{ x }}", "{%",
        ]
    ),
)  # fmt: skip
field_values = st.one_of(
    text_values,
    st.lists(text_values, max_size=3),
    st.none(),
)
rows = st.dictionaries(st.sampled_from(NAMES), field_values, max_size=len(NAMES))


def _reference(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    if name in IDENTIFIERS and draw(st.booleans()):
        return name
    quote = draw(st.sampled_from(["'", '"']))
    return f"row[{quote}{name}{quote}]"


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(
            ["field", "field", "field", "const", "or"] if depth < 2 else ["field", "const"]
        )
    )
    if kind == "field":
        expr = _reference(draw)
    elif kind == "const":
        expr = repr(draw(text_values))
    else:
        left = draw(expressions(depth + 1))
        right = draw(expressions(depth + 1))
        expr = f"({left} or {right})"
    filters = draw(st.lists(st.sampled_from(sorted(_FAST_FILTERS)), max_size=3))
    for name in filters:
        expr = f"{expr} | {name}"
    return expr


@st.composite
def templates(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            text = draw(st.text(st.sampled_from("ab ,;-\n\r\t"), max_size=6))
            pieces.append(text.replace("{", "").replace("}", ""))
        else:
            left = draw(st.sampled_from(["{{ ", "{{", "{{- "]))
            right = draw(st.sampled_from([" }}", "}}", " -}}"]))
            pieces.append(f"{left}{draw(expressions())}{right}")
    return "".join(pieces)


def outcome(template: str, row: dict[str, Any], *, fast: bool) -> tuple[str, str | None]:
    """("ok", text) or ("error", the variable the error names)."""
    try:
        return "ok", compile_variable("v", template, fast=fast).render(row)
    except RowError as exc:
        return "error", exc.field


@settings(max_examples=1500, deadline=None)
@given(template=templates(), row=rows)
@example(template="{{ range }}", row={})
@example(template="{{ row['range'] }}", row={})
@example(template="{{ lipsum | lower }}", row={"lipsum": ["A", "B"]})
@example(template="{{ mail | first_value | lower }}", row={"mail": []})
@example(template="{{ sn or mail | first_value }}", row={"sn": None, "mail": ["x", "y"]})
@example(template="{{ sn | extension }}", row={"sn": ["+49 991 12345-100", "2"]})
@example(template="{{ sn | values }}", row={"sn": ""})
@example(template="{{ sn | digits }}", row={"sn": None})
@example(template=" {{ sn }} \r\n{{ mail }}\n", row={"sn": " a ", "mail": ["b", "c"]})
@example(template="{{ sn }}", row={"mail": "x"})
@example(template="{{ 'x' or sn }}", row={})
@example(template="{{ sn or 'x' }}", row={})
def test_fast_path_renders_as_jinja_does(template: str, row: dict[str, Any]) -> None:
    fast = outcome(template, row, fast=True)
    full = outcome(template, row, fast=False)
    assert fast == full


def _template_rows() -> list[tuple[str, str, str]]:
    return [(t.name, n, text) for t in TEMPLATES for n, text in t.variables.items() if text]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_template_variable_renders_as_jinja_does(data: st.DataObject) -> None:
    template, name, text = data.draw(st.sampled_from(_template_rows()))
    fields = sorted(compile_variable(name, text).fields)
    row = data.draw(st.fixed_dictionaries({f: field_values for f in fields}))
    assert outcome(text, row, fast=True) == outcome(text, row, fast=False), template


@pytest.mark.parametrize("template", [t.name for t in TEMPLATES])
def test_template_variables_take_the_fast_path(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this the properties above could compare Jinja with itself.
    spec = next(t for t in TEMPLATES if t.name == template)
    mapper = RowMapper.compile({n: text for n, text in spec.variables.items() if text})
    row = {f: ["Value 1", "+49 991 12345-100"] for f in mapper.fields_used()}

    def refuse(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("rendered through Jinja")

    monkeypatch.setattr(jinja2.Template, "render", refuse)
    slow = [n for n, e in mapper.variables.items() if _renders_through_jinja(e.render, row)]
    assert slow == [], f"{template}: {slow} render through the sandbox"


def _renders_through_jinja(render: Any, row: dict[str, Any]) -> bool:
    try:
        render(row)
    except AssertionError:
        return True
    return False


def test_a_missing_field_names_the_variable_and_the_field() -> None:
    for text in (
        "{{ nickname }}",
        "{{ nickname | first_value | lower }}",
        "{{ row['nick name'] }}",
    ):
        with pytest.raises(RowError) as info:
            compile_variable("displayname", text).render({"sn": "x"})
        assert info.value.field == "displayname"
        assert "is undefined (the row has no such field)" in info.value.message


def test_a_field_named_like_a_jinja_global_is_the_field_when_the_row_has_it() -> None:
    assert compile_variable("v", "{{ range | lower }}").render({"range": "ABC"}) == "abc"
    # …and Jinja's global when it does not, exactly as the sandbox renders it.
    assert outcome("{{ range }}", {}, fast=True) == outcome("{{ range }}", {}, fast=False)
