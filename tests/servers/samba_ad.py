"""A throwaway Samba Active Directory domain controller for the test suite.

``provision_samba_ad(base_dir)`` runs ``samba-tool domain provision`` into ``base_dir``,
writes a private ``smb.conf`` and a CA + server certificate for the DC's loopback address,
and returns a ``SambaAD`` handle; ``start()`` runs ``samba`` in the foreground (in its own
process group) and waits until an LDAP bind as Administrator works; ``populate()`` adds the
users, groups, contacts and the computer described by the constants below; ``stop()`` ends
the process group. ``start_samba_ad(base_dir)`` does all three.

Why it looks the way it does (Samba 4.17, Debian 12):

* Samba AD's LDAP ports are fixed (389/636, plus 3268/3269 for the global catalog), so the
  DC binds to its own loopback address, 127.0.0.2 by default. All of 127.0.0.0/8 reaches
  ``lo`` on Linux, but ``interfaces = 127.0.0.2`` alone is rejected ("can't determine
  interface for 127.0.0.2": Samba only accepts an exact address of a local interface), so
  the interface is given as ``127.0.0.2/8``, which Samba matches against lo's network.
  Binding port 389 needs root.
* Options passed to ``samba-tool domain provision --option`` only partly reach the written
  ``smb.conf`` (``ldap server require strong auth = no`` is dropped), and the generated file
  points logs, pid files and sockets at the system's ``/var`` and ``/run`` directories. So
  the ``[global]`` section is rewritten after provisioning, with every path below
  ``base_dir``: nothing of the Debian samba services is used or touched.
* ``server services = ldap``: no smbd, rpc, kdc, dns, nbt, winbind - the LDAP server is all
  the connector talks to, and it starts in about a second.
* ``samba -i -M single``: one foreground process. With ``-i`` Samba exits when its stdin (a
  pipe) reaches end of file, so the DC dies with the test process even if pytest is killed.
* The certificate Samba generates when none is configured (``private/tls/{ca,cert}.pem``)
  has only CN=<dc fqdn> and no subjectAltName, so a client connecting to 127.0.0.2 cannot
  verify it; instead a private CA and a server certificate with ``IP:127.0.0.2`` (and the
  DC's DNS names) are generated with ``cryptography`` and configured as ``tls certfile``,
  ``tls keyfile`` and ``tls cafile``. Samba refuses a key file that is not mode 0600.
* The password policy keeps AD's defaults (complexity on, at least 7 characters): passwords
  given to ``add_user`` must have three of upper case, lower case, digits and symbols.
* ``ldb:nosync = true`` (as in Samba's own selftest) skips fsync on every write: 300 adds
  took 1.2 s instead of 1.8 s on the development VM. Bulk users get no password, because
  hashing one into AD's several hash types (Kerberos keys are PBKDF2) costs ~30 ms a user.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ldap
import ldap.dn
from ldap.controls import LDAPControl, SimplePagedResultsControl
from ldap.ldapobject import LDAPObject

from tests.servers.tls import CA_FILE, CERT_FILE, KEY_FILE, make_tls_files

HOST = "127.0.0.2"
REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
DC_HOSTNAME = "DC1"
ADMIN_PASSWORD = "Admin-Secret-1"
SETUP_DIR = Path("/usr/share/samba/setup")  # the samba-ad-provision package
REQUIRED_BINARIES = ("samba", "samba-tool")
PROVISION_TIMEOUT = 180.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
LDAP_TIMEOUT = 10.0

# userAccountControl bits (MS-ADTS 2.2.16).
UAC_ACCOUNTDISABLE = 0x0002
UAC_NORMAL_ACCOUNT = 0x0200
UAC_WORKSTATION_TRUST_ACCOUNT = 0x1000
# "member of, transitively": AD's LDAP_MATCHING_RULE_IN_CHAIN.
MATCHING_RULE_IN_CHAIN = "1.2.840.113556.1.4.1941"
# AD's "tree delete" control: delete an object together with everything below it.
TREE_DELETE_OID = "1.2.840.113556.1.4.805"

# --- the population --------------------------------------------------------------------
# Relative DNs (below the base DN) of the organisational units the population lives in.
# Bulk users have their own OU so that tests of the named users need not page through them.
PEOPLE_OU = "OU=People"
BULK_OU = "OU=Bulk"
GROUPS_OU = "OU=Groups"
CONTACTS_OU = "OU=Contacts"
COMPANY = "Example GmbH"
# More than AD's default MaxPageSize (1000), so a search must page to see them all.
# (Samba 4.17 itself enforces no page limit: see test_samba_server.py.)
BULK_USER_COUNT = 1100


@dataclass(frozen=True)
class SeedUser:
    """A user account the population creates below ``OU=People``."""

    sam: str
    given: str
    sn: str
    password: str
    disabled: bool = False
    cn: str | None = None  # default "given sn"
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def common_name(self) -> str:
        return self.cn or f"{self.given} {self.sn}"


@dataclass(frozen=True)
class SeedContact:
    """A contact (objectClass contact: no account, cannot bind) below ``OU=Contacts``."""

    cn: str
    attrs: Mapping[str, str]


def _phones(ext: str, mobile: str) -> dict[str, str]:
    return {
        "telephoneNumber": f"+49 991 12345-{ext}",
        "mobile": f"+49 170 12345{mobile}",
        "homePhone": f"+49 991 5550{mobile}",
        "facsimileTelephoneNumber": f"+49 991 12345-9{ext}",
        "company": COMPANY,
    }


USERS: tuple[SeedUser, ...] = (
    SeedUser(
        "alice",
        "Alice",
        "Anderson",
        "Alice-Secret-1",
        attrs={"mail": "alice@example.test", **_phones("101", "01")},
    ),
    SeedUser(
        "bob",
        "Bob",
        "Brown",
        "Bob-Secret-1",
        attrs={"mail": "bob@example.test", **_phones("102", "02")},
    ),
    SeedUser(
        "carol",
        "Carol",
        "Clark",
        "Carol-Secret-1",
        disabled=True,
        attrs={"mail": "carol@example.test", **_phones("103", "03")},
    ),
    SeedUser(
        "dave",
        "Dave",
        "Davis",
        "Dave-Secret-1",
        disabled=True,
        attrs={"mail": "dave@example.test", "telephoneNumber": "+49 991 12345-104"},
    ),
    SeedUser(
        "juergen",
        "Jürgen",
        "Groß",
        "Juergen-Secret-1",
        attrs={"mail": "juergen.gross@example.test", **_phones("105", "05")},
    ),
    # A comma in the CN: the DN escapes it ("CN=Smith\\, John,OU=People,...").
    SeedUser(
        "jsmith",
        "John",
        "Smith",
        "John-Secret-1",
        cn="Smith, John",
        attrs={"mail": "john.smith@example.test", **_phones("106", "06")},
    ),
    # No phone numbers, no mail, no company: only the names.
    SeedUser("erin", "Erin", "Evans", "Erin-Secret-1"),
)
USERS_BY_SAM: dict[str, SeedUser] = {user.sam: user for user in USERS}
DISABLED_USERS: frozenset[str] = frozenset(user.sam for user in USERS if user.disabled)

# Group name -> direct members: "user:<sam>" or "group:<name>". Ordered so that every
# member group exists before the group that contains it.
GROUPS: dict[str, tuple[str, ...]] = {
    "Sales Inside": ("user:bob",),
    "Sales": ("user:alice", "user:carol", "group:Sales Inside"),
    "Phone Users": ("group:Sales", "user:juergen"),
    "Support": ("user:jsmith",),
}
# The users that are members of "Phone Users" directly or through nested groups: what an
# LDAP_MATCHING_RULE_IN_CHAIN search for (memberOf:1.2.840.113556.1.4.1941:=<Phone Users>)
# returns (together with the groups "Sales" and "Sales Inside" unless the filter asks for
# objectCategory=person).
PHONE_USERS_TRANSITIVE: frozenset[str] = frozenset({"alice", "bob", "carol", "juergen"})

CONTACTS: tuple[SeedContact, ...] = (
    SeedContact(
        "Acme Hotline",
        {
            "displayName": "Acme Hotline",
            "company": "Acme AG",
            "telephoneNumber": "+49 89 1234567",
            "facsimileTelephoneNumber": "+49 89 1234568",
            "mail": "hotline@acme.example",
        },
    ),
    SeedContact(
        "Zoë Lieferant",
        {
            "givenName": "Zoë",
            "sn": "Lieferant",
            "displayName": "Zoë Lieferant",
            "company": "Lieferant & Söhne KG",
            "telephoneNumber": "+43 1 5555555",
            "mobile": "+43 660 5555555",
        },
    ),
)
# A computer account in OU=People: computers are objectClass user too, so a filter of
# (objectClass=user) finds it and (&(objectCategory=person)(objectClass=user)) does not.
COMPUTER_NAME = "WS001"


def bulk_sam(index: int) -> str:
    """sAMAccountName of bulk user ``index`` (1-based): bulk0001 ... bulk1100."""
    return f"bulk{index:04d}"


# --- availability ------------------------------------------------------------------------


def _binary(name: str) -> str | None:
    """Full path of a Samba program; /usr/sbin (where samba lives) need not be on PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def samba_unavailable_reason() -> str | None:
    """Why a Samba AD DC cannot run here (None when it can)."""
    missing = [name for name in REQUIRED_BINARIES if _binary(name) is None]
    if missing:
        return (
            f"Samba AD programs not found: {', '.join(missing)} "
            "(install the Debian packages samba samba-ad-dc samba-ad-provision)"
        )
    if not SETUP_DIR.is_dir():
        return f"{SETUP_DIR} is missing (install the Debian package samba-ad-provision)"
    if os.geteuid() != 0:
        return "a Samba AD DC must run as root (it binds the fixed LDAP port 389)"
    return None


