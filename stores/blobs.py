"""Blob storage for original uploads and derived audio: a local folder or any S3 (MinIO) bucket.

Audio never travels in events, only blob keys (DESIGN), so every stage and the gateway read and
write bytes through the `BlobStore` protocol below; `open_blob_store` picks the implementation
from settings. Keys are server-generated (`tenant/track_id/original`) but are still validated:
no `..` or `.` segments, no empty segments, no absolute paths, no backslashes.

Streams (`put_stream`) are spooled to a file while hashing, in batches of at most
`_WRITE_BATCH` bytes, so memory stays flat whatever the upload size:
- local: a temp file in the target's own folder, fsynced, then atomically renamed over the key;
- S3: an anonymous temp file (gone even if the process is killed), uploaded once complete by
  minio's `put_object`, which switches to multipart above 5 MiB. This costs one extra local
  write but means a failed or cancelled stream never leaves a partial object in the bucket,
  and the size and sha256 are known before the object exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import IO, Protocol, TypeVar
from urllib.parse import urlsplit

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from schemas.settings import Settings

_T = TypeVar("_T")
_WRITE_BATCH = 1 << 20
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


class BlobNotFound(KeyError):  # noqa: N818 - the name other modules were promised
    """No blob is stored under `key`."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class BlobStore(Protocol):
    async def put_file(self, key: str, path: Path) -> int: ...

    async def put_bytes(self, key: str, data: bytes) -> int: ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        """Store the chunks under `key`; return (size, sha256 hex). Nothing is kept on error."""
        ...

    async def get_bytes(self, key: str) -> bytes: ...

    def local_copy(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A filesystem path to the blob's content while the context is open. Do not modify it."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def size(self, key: str) -> int: ...

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to `length` bytes from offset `start` (fewer at the end, b"" past it)."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative slash-separated path, else raise ValueError."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid blob key {key!r}")
    if any(part in {"", ".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix is a key that may end with `/`; the empty prefix (everything) is refused."""
    validate_key(prefix.removesuffix("/"))
    return prefix


def _validate_range(start: int, length: int) -> None:
    if start < 0 or length <= 0:
        raise ValueError(f"invalid range start={start} length={length}")


def _write_batch(file: IO[bytes], digest: hashlib._Hash, batch: list[bytes]) -> None:
    for chunk in batch:
        digest.update(chunk)
        file.write(chunk)


async def spool(chunks: AsyncIterator[bytes], file: IO[bytes]) -> tuple[int, str]:
    """Write and hash the chunks off the event loop, holding at most ~_WRITE_BATCH in memory."""
    digest = hashlib.sha256()
    size = 0
    batch: list[bytes] = []
    batched = 0
    async for chunk in chunks:
        batch.append(chunk)
        batched += len(chunk)
        if batched >= _WRITE_BATCH:
            await asyncio.to_thread(_write_batch, file, digest, batch)
            size += batched
            batch, batched = [], 0
    await asyncio.to_thread(_write_batch, file, digest, batch)
    return size + batched, digest.hexdigest()


class LocalBlobStore:
    """Blobs as files under `root`; writes are temp file + fsync + atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key)
        return path

    @staticmethod
    def _open_temp(path: Path) -> tuple[IO[bytes], Path]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        return os.fdopen(fd, "wb"), Path(tmp)

    @staticmethod
    def _commit(file: IO[bytes], tmp: Path, path: Path) -> None:
        file.flush()
        os.fsync(file.fileno())
        file.close()
        tmp.replace(path)

    @staticmethod
    def _discard(file: IO[bytes], tmp: Path) -> None:
        file.close()
        tmp.unlink(missing_ok=True)

    def _write_atomic(self, key: str, write: Callable[[IO[bytes]], object]) -> int:
        path = self._path(key)
        file, tmp = self._open_temp(path)
        try:
            write(file)
            size = file.tell()
            self._commit(file, tmp, path)
        except BaseException:
            self._discard(file, tmp)
            raise
        return size

    async def put_file(self, key: str, path: Path) -> int:
        def copy(file: IO[bytes]) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, file, _WRITE_BATCH)

        return await asyncio.to_thread(self._write_atomic, key, copy)

    async def put_bytes(self, key: str, data: bytes) -> int:
        return await asyncio.to_thread(self._write_atomic, key, lambda file: file.write(data))

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        path = self._path(key)
        file, tmp = await asyncio.to_thread(self._open_temp, path)
        try:
            result = await spool(chunks, file)
            await asyncio.to_thread(self._commit, file, tmp, path)
        except BaseException:
            self._discard(file, tmp)
            raise
        return result

    async def get_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(lambda: self._file(key).read_bytes())

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        yield await asyncio.to_thread(self._file, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def _delete_prefix(self, prefix: str) -> int:
        """Delete files whose key starts with `prefix`, then the folders that became empty."""
        base = self.root / prefix.rpartition("/")[0]
        deleted = 0
        for folder, dirs, files in os.walk(base, topdown=False):
            here = Path(folder).relative_to(self.root)
            for name in files:
                if (here / name).as_posix().startswith(prefix):
                    (Path(folder) / name).unlink(missing_ok=True)
                    deleted += 1
            for name in dirs:
                if f"{(here / name).as_posix()}/".startswith(prefix):
                    with contextlib.suppress(OSError):
                        (Path(folder) / name).rmdir()
        if base != self.root and f"{base.relative_to(self.root).as_posix()}/".startswith(prefix):
            with contextlib.suppress(OSError):
                base.rmdir()
        return deleted

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, validate_prefix(prefix))

    async def size(self, key: str) -> int:
        return await asyncio.to_thread(lambda: self._file(key).stat().st_size)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        _validate_range(start, length)

        def read() -> bytes:
            with self._file(key).open("rb") as file:
                file.seek(start)
                return file.read(length)

        return await asyncio.to_thread(read)


class S3BlobStore:
    """Blobs as objects in one bucket via the (synchronous) minio client, run in threads.

    The bucket is created on first use if it is missing.
    """

    def __init__(self, client: Minio, bucket: str, spool_dir: Path | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.spool_dir = spool_dir
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if not self._bucket_ready:
                await asyncio.to_thread(self._make_bucket)
                self._bucket_ready = True

    def _make_bucket(self) -> None:
        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:  # another process created it meanwhile
            if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def _call(self, key: str, func: Callable[[], _T]) -> _T:
        """Run a blocking minio call for `key`; a missing object becomes BlobNotFound."""
        validate_key(key)
        await self._ensure_bucket()
        try:
            return await asyncio.to_thread(func)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise BlobNotFound(key) from None
            raise

    async def put_file(self, key: str, path: Path) -> int:
        def upload() -> int:
            size = path.stat().st_size
            self.client.fput_object(self.bucket, key, str(path))
            return size

        return await self._call(key, upload)

    async def put_bytes(self, key: str, data: bytes) -> int:
        await self._call(
            key, lambda: self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))
        )
        return len(data)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        validate_key(key)
        with tempfile.TemporaryFile(dir=self.spool_dir) as spooled:
            size, sha256 = await spool(chunks, spooled)

            def upload() -> None:
                spooled.seek(0)
                self.client.put_object(self.bucket, key, spooled, size)

            await self._call(key, upload)
        return size, sha256

    def _read(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        response = self.client.get_object(self.bucket, key, offset=offset, length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def get_bytes(self, key: str) -> bytes:
        return await self._call(key, lambda: self._read(key))

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self.spool_dir))
        try:
            target = folder / key.rpartition("/")[2]
            await self._call(key, lambda: self.client.fget_object(self.bucket, key, str(target)))
            yield target
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        await self._call(key, lambda: self.client.remove_object(self.bucket, key))

    def _delete_prefix(self, prefix: str) -> int:
        names = [
            obj.object_name
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            if obj.object_name is not None
        ]
        errors = list(self.client.remove_objects(self.bucket, (DeleteObject(n) for n in names)))
        if errors:
            raise OSError(f"could not delete {len(errors)} objects under {prefix!r}: {errors[0]}")
        return len(names)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        await self._ensure_bucket()
        return await asyncio.to_thread(self._delete_prefix, prefix)

    async def size(self, key: str) -> int:
        stat = await self._call(key, lambda: self.client.stat_object(self.bucket, key))
        return stat.size or 0

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        _validate_range(start, length)
        try:
            return await self._call(key, lambda: self._read(key, start, length))
        except S3Error as exc:
            if exc.code == "InvalidRange":  # start is at or past the end
                return b""
            raise


def minio_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """`host:port` for minio and whether to use TLS; a URL's scheme overrides `secure`."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if parsed.path.strip("/") or not parsed.netloc:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}: expected host:port or a base URL")
    return parsed.netloc, (parsed.scheme == "https") if parsed.scheme else secure


def open_blob_store(settings: Settings) -> BlobStore:
    """S3 when `s3_endpoint` is set, else a folder under the data dir."""
    if not settings.s3_endpoint:
        return LocalBlobStore(settings.data_path / "blobs")
    host, secure = minio_endpoint(settings.s3_endpoint, settings.s3_secure)
    client = Minio(
        host,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
        secure=secure,
        region=settings.s3_region or None,
    )
    return S3BlobStore(client, settings.s3_bucket)
