"""A PostgreSQL server of one test alone (initdb + pg_ctl on a free port in a temporary directory), for
drills that stop and start the database: the shared server on 5432 is never touched.

    with PrivatePostgres.create() as pg:          # skips (fails under CI=true) without the binaries
        url = pg.database("smbc")                 # a database migrated to head
        pg.stop(); pg.start()                     # a restart: `pg_ctl stop -m fast`, then start

initdb refuses to run as root, so as root every command runs as the `postgres` user, in a directory
that user owns (the data directory and the socket directory both)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from smbc.core.http_server import free_port
from smbc.db.session import Database
from support import require, wait_for

SERVER_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout), if any has initdb and pg_ctl."""
    found = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if found else None


class PrivatePostgres:
    def __init__(self, bin_dir: Path, directory: Path, as_user: str | None) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.log_file = directory / "server.log"
        self.as_user = as_user
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> PrivatePostgres:
        """initdb and start a server; skips the test (fails it under CI=true) when PostgreSQL's
        server binaries or, as root, the `postgres` user are missing."""
        bin_dir = postgres_bin_dir()
        require(
            bin_dir is not None, "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are not installed"
        )
        assert bin_dir is not None
        as_user: str | None = None
        if os.geteuid() == 0:  # initdb refuses root
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                require(False, f"running as root and there is no {SERVER_USER!r} user to run initdb as")
            as_user = SERVER_USER
        directory = Path(tempfile.mkdtemp(prefix="smbc-private-pg-"))
        if as_user is not None:
            shutil.chown(directory, as_user, as_user)
        server = cls(bin_dir, directory, as_user)
        try:
            server._run(
                "initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"
            )
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync off: the drill restarts the server cleanly, and the machine's disk is shared.
        options = f"-k {self.directory} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c max_connections=200"
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log_file), "-o", options
        )
        wait_for(self.accepts, "the private PostgreSQL to accept connections", timeout=60)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: open transactions are rolled back, clients disconnected)."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))

    def accepts(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def database(self, name: str) -> str:
        """A new database migrated to head; its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
        migrated = Database(url)
        try:
            migrated.upgrade()
        finally:
            migrated.dispose()
        return url

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            # Already gone or not stopping: the directory goes anyway.
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
