"""Encrypted backups of the main database and the key store: create, verify, restore.

A backup is a folder `obhut-backup-<UTC time>-<short id>/` holding `manifest.json` and one encrypted file
per database. Each backup has its own random AES-256 key; the files are chunked AES-256-GCM
(`vault.streams`); the key is wrapped by the configured key provider under `KEY_REF`, bound to the backup
id, and the manifest carries an HMAC under a key derived from it, so a changed manifest fails. The manifest
holds no personal data: ids, times, versions, sizes, checksums and the wrapped key.

Restoring needs the key provider: keep the local key file (`var/master.key`) apart from the backups, or
whoever holds both holds everything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from obhut import __version__
from obhut.kit.clock import now
from obhut.kit.ids import new_id
from obhut.kit.settings import Settings
from obhut.retention.ports import BackupError, DatabaseEngine, Inspection
from obhut.vault import sensitive
from obhut.vault.ports import KeyProvider, KeyUnusableError, WrapItem
from obhut.vault.providers import build_providers
from obhut.vault.streams import CHUNK_BYTES, BackupKey, StreamError

KEY_REF = "obhut-backups"
MANIFEST = "manifest.json"
FORMAT = "obhut-backup-v1"
_SUFFIX = {"sqlite": ".db.enc", "postgresql": ".pgdump.enc"}

Progress = Callable[[str, int, int], None]
"""Called as work advances: (what, bytes done, bytes in all)."""
AfterRestore = Callable[[Settings], int]
"""Called once both databases are restored; returns how many erasures it redid."""


@dataclass(frozen=True)
class DatabaseFile:
    database: str
    kind: str
    revision: str | None
    file: str
    plaintext_size: int
    sha256: str
    chunks: int


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    created_at: str
    obhut_version: str
    provider: str
    key_ref: str
    wrapped_key: str
    chunk_bytes: int
    databases: tuple[DatabaseFile, ...]
    format: str = FORMAT

    def body(self) -> bytes:
        """The bytes the MAC covers: canonical JSON of every field."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class CreatedBackup:
    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class DatabaseCheck:
    database: str
    kind: str
    revision: str | None
    row_counts: dict[str, int]


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    manifest: Manifest
    databases: tuple[DatabaseCheck, ...]


@dataclass(frozen=True)
class RestoreReport:
    verified: VerifyReport
    erasures_replayed: int | None
    """What `after_restore` returned; None when no hook was given."""


def database_urls(settings: Settings) -> dict[str, str]:
    """The databases a backup holds, in the order it dumps them: the sensitive store after the main database,
    with its deletions held meanwhile, so that every sensitive record the main dump points to is in its dump."""
    return settings.database_urls


