"""The records' pages (Users, Phonebook, Speed dials) over HTTP against a real `serve`, on
SQLite and PostgreSQL: lists with search, order and paging; add, edit and delete; the
core's refusals next to their field with nothing saved; write-only passwords and PINs;
imported records; what a viewer may do; CSRF. What the store holds afterwards is read
back through the API."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, USERS_HEADER, phonebook_row, write_csv
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in

SECRET = "Correct-Horse-9-Battery"


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def _admin(server: Server) -> httpx.Client:
    return server.client(server.admin_token)


def _get(server: Server, path: str, **params: Any) -> dict[str, Any]:
    """What the store holds, through the API."""
    with _admin(server) as api:
        response = api.get(f"/api/v1{path}", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _missing(server: Server, path: str) -> bool:
    with _admin(server) as api:
        return api.get(f"/api/v1{path}").status_code == 404


def _add_via_api(server: Server, target: str, *records: dict[str, str]) -> None:
    with _admin(server) as api:
        for record in records:
            response = api.post(f"/api/v1/{target}", json=record)
            assert response.status_code == 201, response.text


def _page_ok(response: httpx.Response) -> str:
    """A page of these: no inline script or style (the CSP would refuse them)."""
    assert "<script>" not in response.text and " style=" not in response.text
    assert response.headers["cache-control"] == "no-store"
    return response.text


def _rows(html: str) -> list[str]:
    """The first cell of each row of a list: a link to the record."""
    return re.findall(r'<th scope="row" data-label="[^"]+"><a href="[^"]+">([^<]*)</a>', html)


def _field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', html)
    assert match, html
    return unescape(match[1])


class Signed:
    """A signed-in browser: its client and its CSRF token."""

    def __init__(self, server: Server, username: str = "admin", password: str = "") -> None:
        self.server = server
        self.client = _client(server)
        if password:
            sign_in(self.client, username, password)
        else:
            sign_in(self.client)
        self.token = csrf_of(self.client)

    def post(self, path: str, **data: str | list[str]) -> httpx.Response:
        """A form sent from the server's own pages, with the session's CSRF token."""
        return self.client.post(
            path, data={"csrf_token": self.token, **data}, headers={"Origin": self.server.url}
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def __enter__(self) -> Signed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


# --- Users ---------------------------------------------------------------------------------


def test_users_list_searches_orders_and_pages(web: Server) -> None:
    _add_via_api(
        web,
        "users",
        {"username": "jmueller", "displayname": "Jürgen Müller", "extension": "100"},
        *({"username": f"user{n:02}", "displayname": f"Person {n:02}"} for n in range(55)),
    )
    with Signed(web) as admin:
        listed = _page_ok(admin.get("/users"))
        assert "57 users" in listed and "page 1 of 2" in listed
        assert len(_rows(listed)) == 50 and _rows(listed)[:2] == ["admin", "jmueller"]
        assert 'href="/users?page_no=2"' in listed
        second = admin.get("/users", page_no="2").text
        assert len(_rows(second)) == 7 and "page 2 of 2" in second

        # A fragment inside a name, without regard to case and accents.
        for term in ("mül", "MÜL", "ürgen mü", "mul", "MUEL"):  # 'muel': the username
            found = admin.get("/users", search=term).text
            assert _rows(found) == ["jmueller"], term
            assert "Jürgen Müller" in found and "1 user matching" in found
        assert "No user matches “nobody-here”." in admin.get("/users", search="nobody-here").text

        # Ordered by a column, either way; the link of the sorted column turns it round.
        descending = admin.get("/users", order="-username").text
        assert _rows(descending)[:2] == ["user54", "user53"]
        assert 'aria-sort="descending"' in descending
        ascending = admin.get("/users", order="username").text
        assert 'href="/users?order=-username"' in ascending
        # The paging links keep the search and the order.
        paged = admin.get("/users", search="person", order="-displayname").text
        assert "55 users" in paged
        assert 'href="/users?search=person&amp;order=-displayname&amp;page_no=2"' in paged
        # An order the core does not know is shown, not a crash.
        refused = admin.get("/users", order="password")
        assert refused.status_code == 422 and "cannot sort user records by" in refused.text
        too_long = admin.get("/users", search="x" * 300)
        assert too_long.status_code == 422
        assert 'id="search-error" role="alert">the search is longer than 255' in too_long.text

        # Search as you type: htmx asks for the results alone; without htmx (or on a
        # history restore) the whole page comes.
        htmx = {"HX-Request": "true", "HX-Target": "results"}
        fragment = admin.client.get("/users", params={"search": "mül"}, headers=htmx).text
        assert "<html" not in fragment and _rows(fragment) == ["jmueller"]
        restore = admin.client.get(
            "/users",
            params={"search": "mül"},
            headers={**htmx, "HX-History-Restore-Request": "true"},
        ).text
        assert "<html" in restore
        form = re.search(r'<form method="get" action="/users"[^>]*>', listed)
        assert form and 'hx-get="/users"' in form[0] and 'hx-target="#results"' in form[0]
        assert '<label for="search">Search</label>' in listed


def test_add_edit_and_delete_a_user(web: Server) -> None:
    with Signed(web) as admin:
        form = _page_ok(admin.get("/users/new"))
        assert '<label for="f-username">Username' in form
        assert '<option value="internal" selected>' in form  # the default method
        for name in ("ldap", "none"):
            assert f'<option value="{name}">' in form
        added = admin.post(
            "/users/new",
            username="Eve",
            displayname="Eve Example",
            extension="201",
            email="eve@example.com",
            auth="internal",
            roles="sales, support",
            enabled="false",
        )
        assert added.status_code == 303, added.text
        location = added.headers["location"]
        assert re.fullmatch(r"/users/\d+\?notice=added", location)
        user_id = int(location.split("/")[2].split("?")[0])
        page = _page_ok(admin.client.get(location))
        assert "Added." in page and "<h1>eve</h1>" in page
        stored = _get(web, f"/users/{user_id}")
        assert stored["username"] == "eve" and stored["extension"] == "201"
        assert stored["roles"] == ["sales", "support"] and stored["auth"] == "internal"
        assert stored["enabled"] is False  # only the hidden "false": the box was not ticked
        assert stored["origin"] is None and "by hand" in page

        # The list shows it with its name, extension, roles, method and origin.
        row = re.search(
            r"<tr>\s*<th scope=\"row\"[^>]*><a href=\"/users/\d+\">eve</a>.*?</tr>",
            admin.get("/users").text,
            re.S,
        )
        assert row
        for text in ("Eve Example", "201", "sales, support", "internal", "by hand", "disabled"):
            assert text in row[0]

        # Edit: the authentication method and the roles; only what changed is sent.
        edited = admin.post(
            f"/users/{user_id}",
            **{
                **_form_values(page),
                "auth": "ldap",
                "roles": "sales",
                "enabled": ["false", "true"],
            },
        )
        assert edited.status_code == 200 and "Saved." in edited.text
        assert '<option value="ldap" selected>' in edited.text
        stored = _get(web, f"/users/{user_id}")
        assert stored["auth"] == "ldap" and stored["roles"] == ["sales"]
        assert stored["enabled"] is True and stored["email"] == "eve@example.com"
        assert "disabled" not in admin.get("/users", search="eve").text
        same = admin.post(f"/users/{user_id}", **_form_values(edited.text))
        assert same.status_code == 200 and "Nothing was changed." in same.text

        # Delete: a confirmation first, then the POST.
        confirm = _page_ok(admin.get(f"/users/{user_id}/delete"))
        assert "Delete user eve?" in confirm and "cannot be undone" in confirm
        assert _missing(web, f"/users/{user_id}") is False
        deleted = admin.post(f"/users/{user_id}/delete")
        assert deleted.status_code == 303
        assert deleted.headers["location"] == "/users?notice=deleted"
        assert _missing(web, f"/users/{user_id}")
        assert admin.get(f"/users/{user_id}").status_code == 404
        assert "Deleted." in admin.client.get(deleted.headers["location"]).text


def _form_values(html: str) -> dict[str, str]:
    """The values of a record form's text inputs and selects, as the browser would send
    them (the checkbox is left to the caller)."""
    form = html.split('class="record-form"', 1)[1].split("</form>", 1)[0]
    values = dict(
        re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', form)
    )
    for name, options in re.findall(
        r'<select id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', form, re.S
    ):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        values[name] = chosen[1] if chosen else ""
    for name, text in re.findall(
        r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', form
    ):
        values[name] = text
    return {
        k: v.replace("&amp;", "&").replace("&#39;", "'").replace("&#34;", '"')
        for k, v in values.items()
    }


def test_refusals_are_shown_next_to_their_field_and_nothing_is_saved(web: Server) -> None:
    _add_via_api(web, "users", {"username": "zoe", "extension": "300"})
    with Signed(web) as admin:
        bad_email = admin.post(
            "/users/new", username="jürgen", displayname="Jürgen Müller", email="not-an-address"
        )
        assert bad_email.status_code == 422
        assert "is not a valid e-mail address" in _field_error(bad_email.text, "email")
        assert 'aria-invalid="true" aria-describedby="f-email-error"' in bad_email.text
        assert 'href="#f-email"' in bad_email.text and "Nothing was saved." in bad_email.text
        # What was typed is kept.
        assert (
            'value="Jürgen Müller"' in bad_email.text and 'value="not-an-address"' in bad_email.text
        )
        taken = admin.post("/users/new", username="adam", extension="300")
        assert taken.status_code == 409
        assert "extension '300' is used by user" in _field_error(taken.text, "extension")
        assert 'value="adam"' in taken.text
        empty = admin.post("/users/new", username="  ")
        assert empty.status_code == 422 and "is empty but required" in _field_error(
            empty.text, "username"
        )
        mixed = admin.post("/users/new", username="аdmin")  # a Cyrillic 'а'
        assert mixed.status_code == 422 and "several scripts" in _field_error(
            mixed.text, "username"
        )
        assert [u["username"] for u in _get(web, "/users")["items"]] == ["admin", "zoe"]

        zoe = _get(web, "/users/zoe")
        page = admin.get(f"/users/{zoe['id']}").text
        refused = admin.post(
            f"/users/{zoe['id']}", **{**_form_values(page), "email": "x@", "job": "CEO"}
        )
        assert refused.status_code == 422 and "x@" in _field_error(refused.text, "email")
        assert 'value="CEO"' in refused.text
        assert _get(web, "/users/zoe") == zoe  # nothing saved, not even the job

        renamed = admin.post(
            "/users/1", **{**_form_values(admin.get("/users/1").text), "username": "root"}
        )
        assert renamed.status_code == 403
        assert "the built-in admin user cannot be renamed" in renamed.text
        assert _get(web, "/users/1")["username"] == "admin"


def test_the_built_in_admin_cannot_be_deleted(web: Server) -> None:
    with Signed(web) as admin:
        refused = admin.post("/users/1/delete")
        assert refused.status_code == 403
        assert "The built-in admin user cannot be deleted." in refused.text
        assert 'action="/users/1/delete"' not in refused.text
        assert _get(web, "/users/1")["builtin"] is True


def test_passwords_and_pins_are_write_only(web: Server) -> None:
    _add_via_api(web, "users", {"username": "eve", "auth": "internal"})
    eve = _get(web, "/users/eve")
    seen: list[httpx.Response] = []
    with Signed(web) as admin:
        page = admin.get(f"/users/{eve['id']}")
        seen.append(page)
        assert page.text.count("not set") == 2
        assert '<label for="new-password">New password</label>' in page.text

        set_pw = admin.post(f"/users/{eve['id']}/password", password=SECRET)
        assert set_pw.status_code == 303
        assert set_pw.headers["location"] == f"/users/{eve['id']}?notice=password"
        after = admin.client.get(set_pw.headers["location"])
        seen += [set_pw, after]
        assert "The password was set." in after.text
        assert re.search(
            r'<dt>Password</dt><dd><span class="badge secret-set">set</span>', after.text
        )
        assert re.search(
            r'id="new-password" name="password" type="password"[^>]*value=""', after.text
        )
        assert _get(web, f"/users/{eve['id']}")["password_set"] is True

        bad_pin = admin.post(f"/users/{eve['id']}/pin", pin="12ab5")
        seen.append(bad_pin)
        assert bad_pin.status_code == 422
        assert 'id="new-pin-error" role="alert">must be 4 to 12 digits' in bad_pin.text
        assert "12ab5" not in bad_pin.text
        empty = admin.post(f"/users/{eve['id']}/password", password="   ")
        seen.append(empty)
        assert empty.status_code == 422 and "an empty password is not allowed" in empty.text
        pin = admin.post(f"/users/{eve['id']}/pin", pin="902741")
        seen += [pin, admin.client.get(pin.headers["location"])]
        assert "The PIN was set." in seen[-1].text
        assert _get(web, f"/users/{eve['id']}")["pin_set"] is True

        # A password sent with the Basic Data is not a field of the form: it is ignored
        # (the sign-in below still works with the password set above).
        sneaked = admin.post(
            f"/users/{eve['id']}", **{**_form_values(page.text), "password": "other-9-pass"}
        )
        assert "Nothing was changed." in sneaked.text
        seen.append(sneaked)
        seen += [admin.get("/users"), admin.get("/users", search="eve")]
    for response in seen:
        assert SECRET not in response.text and "902741" not in response.text
        assert "other-9-pass" not in response.text
    # The password works: eve may sign in to the pages once she holds a role.
    with _admin(web) as api:
        assert api.patch("/api/v1/users/eve", json={"roles": ["viewer"]}).status_code == 200
    with _client(web) as browser:
        assert sign_in(browser, "eve", SECRET).status_code == 303


# --- imported records ----------------------------------------------------------------------


def test_an_imported_record_names_its_profile_and_warns_after_an_edit(
    web: Server, tmp_path: Path
) -> None:
    rows = [phonebook_row("Jürgen Müller", "+49 991 12345", organisation="pascom")]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    web.cli("profile", "create", "office", "-t", "csv-phonebook", "--set", f"path={path}")
    staff = write_csv(
        tmp_path / "users.csv", USERS_HEADER, [["carol", "Carol C", "", "", "", "42"]]
    )
    web.cli("profile", "create", "staff", "-t", "csv-users", "--set", f"path={staff}")
    web.cli("sync", "office")
    web.cli("sync", "staff")
    entry = _get(web, "/phonebook", search="müller")["items"][0]
    with Signed(web) as admin:
        listed = admin.get("/phonebook").text
        assert "imported by office" in listed
        assert "imported by staff" in admin.get("/users", search="carol").text
        page = _page_ok(admin.get(f"/phonebook/{entry['id']}"))
        assert (
            "Imported by profile &#39;office&#39;: its next run will overwrite hand edits" in page
        )
        assert 'href="/profiles/office"' in page
        edited = admin.post(
            f"/phonebook/{entry['id']}", **{**_form_values(page), "organisation": "Pizzeria"}
        )
        assert edited.status_code == 200 and "Saved." in edited.text
        warning = re.search(r'<p class="warning" role="alert">(.*?)</p>', edited.text, re.S)
        assert warning
        assert "imported by profile &#39;office&#39;: its next run will overwrite" in warning[1]
        assert _get(web, f"/phonebook/{entry['id']}")["organisation"] == "Pizzeria"
        assert _get(web, f"/phonebook/{entry['id']}")["origin"]["profile"] == "office"


# --- Phonebook -----------------------------------------------------------------------------


def test_the_global_and_a_private_phonebook(web: Server) -> None:
    _add_via_api(web, "users", {"username": "eve"})
    with Signed(web) as admin:
        empty = _page_ok(admin.get("/phonebook"))
        assert "0 phonebook entries in the global phonebook" in empty
        assert "No phonebook entry yet." in empty
        added = admin.post(
            "/phonebook/new",
            displayname="Pizza Roma",
            phone="0991 123456",
            notes="line 1\r\nline 2",
        )
        assert added.status_code == 303
        global_id = int(added.headers["location"].split("/")[2].split("?")[0])
        form = admin.get("/phonebook/new", owner="eve").text
        assert 'name="owner" type="text" value="eve"' in form
        private = admin.post(
            "/phonebook/new", displayname="Eve's dentist", phone="+49 89 1234567", owner="Eve"
        )
        assert private.status_code == 303
        private_id = int(private.headers["location"].split("/")[2].split("?")[0])
        assert _get(web, f"/phonebook/{global_id}")["notes"] == "line 1\nline 2"
        assert _get(web, f"/phonebook/{private_id}")["owner"] == "eve"

        glob = admin.get("/phonebook").text
        assert _rows(glob) == ["Pizza Roma"]
        assert '<option value="eve">Private: eve (1)</option>' in glob
        own = admin.get("/phonebook", owner="eve").text
        assert _rows(own) == ["Eve&#39;s dentist"]
        assert "1 phonebook entry in the private phonebook of eve" in own
        assert 'href="/phonebook/new?owner=eve"' in own
        everything = admin.get("/phonebook", owner="*").text
        assert sorted(_rows(everything)) == ["Eve&#39;s dentist", "Pizza Roma"]
        assert "private: eve" in everything and "global" in everything
        # Numbers are found by their digits, in any spelling.
        assert _rows(admin.get("/phonebook", owner="*", search="+49 89 123").text) == [
            "Eve&#39;s dentist"
        ]
        assert _rows(admin.get("/phonebook", search="roma").text) == ["Pizza Roma"]
        # The user's page links to the private phonebook.
        assert "1 entry in the private phonebook of eve" in admin.get("/users/eve").text

        nobody = admin.post("/phonebook/new", displayname="Lost", owner="nobody")
        assert nobody.status_code == 422
        assert "owner 'nobody' is not a user" in _field_error(nobody.text, "owner")
        assert 'value="Lost"' in nobody.text
        assert _get(web, "/phonebook")["total"] == 2

        page = admin.get(f"/phonebook/{private_id}").text
        assert '<a href="/phonebook?owner=eve">Phonebook</a>' in page
        moved = admin.post(
            f"/phonebook/{private_id}",
            **{**_form_values(page), "owner": "", "email": "dent@example.com"},
        )
        assert moved.status_code == 200 and "Saved." in moved.text
        assert _get(web, f"/phonebook/{private_id}")["owner"] == ""
        assert _get(web, f"/phonebook/{private_id}")["email"] == "dent@example.com"
        assert _get(web, f"/phonebook/{global_id}")["notes"] == "line 1\nline 2"  # untouched

        admin.post(f"/phonebook/{private_id}", **{**_form_values(moved.text), "owner": "eve"})
        deleted = admin.post(f"/phonebook/{private_id}/delete")
        assert deleted.status_code == 303
        assert deleted.headers["location"] == "/phonebook?owner=eve&notice=deleted"
        assert _missing(web, f"/phonebook/{private_id}")
        assert admin.get("/phonebook/999").status_code == 404
        assert admin.get("/phonebook/abc").status_code == 404


def test_phonebook_pages(web: Server) -> None:
    _add_via_api(
        web,
        "phonebook",
        *({"displayname": f"Entry {n:03}", "phone": f"+49 991 {1000 + n}"} for n in range(120)),
    )
    with Signed(web) as admin:
        first = admin.get("/phonebook").text
        assert "120 phonebook entries" in first and "page 1 of 3" in first
        assert _rows(first)[0] == "Entry 000"
        third = admin.get("/phonebook", page_no="3").text
        assert _rows(third) == [f"Entry {n:03}" for n in range(100, 120)]
        assert 'rel="prev"' in third and 'rel="next"' not in third
        # A page past the end shows the last one.
        assert _rows(admin.get("/phonebook", page_no="9").text)[0] == "Entry 100"
        assert _rows(admin.get("/phonebook", page_no="x").text)[0] == "Entry 000"
        found = admin.get("/phonebook", search="entry 11").text
        assert _rows(found) == [f"Entry {n}" for n in range(110, 120)]
        newest = admin.get("/phonebook", order="-displayname").text
        assert _rows(newest)[0] == "Entry 119"


def test_a_search_with_more_matches_than_are_counted_says_so(web: Server, tmp_path: Path) -> None:
    rows = [phonebook_row(f"Entry {n:04}", f"+49 991 {10000 + n}") for n in range(205)]
    path = write_csv(tmp_path / "many.csv", PHONEBOOK_HEADER, rows)
    web.cli("profile", "create", "many", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("sync", "many")
    with Signed(web) as admin:
        first = admin.get("/phonebook", search="entry").text
        assert "200+ phonebook entries" in first and "page 1 of 4+" in first
        assert 'rel="next"' in first
        # Past the counted matches the pages go on while they come back full.
        last = admin.get("/phonebook", search="entry", page_no="5").text
        assert _rows(last) == [f"Entry {n:04}" for n in range(200, 205)]
        assert 'rel="next"' not in last and "page 5 of 5+" in last
        every = admin.get("/phonebook").text  # without a search, the exact count
        assert "205 phonebook entries" in every and "page 1 of 5<" in every


# --- Speed dials ---------------------------------------------------------------------------


def test_add_search_edit_and_delete_speed_dials(web: Server) -> None:
    with Signed(web) as admin:
        assert "No speed dial yet." in _page_ok(admin.get("/speeddials"))
        added = admin.post("/speeddials/new", code="*11", number="0991 123456", displayname="Pizza")
        assert added.status_code == 303
        dial_id = int(added.headers["location"].split("/")[2].split("?")[0])
        admin.post("/speeddials/new", code="12", number="+49 89 7654321", displayname="Office")
        clash = admin.post("/speeddials/new", code="*11", number="1")
        assert clash.status_code == 409 and "code '*11'" in _field_error(clash.text, "code")
        missing = admin.post("/speeddials/new", code="13", number="")
        assert missing.status_code == 422 and "required" in _field_error(missing.text, "number")
        assert _get(web, "/speeddials")["total"] == 2

        assert _rows(admin.get("/speeddials", search="pizza").text) == ["*11"]
        assert _rows(admin.get("/speeddials", search="0991 123").text) == ["*11"]
        assert _rows(admin.get("/speeddials", order="-code").text) == ["12", "*11"]

        page = admin.get(f"/speeddials/{dial_id}").text
        edited = admin.post(
            f"/speeddials/{dial_id}", **{**_form_values(page), "displayname": "Pizza Roma"}
        )
        assert (
            edited.status_code == 200 and "Saved." in edited.text and "Warning" not in edited.text
        )
        assert _get(web, f"/speeddials/{dial_id}")["displayname"] == "Pizza Roma"
        bad = admin.post(f"/speeddials/{dial_id}", **{**_form_values(page), "code": "1a"})
        assert bad.status_code == 422 and "'1a' is not a speed dial code" in _field_error(
            bad.text, "code"
        )
        assert _get(web, f"/speeddials/{dial_id}")["code"] == "*11"

        deleted = admin.post(f"/speeddials/{dial_id}/delete")
        assert deleted.headers["location"] == "/speeddials?notice=deleted"
        assert _missing(web, f"/speeddials/{dial_id}")


# --- who may change what -------------------------------------------------------------------


def test_a_viewer_sees_records_but_no_buttons_and_cannot_change_them(web: Server) -> None:
    add_user(web, "watcher", VIEWER_PASSWORD, roles="viewer")
    _add_via_api(web, "users", {"username": "eve"})
    _add_via_api(web, "phonebook", {"displayname": "Pizza Roma"})
    _add_via_api(web, "speeddials", {"code": "11", "number": "0991 1"})
    eve = _get(web, "/users/eve")["id"]
    with Signed(web, "watcher", VIEWER_PASSWORD) as viewer:
        for path in (
            "/users",
            "/users/1",
            f"/users/{eve}",
            "/phonebook",
            "/phonebook/1",
            "/speeddials",
            "/speeddials/1",
        ):
            response = viewer.get(path)
            assert response.status_code == 200, path
            html = _page_ok(response)
            # The only form that posts is Sign out.
            assert re.findall(r'<form [^>]*method="post" action="([^"]+)"', html) == ["/logout"], (
                path
            )
            for text in ("Add ", "Delete", "Set password", "Save"):
                assert text not in html.split("</header>", 1)[1], (path, text)
        assert "Pizza Roma" in viewer.get("/phonebook").text
        assert "<dt>Username</dt><dd>eve</dd>" in viewer.get(f"/users/{eve}").text
        assert viewer.get("/users/new").status_code == 403
        assert viewer.get(f"/users/{eve}/delete").status_code == 403

        refused = [
            viewer.post("/users/new", username="mallory"),
            viewer.post(f"/users/{eve}", email="x@example.com"),
            viewer.post(f"/users/{eve}/password", password=SECRET),
            viewer.post(f"/users/{eve}/pin", pin="1234"),
            viewer.post(f"/users/{eve}/delete"),
            viewer.post("/phonebook/new", displayname="X"),
            viewer.post("/phonebook/1/delete"),
            viewer.post("/speeddials/1", number="2"),
        ]
        for response in refused:
            assert response.status_code == 403
            assert "this needs the admin role" in response.text
    assert (
        _get(web, "/users/eve")["email"] == "" and _get(web, "/users/eve")["password_set"] is False
    )
    assert _missing(web, "/users/mallory") and _get(web, "/phonebook")["total"] == 1
    assert _get(web, "/speeddials/1")["number"] == "0991 1"


def test_a_change_without_the_csrf_token_or_from_another_site_is_refused(web: Server) -> None:
    _add_via_api(web, "users", {"username": "eve"})
    with Signed(web) as admin:
        own = {"Origin": web.url}
        attempts = [
            admin.client.post("/users/new", data={"username": "mallory"}, headers=own),
            admin.client.post("/users/2/delete", headers=own),
            admin.client.post(
                "/users/2/password", data={"password": SECRET, "csrf_token": "x" * 43}, headers=own
            ),
            admin.client.post(
                "/phonebook/new",
                data={"displayname": "X", "csrf_token": admin.token},
                headers={"Origin": "http://evil.example"},
            ),
        ]
        for response in attempts:
            assert response.status_code == 403
        # The header form of the token, as htmx sends it, is accepted.
        with_header = admin.client.post(
            "/speeddials/new",
            data={"code": "7", "number": "1"},
            headers={**own, "X-CSRF-Token": admin.token},
        )
        assert with_header.status_code == 303
    assert _missing(web, "/users/mallory") and not _missing(web, "/users/eve")
    assert _get(web, "/users/eve")["password_set"] is False
    assert _get(web, "/phonebook")["total"] == 0


def test_without_a_session_the_records_pages_lead_to_sign_in(web: Server) -> None:
    with _client(web) as anonymous:
        for path in ("/users", "/phonebook?owner=eve", "/speeddials/1"):
            response = anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith(
                "/login?next="
            )
        fragment = anonymous.get("/users", headers={"HX-Request": "true", "HX-Target": "results"})
        assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/login"
