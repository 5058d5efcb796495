"""Gigaset (N670/N870 and other Nx70 IP PRO) online directory, the Phonebook Search
Protocol: the phone asks `command=get_list&type=pb&ln=…&fn=…&hm=…&first=F&count=C`
and reads `<list response="get_list" type total first last> > entry[@id] > ln, fn, hm`,
one entry per number.

The counters are consistent: `first` is the 1-based position of the first entry sent,
`last` that of the last one (so `last - first + 1` entries are sent), `total` how many
match in all. Nothing found is `<list response="get_list" type notfound="hm" total="0">`,
naming the field that was searched.
"""

from __future__ import annotations

from collections.abc import Sequence

from pbx_connector.deskphones.model import Entry, View, document, element, lines, page, root

ROOT = "list"


def render(entries: Sequence[Entry], view: View) -> bytes:
    found = lines(entries)
    if not found:
        empty = root(
            ROOT, response="get_list", type=view.list_type, notfound=view.searched, total="0"
        )
        return document(empty)
    count = view.count if view.count is not None and view.count > 0 else len(found)
    shown = page(found, view.offset, count)
    answer = root(
        ROOT,
        response="get_list",
        type=view.list_type,
        total=str(shown.total),
        first=str(shown.first),
        last=str(shown.last),
    )
    for line in shown.items:
        item = element(answer, "entry", id=line.id)
        first_name, last_name = line.entry.split_name()
        element(item, "ln", last_name)
        element(item, "fn", first_name)
        element(item, "hm", line.number.value)
    return document(answer)