def samba_available() -> bool:
    return samba_unavailable_reason() is None


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _lock_path(host: str) -> Path:
    return Path(tempfile.gettempdir()) / f"pbx-connector-samba-ad-{host}.lock"


def lock_host(host: str) -> int | None:
    """Reserve ``host`` for one DC of this process: an exclusive ``flock`` on a file named
    after it, or None if another process holds it. The kernel drops the lock when the
    holder dies, so a killed test run leaves no stale reservation."""
    fd = os.open(_lock_path(host), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def reserve_loopback_host(first: str = HOST, tries: int = 20) -> tuple[str, int]:
    """``first``, or the next loopback address that no other DC of ours has reserved and on
    which nothing listens on 389/636; returns it with its lock (see ``lock_host``).

    Each DC needs its own address (the ports are fixed). Choosing by open ports alone races:
    two test sessions both pick 127.0.0.2 while provisioning (seconds before samba binds).
    """
    address = ipaddress.IPv4Address(first)
    for offset in range(tries):
        candidate = str(address + offset)
        fd = lock_host(candidate)
        if fd is None:
            continue
        if not (_port_open(candidate, 389) or _port_open(candidate, 636)):
            return candidate, fd
        os.close(fd)
    raise RuntimeError(
        f"no free address for a Samba AD DC: {first} and the {tries - 1} next addresses are "
        "reserved by other test sessions or have ports 389/636 taken"
    )


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


# --- LDAP helpers ------------------------------------------------------------------------

AttrValue = str | bytes | Sequence[str | bytes]
Entry = tuple[str, dict[str, list[bytes]]]


def _as_bytes_list(value: AttrValue | None) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        value = [value]
    return [v.encode() if isinstance(v, str) else v for v in value]


def _unicode_pwd(password: str) -> bytes:
    """AD's unicodePwd value: the password in double quotes, UTF-16-LE encoded."""
    return f'"{password}"'.encode("utf-16-le")


def new_connection(uri: str, ca_file: Path | None = None) -> LDAPObject:
    """An unbound python-ldap connection with sane options for AD (no referral chasing).

    TLS options are set on the connection; ``OPT_X_TLS_NEWCTX`` comes last because it
    builds the TLS context from the options set before it.
    """
    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    # AD returns continuation references (DomainDnsZones...) that libldap would otherwise
    # chase, re-binding anonymously to hosts that do not exist here.
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, LDAP_TIMEOUT)
    conn.set_option(ldap.OPT_TIMEOUT, LDAP_TIMEOUT * 6)
    if ca_file is not None:
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(ca_file))
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    return conn


