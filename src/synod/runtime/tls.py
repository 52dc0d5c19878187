"""A cluster's TLS material: its own CA and one certificate per node (issue 8).

For runs that span hosts (``tls: true`` in the cluster config). The
supervisor (:func:`ensure_tls`, called when a config is written and when a
:class:`~synod.runtime.cluster.LocalCluster` starts nodes) keeps in
``run_dir/tls/``::

    ca.pem  ca.key        the cluster CA (self-signed; its key stays here, 0600)
    <id>.pem  <id>.key    node <id>'s certificate, signed by the CA, and key (0600)

Keys are ECDSA P-256; certificates last ``CERT_VALIDITY_DAYS``. A node's
certificate names its configured host, ``localhost`` and 127.0.0.1, but
connectors check only that the CA signed it (see
:meth:`synod.runtime.auth.Credentials.client_ssl`). Copy the run dir's
``cluster.key`` and ``tls/`` to the other hosts (never ``ca.key`` unless
that host must create certificates too).

TLS gives secrecy and tells a connector it reached a node of this cluster;
the cluster-key handshake (:mod:`synod.runtime.auth`), which runs inside it,
tells the node who connected. Only this module needs ``cryptography``; nodes
load the PEM files with the standard library's ``ssl``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ensure_tls", "CERT_VALIDITY_DAYS"]

CERT_VALIDITY_DAYS = 3650


def ensure_tls(tls_dir: str | os.PathLike[str], node_hosts: Mapping[str, str], *, cluster_name: str = "synod") -> None:
    """Create what is missing: the CA, and a certificate for each node id in
    ``node_hosts`` (id -> the host it listens on). Existing files are kept.

    Raises:
        OSError: the folder cannot be written.
        ValueError: an existing CA file does not parse.
    """
    tls_dir = Path(tls_dir)
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem = tls_dir / "ca.pem", tls_dir / "ca.key"
    if not ca_pem.exists() or not ca_key_pem.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster_name} cluster CA")])
        ca_cert = (
            _builder(name, name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_pem, _key_bytes(ca_key))
        ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
    for node_id, host in node_hosts.items():
        cert_path, key_path = tls_dir / f"{node_id}.pem", tls_dir / f"{node_id}.key"
        if cert_path.exists() and key_path.exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
        cert = (
            _builder(subject, ca_cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write_private(key_path, _key_bytes(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
    )


def _alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        names.append(x509.DNSName(host))
    else:
        if not ip.is_unspecified and ip != ipaddress.ip_address("127.0.0.1"):
            names.append(x509.IPAddress(ip))
    return names


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
