"""A real Dovecot IMAP server for tests and benchmarks: own config, passwd-file, Maildir.

Started on free 127.0.0.1 ports (plain with STARTTLS, and implicit SSL) with a
self-signed certificate made here; ``Dovecot.stop()``/``start()`` drop and restore
every connection. Run as root, Dovecot's login processes use ``dovenull`` and mail
is stored as ``dovecot`` (Dovecot refuses root for both); otherwise all runs as the
current user. ``available()`` says why it cannot run (no binary).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

USER = "desk"
PASSWORD = "mailbox-secret-9f2"
ACCOUNTS = 60


def binary() -> str | None:
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot")
                                       else None)


def available() -> str:
    """Empty when Dovecot can run here, else why not."""
    if binary() is None:
        return "dovecot is not installed (Debian: apt-get install dovecot-imapd)"
    if os.geteuid() == 0:
        for name in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                return f"running as root needs the system user {name} (dovecot-core makes it)"
    return ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key; the certificate is also the CA to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class Dovecot:
    def __init__(self, idle: bool = True):
        self.root = Path(tempfile.mkdtemp(prefix="loket-dovecot-"))
        self.root.chmod(0o711)  # mail processes run as another user when we are root
        self.port = free_port()
        self.ssl_port = free_port()
        self.cert, self.key = self_signed(self.root)
        self.idle = idle
        self._write_config()
        self.process_started = False

    def _write_config(self) -> None:
        if os.geteuid() == 0:
            mail = pwd.getpwnam("dovecot")
            login, internal = "dovenull", "dovecot"
            uid, gid = mail.pw_uid, mail.pw_gid
        else:
            me = pwd.getpwuid(os.getuid())
            login = internal = me.pw_name
            uid, gid = me.pw_uid, me.pw_gid
        home = self.home = self.root / "home"
        home.mkdir()
        os.chown(home, uid, gid)
        home.chmod(0o711)
        self.mail_ids = (uid, gid)
        self._write_accounts()
        self.new_user()
        # Without IDLE in the capabilities the fetcher must poll.
        capability = "" if self.idle else "imap_capability = IMAP4rev1 UIDPLUS MOVE LITERAL+\n"
        (self.root / "dovecot.conf").write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {internal}
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
{capability}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.root}/passwd
  default_fields = uid={uid} gid={gid} home={home}/%u
}}
""")

    def new_user(self) -> str:
        """A fresh, empty account: tests that share one server each take their own.

        All accounts are written before the server starts: Dovecot notices a changed
        passwd-file by its time stamp, which two quick changes can share.
        """
        self.users = getattr(self, "users", 0) + 1
        if self.users > ACCOUNTS:
            raise RuntimeError(f"only {ACCOUNTS} accounts on one test server")
        self.user = USER if self.users == 1 else f"{USER}{self.users}"
        return self.user

    def _write_accounts(self) -> None:
        lines = []
        for n in range(1, ACCOUNTS + 1):
            name = USER if n == 1 else f"{USER}{n}"
            (self.home / name).mkdir()
            os.chown(self.home / name, *self.mail_ids)
            lines.append(f"{name}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.root / "passwd").write_text("".join(lines))

    @property
    def config(self) -> str:
        return str(self.root / "dovecot.conf")

    def start(self) -> None:
        # Its daemon keeps inherited pipes open: no output capture, the log file says all.
        subprocess.run([binary() or "dovecot", "-c", self.config], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        self._wait(up=True)
        self.process_started = True

    def stop(self) -> None:
        """Stop the server: every open connection drops."""
        pid_file = self.root / "run" / "master.pid"
        if pid_file.exists():
            subprocess.run([binary() or "dovecot", "-c", self.config, "stop"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        self._wait(up=False)

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _wait(self, up: bool, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    if up:
                        return
            except OSError:
                if not up:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not come {'up' if up else 'down'}; log: "
                           f"{self.log()[-2000:]}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.cert))
        return context

    def client(self) -> IMAPClient:
        """A signed-in client over STARTTLS, as a customer's mail provider would deliver."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=15)
        client.starttls(self.tls_context())
        client.login(self.user, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple = ()) -> int:
        with self.client() as client:
            client.append(folder, raw, flags=flags)
            return int(client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"]) - 1

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return {uid: data[b"FLAGS"] for uid, data in client.fetch("1:*", ["FLAGS"]).items()}