# --- the handle --------------------------------------------------------------------------

#: The shared Administrator connection is made again after this long unused: well
#: under the DC's MaxConnIdleTime (900 s), after which it closes the connection.
ADMIN_IDLE_S = 300.0


@dataclass
class SambaAD:
    """A provisioned (and, after ``start()``, running) throwaway Samba AD DC."""

    base_dir: Path
    host: str
    realm: str
    domain: str
    admin_password: str
    domain_sid: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _admin_conn: LDAPObject | None = field(default=None, repr=False)
    _admin_used: float = field(default=0.0, repr=False)
    _stdout: IO[bytes] | None = field(default=None, repr=False)
    _host_lock: int | None = field(default=None, repr=False)

    # Connection facts ------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"ldap://{self.host}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://{self.host}"

    @property
    def dns_domain(self) -> str:
        return self.realm.lower()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.dns_domain.split("."))

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.base_dn}"

    @property
    def admin_upn(self) -> str:
        return f"Administrator@{self.dns_domain}"

    @property
    def dc_fqdn(self) -> str:
        return f"{DC_HOSTNAME.lower()}.{self.dns_domain}"

    @property
    def tls_dir(self) -> Path:
        return self.base_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the DC's certificate (for LDAPS and StartTLS)."""
        return self.tls_dir / CA_FILE

    @property
    def smb_conf(self) -> Path:
        return self.base_dir / "etc" / "smb.conf"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "log" / "samba.log"

    # DNs of the population ----------------------------------------------------------------
    def dn(self, rdn: str) -> str:
        """``rdn`` (e.g. "OU=People") below the base DN."""
        return f"{rdn},{self.base_dn}"

    @property
    def people_dn(self) -> str:
        return self.dn(PEOPLE_OU)

    @property
    def bulk_dn(self) -> str:
        return self.dn(BULK_OU)

    @property
    def groups_dn(self) -> str:
        return self.dn(GROUPS_OU)

    @property
    def contacts_dn(self) -> str:
        return self.dn(CONTACTS_OU)

    def user_dn(self, sam: str) -> str:
        """DN of a seeded user (``USERS``) or a bulk user (``bulk0001``...)."""
        if sam in USERS_BY_SAM:
            cn = USERS_BY_SAM[sam].common_name
            return f"CN={ldap.dn.escape_dn_chars(cn)},{self.people_dn}"
        if re.fullmatch(r"bulk\d{4}", sam):
            return f"CN={_bulk_cn(int(sam[4:]))},{self.bulk_dn}"
        raise KeyError(f"{sam!r} is not a seeded user")

    def group_dn(self, name: str) -> str:
        return f"CN={ldap.dn.escape_dn_chars(name)},{self.groups_dn}"

    def contact_dn(self, cn: str) -> str:
        return f"CN={ldap.dn.escape_dn_chars(cn)},{self.contacts_dn}"

    @property
    def computer_dn(self) -> str:
        return f"CN={COMPUTER_NAME},{self.people_dn}"

    # Lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Run ``samba`` and wait until Administrator can bind; RuntimeError with the log tail
        if it does not come up."""
        if self.running:
            return
        if self._host_lock is None:
            self._host_lock = lock_host(self.host)
            if self._host_lock is None:
                raise RuntimeError(
                    f"{self.host} is reserved by another test session's Samba AD DC "
                    f"(lock file {_lock_path(self.host)})"
                )
        if _port_open(self.host, 389):
            self._release_host()
            raise RuntimeError(
                f"something already listens on {self.host}:389; pick another loopback address"
            )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._stdout = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [
                _binary("samba") or "samba",
                "-i",
                "-M",
                "single",
                "-d",
                "1",
                "-s",
                str(self.smb_conf),
            ],
            cwd=self.base_dir,
            # -i makes samba exit at end of file on stdin: the pipe closes when this process
            # dies, so a killed test run does not leave a DC behind.
            stdin=subprocess.PIPE,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole by stop()
        )
        what = f"Samba AD DC on {self.host} (base dir {self.base_dir})"
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(
                    f"{what} exited with code {code} while starting; log tail:\n"
                    f"{_tail(self.log_file)}"
                )
            try:
                self._check_identity()
                return
            except ldap.LDAPError as exc:
                last_exc = exc
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{what} did not accept an LDAP bind within {timeout:.0f} s ({last_exc!r}); "
            f"log tail:\n{_tail(self.log_file)}"
        )

    def _check_identity(self) -> None:
        """Bind as Administrator and make sure the server is this DC (its domain SID), not
        another one that happens to listen on the same address."""
        conn = new_connection(self.uri)
        try:
            conn.simple_bind_s(self.admin_upn, self.admin_password)
            [(_dn, attrs)] = conn.search_s(self.base_dn, ldap.SCOPE_BASE, attrlist=["objectSid"])
        finally:
            conn.unbind_s()
        sid = _sid_to_str(attrs["objectSid"][0])
        if sid != self.domain_sid:
            self.stop()
            raise RuntimeError(
                f"the DC answering on {self.host}:389 has domain SID {sid}, not this DC's "
                f"{self.domain_sid}: another Samba AD DC is using the address"
            )

    def stop(self) -> None:
        """Stop the DC: close its stdin, SIGTERM its process group, SIGKILL if needed.
        Idempotent; the provisioned files stay (they belong to ``base_dir``)."""
        if self._admin_conn is not None:
            with contextlib.suppress(ldap.LDAPError):
                self._admin_conn.unbind_s()
            self._admin_conn = None
        proc = self.process
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)
            # The group may outlive its leader (a helper it forked); make sure it is gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        self._release_host()

    def _release_host(self) -> None:
        if self._host_lock is not None:
            os.close(self._host_lock)  # closing the descriptor drops the flock
            self._host_lock = None

    def __enter__(self) -> SambaAD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # LDAP access ----------------------------------------------------------------------------
    def connect(self, uri: str | None = None, *, starttls: bool = False) -> LDAPObject:
        """A new, unbound connection to this DC; TLS verified against ``ca_file``."""
        conn = new_connection(uri or self.uri, self.ca_file)
        if starttls:
            conn.start_tls_s()
        return conn

    def bind(
        self, who: str, password: str, *, uri: str | None = None, starttls: bool = False
    ) -> LDAPObject:
        """A connection simple-bound as ``who`` (DN, UPN or DOMAIN\\sam)."""
        conn = self.connect(uri, starttls=starttls)
        try:
            conn.simple_bind_s(who, password)
        except ldap.LDAPError:
            conn.unbind_s()  # no half-open connection left behind by a failed bind
            raise
        return conn

    @property
    def admin(self) -> LDAPObject:
        """A shared LDAPS connection bound as Administrator (encrypted: AD accepts
        unicodePwd only over an encrypted connection)."""
        now = time.monotonic()
        if self._admin_conn is not None and now - self._admin_used > ADMIN_IDLE_S:
            # Samba closes an LDAP connection idle for MaxConnIdleTime (900 s): a DC shared
            # by a slow test run had dropped it by the next test (SERVER_DOWN).
            with contextlib.suppress(ldap.LDAPError):
                self._admin_conn.unbind_s()
            self._admin_conn = None
        if self._admin_conn is None:
            self._admin_conn = self.bind(self.admin_upn, self.admin_password, uri=self.ldaps_uri)
        self._admin_used = now
        return self._admin_conn

    def search(
        self,
        filterstr: str = "(objectClass=*)",
        attrs: Sequence[str] | None = None,
        *,
        base: str | None = None,
        scope: int = ldap.SCOPE_SUBTREE,
        page_size: int = 500,
    ) -> list[Entry]:
        """Paged search as Administrator; search references (dn None) are left out."""
        control = SimplePagedResultsControl(True, size=page_size, cookie=b"")
        results: list[Entry] = []
        while True:
            msgid = self.admin.search_ext(
                base or self.base_dn,
                scope,
                filterstr,
                attrlist=list(attrs) if attrs is not None else None,
                serverctrls=[control],
            )
            _type, data, _msgid, controls = self.admin.result3(msgid)
            results.extend((dn, entry) for dn, entry in data if dn is not None)
            cookie = next(
                (
                    c.cookie
                    for c in controls
                    if c.controlType == SimplePagedResultsControl.controlType
                ),
                b"",
            )
            if not cookie:
                return results
            control.cookie = cookie

    def add(self, dn: str, attrs: Mapping[str, AttrValue]) -> str:
        self.admin.add_s(dn, [(name, _as_bytes_list(value)) for name, value in attrs.items()])
        return dn

    def modify(
        self,
        dn: str,
        changes: Mapping[str, AttrValue | None] | Sequence[tuple[int, str, Any]],
    ) -> None:
        """Change an entry: a mapping replaces each attribute's values (None or [] deletes the
        attribute), a sequence is a python-ldap modlist ``[(ldap.MOD_ADD, attr, values)]``."""
        if isinstance(changes, Mapping):
            modlist = [
                (ldap.MOD_REPLACE, name, _as_bytes_list(value)) for name, value in changes.items()
            ]
        else:
            modlist = [(op, name, _as_bytes_list(value)) for op, name, value in changes]
        self.admin.modify_s(dn, modlist)

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """modrdn (and move); returns the new DN."""
        self.admin.rename_s(dn, new_rdn, newsuperior=new_superior, delold=1)
        parent = new_superior or ldap.dn.dn2str(ldap.dn.str2dn(dn)[1:])
        return f"{new_rdn},{parent}"

    def delete(self, dn: str, *, recursive: bool = False) -> None:
        """Delete ``dn`` (with everything below it when ``recursive``)."""
        controls = [LDAPControl(TREE_DELETE_OID, True)] if recursive else None
        self.admin.delete_ext_s(dn, serverctrls=controls)

    def set_password(self, dn: str, password: str) -> None:
        """Administrative password reset."""
        self.admin.modify_s(dn, [(ldap.MOD_REPLACE, "unicodePwd", [_unicode_pwd(password)])])

    def add_ou(self, rdn: str) -> str:
        """Add ``OU=...`` below the base DN."""
        return self.add(self.dn(rdn), {"objectClass": ["top", "organizationalUnit"]})

    def add_user(
        self,
        sam: str,
        given: str,
        sn: str,
        password: str | None = None,
        disabled: bool = False,
        *,
        cn: str | None = None,
        parent: str | None = None,
        **attrs: AttrValue,
    ) -> str:
        """Add an AD user below ``parent`` (default ``OU=People``); returns its DN.

        Without a password the account gets a random one, so it looks like any other
        account (Windows AD refuses an enabled account without a password).
        Extra attributes are given by LDAP name, e.g. ``telephoneNumber="+49 ..."``.
        """
        cn = cn or f"{given} {sn}"
        dn = f"CN={ldap.dn.escape_dn_chars(cn)},{parent or self.people_dn}"
        uac = UAC_NORMAL_ACCOUNT | (UAC_ACCOUNTDISABLE if disabled else 0)
        entry: dict[str, AttrValue] = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": cn,
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{self.dns_domain}",
            "givenName": given,
            "sn": sn,
            "displayName": cn,
            "userAccountControl": str(uac),
            "unicodePwd": _unicode_pwd(password or secrets.token_urlsafe(16) + "-Aa1"),
        }
        entry.update(attrs)
        return self.add(dn, entry)

    def add_group(
        self, name: str, members: Sequence[str] = (), *, parent: str | None = None
    ) -> str:
        """Add a global security group with the given member DNs; returns its DN."""
        dn = f"CN={ldap.dn.escape_dn_chars(name)},{parent or self.groups_dn}"
        entry: dict[str, AttrValue] = {
            "objectClass": ["top", "group"],
            "cn": name,
            "sAMAccountName": name,
            # ADS_GROUP_TYPE_GLOBAL_GROUP | ADS_GROUP_TYPE_SECURITY_ENABLED, as a signed int32.
            "groupType": str(-2147483646),
        }
        if members:
            entry["member"] = list(members)
        return self.add(dn, entry)

    def add_contact(self, cn: str, *, parent: str | None = None, **attrs: AttrValue) -> str:
        dn = f"CN={ldap.dn.escape_dn_chars(cn)},{parent or self.contacts_dn}"
        entry: dict[str, AttrValue] = {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "cn": cn,
        }
        entry.update(attrs)
        return self.add(dn, entry)

    def add_computer(self, name: str, *, parent: str | None = None) -> str:
        dn = f"CN={ldap.dn.escape_dn_chars(name)},{parent or self.people_dn}"
        return self.add(
            dn,
            {
                "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
                "cn": name,
                "sAMAccountName": f"{name}$",
                "userAccountControl": str(UAC_WORKSTATION_TRUST_ACCOUNT),
                "dNSHostName": f"{name.lower()}.{self.dns_domain}",
            },
        )

    def members_dn(self, member: str) -> str:
        """DN of a ``GROUPS`` member spec ("user:<sam>" or "group:<name>")."""
        kind, _, name = member.partition(":")
        return self.user_dn(name) if kind == "user" else self.group_dn(name)

    def populate(self, bulk_users: int = BULK_USER_COUNT) -> None:
        """Add the population described by the module's constants (once, after start)."""
        for rdn in (PEOPLE_OU, BULK_OU, GROUPS_OU, CONTACTS_OU):
            self.add_ou(rdn)
        for user in USERS:
            self.add_user(
                user.sam,
                user.given,
                user.sn,
                user.password,
                user.disabled,
                cn=user.cn,
                **user.attrs,
            )
        for name, members in GROUPS.items():
            self.add_group(name, [self.members_dn(member) for member in members])
        for contact in CONTACTS:
            self.add_contact(contact.cn, **contact.attrs)
        self.add_computer(COMPUTER_NAME)
        for index in range(1, bulk_users + 1):
            self._add_bulk_user(index)

    def _add_bulk_user(self, index: int) -> str:
        """A bulk user without a password: hashing a password into AD's several hash types
        costs ~30 ms a user (35 s for 1,100), a passwordless add ~2.5 ms. Samba 4.17 accepts
        an enabled account (UAC 512) without a password, where Windows AD would insist on
        PASSWD_NOTREQD; to a reader the entry looks like any other enabled user."""
        cn = _bulk_cn(index)
        return self.add(
            f"CN={cn},{self.bulk_dn}",
            {
                "objectClass": ["top", "person", "organizationalPerson", "user"],
                "cn": cn,
                "sAMAccountName": bulk_sam(index),
                "userPrincipalName": f"{bulk_sam(index)}@{self.dns_domain}",
                "givenName": "Bulk",
                "sn": f"User {index:04d}",
                "displayName": cn,
                "userAccountControl": str(UAC_NORMAL_ACCOUNT),
                "telephoneNumber": f"+49 991 20000-{index:04d}",
                "company": COMPANY,
            },
        )


