"""A throwaway PostgreSQL cluster for tests, from Debian's ``postgresql`` package.

:func:`start_cluster` runs ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/<ver>/bin``,
newest version, or ``$SENTI_PG_BINDIR``) on a data directory in a fresh temporary
directory, listening on 127.0.0.1 on a free port with its Unix socket in that
directory too. PostgreSQL refuses to run as root, so as root the commands run as
the ``postgres`` user (``runuser``) and the directory is handed to it.

The superuser logs in over TCP with a random password (SCRAM), so tests can use
real ``postgresql://user:password@127.0.0.1:port/db`` URLs, and fail a login too.
Durability is off (``fsync``, ``synchronous_commit``): the cluster lives for one
test session. :func:`missing_reason` says why a cluster cannot be started here.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["Cluster", "bindir", "missing_reason", "start_cluster"]

DEBIAN_ROOT: Final = Path("/usr/lib/postgresql")
SUPERUSER: Final = "senti_test"
_RUN_AS: Final = "postgres"
_TIMEOUT: Final = 60.0


def bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live, or ``None`` if PostgreSQL is not installed."""
    override = os.environ.get("SENTI_PG_BINDIR")
    candidates = [Path(override)] if override else []
    if DEBIAN_ROOT.is_dir():
        versions = [d for d in DEBIAN_ROOT.iterdir() if d.name.isdigit()]
        candidates += [d / "bin" for d in sorted(versions, key=lambda d: int(d.name), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def missing_reason() -> str | None:
    """Why no cluster can be started here (for ``pytest.skip``), or ``None`` if one can."""
    try:
        import psycopg  # noqa: F401 (only to see that it is installed)
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if bindir() is None:
        return (
            f"PostgreSQL server binaries not found under {DEBIAN_ROOT}/<ver>/bin "
            "(apt-get install -y postgresql, or set SENTI_PG_BINDIR)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_RUN_AS)
        except KeyError:
            return f"running as root and there is no {_RUN_AS!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


@dataclass
class Cluster:
    """A running throwaway cluster; :meth:`stop` removes it."""

    bindir: Path
    root: Path
    port: int
    password: str = field(repr=False)
    _names: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` for the superuser (or a wrong ``password``)."""
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "senti") -> str:
        """Create a new, empty database and return its URL."""
        import psycopg  # the module imports without the driver

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        try:
            _run(self.bindir / "pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Initialise and start a cluster in a new temporary directory; see the module docstring."""
    found = bindir()
    if found is None:
        raise RuntimeError(missing_reason() or "no PostgreSQL binaries")
    root = Path(tempfile.mkdtemp(prefix="senti-pg-"))
    password = secrets.token_urlsafe(16)
    try:
        (root / "pwfile").write_text(password + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam(_RUN_AS)
            for path in (root, root / "pwfile"):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run(
            found / "initdb",
            "-D",
            str(root / "data"),
            "-U",
            SUPERUSER,
            f"--pwfile={root / 'pwfile'}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            found / "pg_ctl",
            "-D",
            str(root / "data"),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
    except BaseException:
        log = root / "server.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        if detail:
            raise RuntimeError(f"PostgreSQL did not start:\n{detail}") from None
        raise
    return Cluster(found, root, port, password)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(program: Path, *args: str) -> None:
    command = [str(program), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", _RUN_AS, "--", *command]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
        cwd="/",  # the postgres user may not be able to enter our working directory
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
