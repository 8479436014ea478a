"""Chunked stream encryption (backups): a round trip, and every way a file can be changed fails by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from obhut.vault.streams import MAGIC, BackupKey, StreamError

CHUNK = 64
NAME = "main.db.enc"
RECORD = 4 + 1 + 12 + CHUNK + 16  # length, format byte, nonce, chunk, tag


@pytest.fixture
def key() -> BackupKey:
    return BackupKey.new("backup-1")


def _seal(key: BackupKey, tmp_path: Path, plaintext: bytes, name: str = NAME) -> tuple[Path, int]:
    source, target = tmp_path / "plain", tmp_path / "sealed"
    source.write_bytes(plaintext)
    sealed = key.seal_file(name, source, target, chunk_bytes=CHUNK)
    assert sealed.plaintext_size == len(plaintext)
    return target, sealed.chunks


def _open(key: BackupKey, sealed: Path, chunks: int, name: str = NAME) -> bytes:
    out = sealed.with_name("opened")
    out.unlink(missing_ok=True)
    key.open_file(name, sealed, out, chunks)
    return out.read_bytes()


class TestRoundTrip:
    @pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK * 3 + 5])
    def test_sizes(self, key: BackupKey, tmp_path: Path, size: int) -> None:
        plaintext = os.urandom(size)
        sealed, chunks = _seal(key, tmp_path, plaintext)
        assert chunks == max(1, -(-size // CHUNK))
        assert _open(key, sealed, chunks) == plaintext

    def test_the_key_material_rewraps(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"x" * 200)
        again = BackupKey(key.backup_id, key.material)
        assert _open(again, sealed, chunks) == b"x" * 200
        assert "material" not in repr(key)


class TestTampering:
    def test_a_flipped_byte_names_the_chunk(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"a" * CHUNK * 3)
        data = bytearray(sealed.read_bytes())
        data[len(MAGIC) + RECORD + 30] ^= 1
        sealed.write_bytes(bytes(data))
        with pytest.raises(StreamError, match=r"main\.db\.enc: chunk 2 does not authenticate"):
            _open(key, sealed, chunks)

    def test_cut_at_a_chunk_boundary(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"a" * CHUNK * 3)
        sealed.write_bytes(sealed.read_bytes()[: len(MAGIC) + 2 * RECORD])
        with pytest.raises(StreamError, match=r"main\.db\.enc: chunk 2 does not authenticate"):
            _open(key, sealed, chunks)

    def test_cut_inside_a_chunk(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"a" * CHUNK * 3)
        sealed.write_bytes(sealed.read_bytes()[:-10])
        with pytest.raises(StreamError, match=r"main\.db\.enc: chunk 3 is incomplete"):
            _open(key, sealed, chunks)

    def test_reordered_chunks(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, os.urandom(CHUNK * 3))
        data = sealed.read_bytes()
        first, second = data[len(MAGIC) : len(MAGIC) + RECORD], data[len(MAGIC) + RECORD : len(MAGIC) + 2 * RECORD]
        sealed.write_bytes(MAGIC + second + first + data[len(MAGIC) + 2 * RECORD :])
        with pytest.raises(StreamError, match="chunk 1 does not authenticate"):
            _open(key, sealed, chunks)

    def test_another_files_name(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"a" * 10, name="keystore.db.enc")
        with pytest.raises(StreamError, match=r"main\.db\.enc: chunk 1 does not authenticate"):
            _open(key, sealed, chunks)

    def test_another_backups_key_or_id(self, key: BackupKey, tmp_path: Path) -> None:
        sealed, chunks = _seal(key, tmp_path, b"a" * 10)
        with pytest.raises(StreamError, match="does not authenticate"):
            _open(BackupKey("backup-2", key.material), sealed, chunks)
        with pytest.raises(StreamError, match="does not authenticate"):
            _open(BackupKey.new(key.backup_id), sealed, chunks)

    def test_not_a_backup_file(self, key: BackupKey, tmp_path: Path) -> None:
        sealed = tmp_path / "sealed"
        sealed.write_bytes(b"SQLite format 3\x00")
        with pytest.raises(StreamError, match="not an Obhut backup file"):
            _open(key, sealed, 1)


class TestManifestMac:
    def test_a_changed_message_fails(self, key: BackupKey) -> None:
        mac = key.mac(b'{"a":1}')
        assert key.mac_valid(b'{"a":1}', mac)
        assert not key.mac_valid(b'{"a":2}', mac)
        assert not BackupKey.new(key.backup_id).mac_valid(b'{"a":1}', mac)