def _bulk_cn(index: int) -> str:
    return f"Bulk User {index:04d}"


def _sid_to_str(raw: bytes) -> str:
    """The textual form (S-1-5-21-...) of a binary objectSid."""
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(count)]
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


# --- provisioning ------------------------------------------------------------------------


def _smb_conf(base: Path, host: str, realm: str, domain: str) -> str:
    """The private smb.conf: only the LDAP server, every path below ``base``."""
    tls = base / "tls"
    run = base / "run"
    settings = {
        "netbios name": DC_HOSTNAME,
        "workgroup": domain,
        "realm": realm,
        "server role": "active directory domain controller",
        "interfaces": f"{host}/8",
        "bind interfaces only": "yes",
        "server services": "ldap",
        "ldap server require strong auth": "no",
        "tls enabled": "yes",
        "tls keyfile": str(tls / KEY_FILE),
        "tls certfile": str(tls / CERT_FILE),
        "tls cafile": str(tls / CA_FILE),
        "private dir": str(base / "private"),
        "lock directory": str(base),
        "state directory": str(base / "state"),
        "cache directory": str(base / "cache"),
        "pid directory": str(run),
        "ncalrpc dir": str(run / "ncalrpc"),
        "winbindd socket directory": str(run / "winbindd"),
        "ntp signd socket directory": str(run / "ntp_signd"),
        "binddns dir": str(base / "bind-dns"),
        "log file": str(base / "log" / "samba.log"),
        "disable netbios": "yes",
        "load printers": "no",
        "printcap name": "/dev/null",
        "idmap_ldb:use rfc2307": "yes",
        "ldb:nosync": "true",
    }
    lines = ["# Written by tests/servers/samba_ad.py", "[global]"]
    lines += [f"\t{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def provision_samba_ad(
    base_dir: Path,
    *,
    realm: str = REALM,
    domain: str = DOMAIN,
    admin_password: str = ADMIN_PASSWORD,
    host: str | None = None,
) -> SambaAD:
    """Provision a new domain into ``base_dir`` (must be empty or absent); not started.

    ``host`` defaults to 127.0.0.2, or the next loopback address when another test session
    holds that one; the returned handle keeps the address reserved until ``stop()``.
    """
    reason = samba_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    host_lock: int | None = None
    if host is None:
        host, host_lock = reserve_loopback_host()
    try:
        handle = _provision(base_dir, realm, domain, admin_password, host)
    except BaseException:
        if host_lock is not None:
            os.close(host_lock)
        raise
    handle._host_lock = host_lock
    return handle


