"""Test certificates: a throwaway CA and a server certificate signed by it, for the LDAP
servers the tests start (slapd, Samba AD), plus a second, unrelated CA with the same name
so that tests can show verification failing on the signature."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: File names inside the directory given to make_tls_files (servers' configs name them).
CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
WRONG_CA_FILE = "wrong-ca.pem"


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path
    wrong_ca_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pbx-connector tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_cert(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_dns_names() -> list[str]:
    """DNS names for the server certificate. libldap checks ``ldap(s)://localhost`` against
    the machine's host name, not "localhost" (tls2.c swaps it for ``ldap_int_hostname``), so
    that name is included as well to keep localhost URIs verifiable."""
    names = ["localhost", socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(name for name in names if name))


def make_tls_files(
    directory: Path, host: str = "127.0.0.1", dns_names: Sequence[str] | None = None
) -> TlsFiles:
    """A test CA, a server certificate for ``host`` and ``dns_names`` (default: localhost
    and this machine's names) signed by it, and an unrelated second CA. EC P-256 keys:
    generated in microseconds, and GnuTLS (Debian's libldap and Samba's TLS library)
    handles them on both sides. The key file is created 0600: Samba refuses any other."""
    directory.mkdir(parents=True, exist_ok=True)
    names = list(dns_names) if dns_names else _server_dns_names()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca_cert(ca_key, "pbx-connector test CA")
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    # Same subject as the real CA on purpose: verification must fail on the signature, not
    # because an issuer name happens not to match.
    wrong_ca = _ca_cert(wrong_key, "pbx-connector test CA")

    server_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(name) for name in names),
                    x509.IPAddress(ipaddress.ip_address(host)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(
        ca_file=directory / CA_FILE,
        cert_file=directory / CERT_FILE,
        key_file=directory / KEY_FILE,
        wrong_ca_file=directory / WRONG_CA_FILE,
    )
    pem = serialization.Encoding.PEM
    files.ca_file.write_bytes(ca.public_bytes(pem))
    files.wrong_ca_file.write_bytes(wrong_ca.public_bytes(pem))
    files.cert_file.write_bytes(server.public_bytes(pem))
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            server_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return files
