"""The sealed stream of encrypted backups (dashboard/backup.py): AES-256-GCM chunks of any total size.

    header  = MAGIC (7) | version (1) | key source (1) | salt (16) | nonce prefix (4)
    chunk   = final flag (1) | ciphertext length (4, big-endian) | ciphertext (plaintext <= 1 MiB, + 16 tag)

Each file gets its own key, HKDF-SHA256(backup key, salt, "aggregator backup file v1"); chunk i is sealed
with nonce = prefix | i (8 bytes) and associated data = header | i | final flag, so a flipped byte, reordered,
dropped or appended chunks and a file cut short (no final chunk) all fail authentication. The backup key is
dashboard/crypto.py's `backup_key` (HKDF of SECRET_KEY, its own label) or 32 random bytes from `--key-file`.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"AGGBKUP"
VERSION = 1
FORMAT = 1  # the plaintext's layout
CHUNK = 1 << 20
KEY_FROM_SECRET, KEY_FROM_FILE = 0, 1
HEADER_LEN = len(MAGIC) + 1 + 1 + 16 + 4


class BackupError(Exception):
    """A backup or restore that cannot proceed; the message says what to do."""


# ---- keys ------------------------------------------------------------------------------------------------


def read_key_file(path: Path) -> bytes:
    try:
        raw = Path(path).read_text().strip()
    except OSError as exc:
        raise BackupError(f"Cannot read the key file {path}: {exc.strerror}") from None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise BackupError(f"The key file {path} must hold 32 random bytes, base64 (openssl rand -base64 32)")
    return key


def _file_key(key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"aggregator backup file v1").derive(
        key
    )


# ---- the sealed stream -----------------------------------------------------------------------------------


class SealedWriter:
    """Buffers plaintext and writes it out as sealed chunks of CHUNK bytes; close() seals the final one."""

    def __init__(self, out: BinaryIO, key: bytes, key_source: int):
        salt, self.prefix = os.urandom(16), os.urandom(4)
        self.header = MAGIC + bytes([VERSION, key_source]) + salt + self.prefix
        self.aead = AESGCM(_file_key(key, salt))
        self.out, self.buf, self.counter, self.size = out, bytearray(), 0, 0
        out.write(self.header)

    def write(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) > CHUNK:  # keep at least one byte back: the final chunk is never empty by luck
            self._seal(bytes(self.buf[:CHUNK]), final=False)
            del self.buf[:CHUNK]

    def _seal(self, plain: bytes, final: bool) -> None:
        flag = b"\x01" if final else b"\x00"
        counter = struct.pack(">Q", self.counter)
        sealed = self.aead.encrypt(self.prefix + counter, plain, self.header + counter + flag)
        self.out.write(flag + struct.pack(">I", len(sealed)) + sealed)
        self.counter += 1
        self.size += len(plain)

    def close(self) -> None:
        self._seal(bytes(self.buf), final=True)
        self.buf.clear()


def _corrupt(what: str) -> BackupError:
    return BackupError(
        f"The backup failed authentication ({what}): wrong key, or the file is damaged or was tampered with. "
        "Use the SECRET_KEY (or --key-file) of the installation that made it; nothing was restored."
    )


def open_sealed(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """Yields the authenticated plaintext chunks; raises BackupError on any failure, including a file cut
    short or bytes after the final chunk."""
    header = src.read(HEADER_LEN)
    if len(header) < HEADER_LEN or not header.startswith(MAGIC):
        raise BackupError("Not an aggregator backup file (no backup header): check the --in path")
    if header[len(MAGIC)] != VERSION:
        raise BackupError(
            f"Backup format version {header[len(MAGIC)]} is not readable by this version (reads {VERSION})"
        )
    salt, prefix = header[len(MAGIC) + 2 : len(MAGIC) + 18], header[len(MAGIC) + 18 :]
    aead = AESGCM(_file_key(key, salt))
    counter = 0
    while True:
        frame = src.read(5)
        if len(frame) < 5:
            raise _corrupt("the file ends before its final chunk: truncated")
        flag, length = frame[:1], struct.unpack(">I", frame[1:])[0]
        if flag not in (b"\x00", b"\x01") or length > CHUNK + 16:
            raise _corrupt(f"chunk {counter} has a bad frame")
        sealed = src.read(length)
        if len(sealed) < length:
            raise _corrupt("the file ends inside a chunk: truncated")
        nonce_counter = struct.pack(">Q", counter)
        try:
            plain = aead.decrypt(prefix + nonce_counter, sealed, header + nonce_counter + flag)
        except InvalidTag:
            if counter == 0:  # the first chunk: most likely the key
                made = "--key-file" if header[len(MAGIC) + 1] == KEY_FROM_FILE else "SECRET_KEY"
                raise _corrupt(f"chunk 0; the backup was made with a key from {made}") from None
            raise _corrupt(f"chunk {counter}") from None
        yield plain
        counter += 1
        if flag == b"\x01":
            if src.read(1):
                raise _corrupt("bytes after the final chunk")
            return


class PlainReader:
    """readline() and read(n) over the authenticated chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.buf, self.pos = chunks, b"", 0

    def _more(self) -> bool:
        chunk = next(self.chunks, None)
        if chunk is None:
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def readline(self) -> bytes:
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                line, self.pos = self.buf[self.pos : end + 1], end + 1
                return line
            if not self._more():
                line, self.pos = self.buf[self.pos :], len(self.buf)
                return line

    def read(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if self.pos >= len(self.buf) and not self._more():
                break
            piece = self.buf[self.pos : self.pos + n]
            self.pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self._more()
