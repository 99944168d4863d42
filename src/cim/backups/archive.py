"""The backup file: a tar stream (database dump, uploaded files, manifest), compressed with zstandard and encrypted
with AES-256-GCM in 1 MiB chunks.

Layout: MAGIC, a 4-byte header length, the JSON header (format, key id, compression, nonce prefix), then chunks of
[4-byte length | ciphertext with its 16-byte tag]. The top bit of a chunk's length marks the last chunk. Every
chunk's nonce is the file's random 8-byte prefix plus the chunk counter, and its associated data is the header, the
counter and the last-chunk flag: a changed, reordered, dropped or truncated chunk fails authentication.

zstandard rather than gzip or lzma: at level 3 it compresses several hundred MB/s and decompresses over 1 GB/s on
one core, where gzip does tens and lzma a few; a restore is bounded by its speed.
"""

import hashlib
import io
import json
import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from cim.config.secrets import load_or_create

MAGIC = b"CIMBAK1\n"
CHUNK = 1 << 20
LAST = 0x80000000
KEY_FILE = "backup_key"


class BackupFileError(Exception):
    """The file is not a CIM backup, was made with another key, or was changed after it was written."""


def backup_key_present() -> bool:
    return bool(os.environ.get("CIM_BACKUP_KEY")) or (Path(settings.DATA_DIR) / KEY_FILE).exists()


def backup_key() -> tuple[bytes, str]:
    """(AES-256 key, key id) from CIM_BACKUP_KEY, else from the key file generated once into the data dir."""
    secret = load_or_create(Path(settings.DATA_DIR), "CIM_BACKUP_KEY", KEY_FILE)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cim backup v1").derive(secret.encode())
    return key, hashlib.sha256(b"cim backup key id\0" + key).hexdigest()[:16]


class EncryptingWriter(io.RawIOBase):
    """A write-only file: what is written is encrypted chunk by chunk into `raw`; sha256 and size of the output."""

    def __init__(self, raw, *, key: bytes, key_id: str, compression: str = "zstd"):
        self.raw, self.aead = raw, AESGCM(key)
        self.prefix = secrets.token_bytes(8)
        header = {"format": 1, "cipher": "AES-256-GCM", "compression": compression, "chunk": CHUNK}
        header.update(key_id=key_id, nonce_prefix=self.prefix.hex())
        self.header = json.dumps(header, sort_keys=True).encode()
        self.digest, self.size = hashlib.sha256(), 0
        self.buffer, self.counter = bytearray(), 0
        self._out(MAGIC + struct.pack(">I", len(self.header)) + self.header)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        while len(self.buffer) > CHUNK:  # keep at least one byte back: the last chunk must not be empty unless all is
            self._chunk(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._chunk(bytes(self.buffer), last=True)
            self.buffer.clear()
        super().close()

    def _chunk(self, plain: bytes, *, last: bool) -> None:
        flag = b"\x01" if last else b"\x00"
        nonce = self.prefix + struct.pack(">I", self.counter)
        sealed = self.aead.encrypt(nonce, plain, self.header + struct.pack(">Q", self.counter) + flag)
        self._out(struct.pack(">I", len(sealed) | (LAST if last else 0)) + sealed)
        self.counter += 1

    def _out(self, data: bytes) -> None:
        self.raw.write(data)
        self.digest.update(data)
        self.size += len(data)


class DecryptingReader(io.RawIOBase):
    """A read-only file over an encrypted backup: the plaintext, authenticated chunk by chunk."""

    def __init__(self, raw, *, keys: dict[str, bytes]):
        self.raw = raw
        if raw.read(len(MAGIC)) != MAGIC:
            raise BackupFileError("not a CIM backup file")
        (length,) = struct.unpack(">I", self._exactly(4))
        self.header = self._exactly(length)
        meta = json.loads(self.header)
        self.key_id = meta["key_id"]
        if meta.get("format") != 1 or meta.get("compression") != "zstd":
            raise BackupFileError(f"unknown backup format {meta.get('format')}/{meta.get('compression')}")
        if self.key_id not in keys:
            raise BackupFileError(
                f"encrypted with key {self.key_id}; the configured key is {', '.join(keys)} (set CIM_BACKUP_KEY)"
            )
        self.aead = AESGCM(keys[self.key_id])
        self.prefix = bytes.fromhex(meta["nonce_prefix"])
        self.pending, self.counter, self.done = memoryview(b""), 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self.pending and not self.done:
            self.pending = memoryview(self._next_chunk())  # sliced without copying as it is read
        count = min(len(target), len(self.pending))
        target[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def _next_chunk(self) -> bytes:
        head = self.raw.read(4)
        if len(head) < 4:
            raise BackupFileError("the file ends before its last chunk (truncated)")
        (length,) = struct.unpack(">I", head)
        last = bool(length & LAST)
        sealed = self._exactly(length & ~LAST)
        nonce = self.prefix + struct.pack(">I", self.counter)
        aad = self.header + struct.pack(">Q", self.counter) + (b"\x01" if last else b"\x00")
        try:
            plain = self.aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise BackupFileError(f"chunk {self.counter} fails authentication: the file was changed") from None
        self.counter += 1
        if last:
            if self.raw.read(1):
                raise BackupFileError("data after the last chunk: the file was changed")
            self.done = True
        return plain

    def _exactly(self, count: int) -> bytes:
        data = self.raw.read(count)
        if len(data) != count:
            raise BackupFileError("the file ends in the middle of a chunk (truncated)")
        return data


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