def engine_for(url: str) -> DatabaseEngine:
    """The adapter for a SQLAlchemy URL (sqlite:/// or postgresql[+psycopg]://)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        from obhut.retention.adapters.sqlite import SqliteDatabase  # noqa: PLC0415 - one engine per run

        return SqliteDatabase(url)
    if backend == "postgresql":
        from obhut.retention.adapters.postgres import PostgresDatabase  # noqa: PLC0415 - one engine per run

        return PostgresDatabase(url)
    raise BackupError(f"backups support SQLite and PostgreSQL, not {backend}")


def _provider(settings: Settings, name: str) -> KeyProvider:
    providers = build_providers(settings)
    if name not in providers:
        raise BackupError(
            f"{MANIFEST}: the backup key is wrapped by the '{name}' key provider, which is not configured here; "
            "configure it (see the README's configuration section) to verify or restore this backup"
        )
    return providers[name]


def _tick(progress: Progress | None, what: str, total: int) -> Callable[[int], None]:
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(what, done, total)

    if progress is not None:
        progress(what, 0, total)
    return advance


# --- create -------------------------------------------------------------------------------------------
def create(settings: Settings, dest: Path | None = None, *, progress: Progress | None = None) -> CreatedBackup:
    """Back up both databases into a new folder under `dest` (default: the configured backup folder)."""
    backup_id, created = new_id(), now()
    folder = (dest or settings.resolved_backup_dir) / f"obhut-backup-{created:%Y%m%dT%H%M%SZ}-{backup_id[-8:]}"
    provider = _provider(settings, settings.key_provider)
    if not provider.exists(KEY_REF):
        provider.create_key(KEY_REF)
    key = BackupKey.new(backup_id)
    (wrapped,) = provider.wrap(KEY_REF, [WrapItem(key.material, backup_id.encode())])
    folder.mkdir(parents=True, mode=0o700)
    try:
        files = _seal_databases(settings, key, folder, progress)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half backup left to be mistaken for one
        raise
    manifest = Manifest(
        backup_id=backup_id,
        created_at=created.isoformat(),
        obhut_version=__version__,
        provider=provider.name,
        key_ref=KEY_REF,
        wrapped_key=base64.b64encode(wrapped).decode(),
        chunk_bytes=CHUNK_BYTES,
        databases=tuple(files),
    )
    document = {**asdict(manifest), "mac": key.mac(manifest.body())}
    descriptor = os.open(folder / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return CreatedBackup(folder, manifest)


def _seal_databases(settings: Settings, key: BackupKey, folder: Path, progress: Progress | None) -> list[DatabaseFile]:
    files = []
    urls = database_urls(settings)
    held = sensitive.holding(urls["sensitive"]) if "sensitive" in urls else nullcontext()
    with tempfile.TemporaryDirectory(prefix="obhut-backup-") as work, held:
        for database, url in urls.items():
            engine = engine_for(url)
            plain = Path(work) / database
            revision = engine.revision()  # migrations run at start-up, not during a backup
            engine.dump(plain)
            name = f"{database}{_SUFFIX[engine.kind]}"
            sealed = key.seal_file(name, plain, folder / name, _tick(progress, name, plain.stat().st_size), CHUNK_BYTES)
            files.append(
                DatabaseFile(database, engine.kind, revision, name, sealed.plaintext_size, sealed.sha256, sealed.chunks)
            )
    return files


# --- reading a backup back ------------------------------------------------------------------------------
def read_manifest(path: Path) -> tuple[Manifest, str]:
    """The manifest of the backup folder `path` and its MAC (not yet checked: that needs the key)."""
    try:
        document: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path} is not an Obhut backup: it has no {MANIFEST}") from None
    except (ValueError, UnicodeDecodeError):
        raise StreamError(f"{MANIFEST}: not valid JSON: the manifest was altered") from None
    try:
        mac = str(document.pop("mac"))
        databases = tuple(DatabaseFile(**entry) for entry in document.pop("databases"))
        manifest = Manifest(**document, databases=databases)
    except (KeyError, TypeError):
        raise StreamError(f"{MANIFEST}: fields are missing or unknown: the manifest was altered") from None
    if manifest.format != FORMAT:
        raise BackupError(f"{MANIFEST}: format '{manifest.format}' is not one this Obhut reads ({FORMAT})")
    return manifest, mac


@dataclass(frozen=True)
class Found:
    """A backup folder found on disk: its manifest (None when unreadable, with the problem) and its size."""

    path: Path
    size: int
    manifest: Manifest | None
    problem: str = ""


def listing(folder: Path) -> list[Found]:
    """The backups in `folder`, newest first, read without their key: nothing is decrypted or checked."""
    found = []
    candidates = sorted(folder.glob("obhut-backup-*"), reverse=True) if folder.is_dir() else []
    for path in (p for p in candidates if p.is_dir()):
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        try:
            found.append(Found(path, size, read_manifest(path)[0]))
        except (BackupError, StreamError) as error:
            found.append(Found(path, size, None, error.detail))
    return found


def _unlock(settings: Settings, manifest: Manifest, mac: str) -> BackupKey:
    provider = _provider(settings, manifest.provider)
    try:
        wrapped = base64.b64decode(manifest.wrapped_key, validate=True)
        (material,) = provider.unwrap(manifest.key_ref, [WrapItem(wrapped, manifest.backup_id.encode())])
    except (KeyUnusableError, binascii.Error):
        raise StreamError(
            f"{MANIFEST}: the backup key does not unwrap with key '{manifest.key_ref}' of provider "
            f"'{manifest.provider}': the manifest was altered, or the key was destroyed or belongs to another "
            "installation"
        ) from None
    key = BackupKey(manifest.backup_id, material)
    if not key.mac_valid(manifest.body(), mac):
        raise StreamError(f"{MANIFEST}: its MAC does not match: the manifest was altered")
    return key


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _unpacked(
    settings: Settings, path: Path, progress: Progress | None
) -> Iterator[tuple[VerifyReport, dict[str, Path]]]:
    """Check the manifest and every file, decrypt into a private temporary folder and prove each copy
    restores; yields the report and the decrypted copies (removed on exit)."""
    manifest, mac = read_manifest(path)
    key = _unlock(settings, manifest, mac)
    urls = database_urls(settings)
    checks, copies = [], {}
    label = new_id()[-8:]
    with tempfile.TemporaryDirectory(prefix="obhut-verify-") as work:
        for entry in manifest.databases:
            if entry.database == "sensitive" and entry.database not in urls:
                raise BackupError(
                    "this backup holds a sensitive store; set OBHUT_SENSITIVE_URL to where it goes, then try again"
                )
            if Path(entry.file).name != entry.file or entry.database not in urls:
                raise StreamError(f"{MANIFEST}: entry '{entry.database}' is malformed")
            sealed = path / entry.file
            if not sealed.is_file():
                raise BackupError(f"{entry.file}: missing from the backup folder {path}")
            plain = Path(work) / entry.database
            # decrypting first names the chunk that fails; the checksum then covers the file as a whole
            size = key.open_file(
                entry.file, sealed, plain, entry.chunks, _tick(progress, entry.file, entry.plaintext_size)
            )
            if _sha256(sealed) != entry.sha256:
                raise StreamError(
                    f"{entry.file}: its checksum differs from the manifest: the file was altered or truncated"
                )
            if size != entry.plaintext_size:
                raise StreamError(f"{entry.file}: {size} bytes where the manifest says {entry.plaintext_size}")
            inspection = _inspector(entry.kind, urls[entry.database]).inspect(plain, f"{label}_{entry.database}")
            _check_revision(entry, inspection)
            checks.append(DatabaseCheck(entry.database, entry.kind, inspection.revision, inspection.row_counts))
            copies[entry.database] = plain
        yield VerifyReport(path, manifest, tuple(checks)), copies


def _inspector(kind: str, configured_url: str) -> DatabaseEngine:
    """SQLite copies are checked anywhere; a PostgreSQL copy needs the configured PostgreSQL server."""
    if kind == "sqlite":
        return engine_for("sqlite://")
    engine = engine_for(configured_url)
    if engine.kind != kind:
        raise BackupError(
            f"this backup holds {kind} databases but the configured database is {engine.kind}; "
            "verify it where OBHUT_DATABASE_URL and OBHUT_KEYSTORE_URL point at a PostgreSQL server"
        )
    return engine


def _check_revision(entry: DatabaseFile, inspection: Inspection) -> None:
    if inspection.revision != entry.revision:
        raise StreamError(
            f"{entry.file}: restores at alembic revision {inspection.revision} but the manifest says {entry.revision}"
        )


def verify(settings: Settings, path: Path, *, progress: Progress | None = None) -> VerifyReport:
    """Prove the backup at `path` is intact and restores; raises StreamError or BackupError naming the file."""
    with _unpacked(settings, path, progress) as (report, _):
        return report


def restore(
    settings: Settings,
    path: Path,
    *,
    after_restore: AfterRestore | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Verify the backup, then replace both configured databases with it, then call `after_restore`.
    Stop the service and workers first: open connections would see the databases change under them."""
    urls = database_urls(settings)
    with _unpacked(settings, path, progress) as (report, copies):
        targets = {check.database: engine_for(urls[check.database]) for check in report.databases}
        for check in report.databases:
            if targets[check.database].kind != check.kind:
                raise BackupError(
                    f"the backup's {check.database} database is {check.kind} but the configured one is "
                    f"{targets[check.database].kind}; nothing was restored"
                )
        for database, engine in targets.items():
            engine.restore(copies[database])
    replayed = after_restore(settings) if after_restore is not None else None
    return RestoreReport(report, replayed)