def _provision(base_dir: Path, realm: str, domain: str, admin_password: str, host: str) -> SambaAD:
    base = Path(base_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        raise RuntimeError(f"{base} is not empty; provision into a fresh directory")
    (base / "log").mkdir()
    provision_log = base / "log" / "provision.log"
    args = [
        _binary("samba-tool") or "samba-tool",
        "domain",
        "provision",
        "--use-rfc2307",
        f"--realm={realm}",
        f"--domain={domain}",
        f"--host-name={DC_HOSTNAME}",
        "--server-role=dc",
        "--dns-backend=NONE",
        f"--adminpass={admin_password}",
        f"--targetdir={base}",
        f"--option=interfaces={host}/8",
        "--option=bind interfaces only=yes",
        "--option=ldb:nosync=true",
    ]
    try:
        with provision_log.open("wb") as log:
            result = subprocess.run(
                args,
                cwd=base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=PROVISION_TIMEOUT,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"samba-tool domain provision into {base} did not finish within "
            f"{PROVISION_TIMEOUT:.0f} s; log tail:\n{_tail(provision_log)}"
        ) from None
    if result.returncode != 0:
        raise RuntimeError(
            f"samba-tool domain provision into {base} failed with exit code "
            f"{result.returncode}; log tail:\n{_tail(provision_log)}"
        )
    match = re.search(r"DOMAIN SID:\s+(S-[0-9-]+)", provision_log.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(
            f"no DOMAIN SID in the provision output; log tail:\n{_tail(provision_log)}"
        )

    handle = SambaAD(
        base_dir=base,
        host=host,
        realm=realm,
        domain=domain,
        admin_password=admin_password,
        domain_sid=match.group(1),
    )
    (base / "run").mkdir(exist_ok=True)
    handle.smb_conf.write_text(_smb_conf(base, host, realm, domain))
    make_tls_files(handle.tls_dir, host, [handle.dc_fqdn, DC_HOSTNAME.lower()])
    return handle


def start_samba_ad(
    base_dir: Path,
    *,
    populate: bool = True,
    realm: str = REALM,
    domain: str = DOMAIN,
    admin_password: str = ADMIN_PASSWORD,
    host: str | None = None,
) -> SambaAD:
    """Provision, start and (by default) populate a DC; the caller must ``stop()`` it."""
    handle = provision_samba_ad(
        base_dir, realm=realm, domain=domain, admin_password=admin_password, host=host
    )
    handle.start()
    try:
        if populate:
            handle.populate()
    except BaseException:
        handle.stop()
        raise
    return handle
