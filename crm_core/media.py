"""Images from phones: checked, cleaned, thumbnailed and stored behind an interface.

Every image goes through :func:`process_image` before it is kept:

- the type is decided by the *content* (Pillow identifies it), never by the file name or
  the client's content type; only JPEG, PNG, WebP and GIF are accepted;
- a size limit (``MAX_IMAGE_BYTES``) and a pixel limit (decompression bombs) apply;
- EXIF (GPS position, phone model, time) is dropped by re-encoding the pixels, after the
  EXIF orientation has been applied so the picture stays upright;
- a thumbnail (``THUMB_SIZE``) is made for lists.

Bytes are kept by a :class:`Storage`; :class:`LocalStorage` (a directory, ``MEDIA_ROOT``) is
the default. An object-storage backend implements the same three methods.
"""
from __future__ import annotations

import hashlib
import io
import os
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import DomainError, NotFound, ValidationFailed
from crm_core.mixins import TimestampMixin


class MediaFile(TimestampMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(24))  # ticket / checkin / work_order / material
    status: Mapped[str] = mapped_column(String(12), default="ready")  # pending (WeChat download queued) / ready / failed
    source: Mapped[str] = mapped_column(String(12), default="upload")  # upload / wechat
    wechat_media_id: Mapped[str | None] = mapped_column(String(128))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    # who uploaded it: an employee, or a WeChat user (openid) for customer uploads
    uploaded_by_employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    uploaded_by_openid: Mapped[str | None] = mapped_column(String(64), index=True)
    ready_at: Mapped[datetime | None]


MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 16_000_000  # 4000×4000: a 12 MP phone photo passes; decoding one stays well under a second
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses bigger images everywhere (WeChat downloads too)
THUMB_SIZE = (320, 320)
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


class ImageTooLarge(DomainError):
    status = 413
    code = "image_too_large"


class Storage(ABC):
    """Where image bytes live. Keys are relative paths such as ``ticket/2026/11/abc.jpg``."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...


class LocalStorage(Storage):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        path = os.path.abspath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep):
            raise ValueError("storage key escapes the media root")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # readers never see half a file

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise NotFound("图片不存在。") from None

    def delete(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass


_storage: Storage | None = None


def configure(storage: Storage) -> None:
    global _storage
    _storage = storage


def storage() -> Storage:
    if _storage is None:
        configure(LocalStorage(os.environ.get("MEDIA_ROOT") or os.path.join(os.getcwd(), "instance", "media")))
    return _storage


@dataclass
class CleanImage:
    data: bytes
    thumb: bytes
    content_type: str
    ext: str
    width: int
    height: int


def process_image(data: bytes) -> CleanImage:
    """Validate and clean an uploaded image; raises a 413/422 error with a Chinese message."""
    if not data:
        raise ValidationFailed("图片为空。", fields={"photo": "empty"})
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(f"图片不能超过 {MAX_IMAGE_BYTES // (1024 * 1024)} MB。", fields={"photo": "too_large"})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            if fmt not in _FORMATS:
                raise ValidationFailed("只支持 JPEG、PNG、WebP 或 GIF 图片。", fields={"photo": "unsupported_type"})
            if probe.width * probe.height > MAX_PIXELS:
                raise ImageTooLarge(f"图片像素过大（上限 {MAX_PIXELS // 1_000_000} 百万像素），请压缩后再上传。",
                                    fields={"photo": "too_many_pixels"})
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if fmt == "JPEG" or img.mode not in ("RGB", "RGBA", "L", "P"):
                img = img.convert("RGB")
            out_fmt = "PNG" if fmt in ("PNG", "GIF") else ("WEBP" if fmt == "WEBP" else "JPEG")
            if out_fmt == "JPEG" and img.mode != "RGB":
                img = img.convert("RGB")
            clean = io.BytesIO()
            img.save(clean, out_fmt, **({"quality": 88} if out_fmt in ("JPEG", "WEBP") else {}))  # no exif= : dropped
            thumb_img = img.copy()
            thumb_img.thumbnail(THUMB_SIZE)
            if thumb_img.mode not in ("RGB", "L"):
                thumb_img = thumb_img.convert("RGB")
            thumb = io.BytesIO()
            thumb_img.save(thumb, "JPEG", quality=80)
            return CleanImage(clean.getvalue(), thumb.getvalue(), {"PNG": "image/png", "WEBP": "image/webp"}.get(out_fmt, "image/jpeg"),
                              {"PNG": "png", "WEBP": "webp"}.get(out_fmt, "jpg"), img.width, img.height)
    except Image.DecompressionBombError:  # far past the pixel cap: refused by Pillow before decoding
        raise ImageTooLarge(f"图片像素过大（上限 {MAX_PIXELS // 1_000_000} 百万像素），请压缩后再上传。",
                            fields={"photo": "too_many_pixels"}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationFailed("文件不是有效的图片。", fields={"photo": "not_an_image"}) from None


def _store(row: MediaFile, image: CleanImage) -> None:
    now = utcnow()
    stem = f"{row.purpose}/{now:%Y/%m}/{uuid.uuid4().hex}"
    storage().put(f"{stem}.{image.ext}", image.data, image.content_type)
    storage().put(f"{stem}.thumb.jpg", image.thumb, "image/jpeg")
    row.storage_key, row.thumb_key = f"{stem}.{image.ext}", f"{stem}.thumb.jpg"
    row.content_type, row.size, row.width, row.height = image.content_type, len(image.data), image.width, image.height
    row.sha256 = hashlib.sha256(image.data).hexdigest()
    row.status, row.ready_at, row.error = "ready", now, None


def save_upload(data: bytes, purpose: str, *, org_id: int | None, employee_id: int | None = None,
                openid: str | None = None) -> MediaFile:
    """A direct upload: cleaned and stored now (nothing is saved when it is refused)."""
    image = process_image(data)
    row = MediaFile(org_id=org_id, purpose=purpose, source="upload", uploaded_by_employee_id=employee_id,
                    uploaded_by_openid=openid)
    _store(row, image)
    db.session.add(row)
    db.session.flush()
    return row


def register_wechat_media(media_id: str, purpose: str, *, org_id: int | None, employee_id: int | None = None,
                          openid: str | None = None) -> MediaFile:
    """A photo uploaded to WeChat by ``wx.uploadImage``: recorded as pending; the caller
    enqueues the download job (WeChat keeps such media for three days)."""
    media_id = (media_id or "").strip()
    if not media_id or len(media_id) > 128:
        raise ValidationFailed("图片标识不正确。", fields={"media_id": "invalid"})
    row = MediaFile(org_id=org_id, purpose=purpose, source="wechat", status="pending", wechat_media_id=media_id,
                    uploaded_by_employee_id=employee_id, uploaded_by_openid=openid)
    db.session.add(row)
    db.session.flush()
    return row


def complete_download(row: MediaFile, data: bytes) -> None:
    """Store the bytes downloaded for a pending WeChat photo (or mark it failed)."""
    try:
        _store(row, process_image(data))
    except DomainError as exc:
        row.status, row.error = "failed", exc.message[:200]


def store_raw(row: MediaFile, data: bytes, content_type: str, ext: str) -> None:
    """Keep bytes as they came (a follower's voice or video message: nothing to re-encode, no thumbnail)."""
    now = utcnow()
    key = f"{row.purpose}/{now:%Y/%m}/{uuid.uuid4().hex}.{ext}"
    storage().put(key, data, content_type)
    row.storage_key, row.thumb_key, row.content_type, row.size = key, None, content_type[:32], len(data)
    row.sha256 = hashlib.sha256(data).hexdigest()
    row.status, row.ready_at, row.error = "ready", now, None


def owned_media(media_id: int, *, org_id: int | None, employee_id: int | None = None,
                openid: str | None = None) -> MediaFile:
    """A media row the caller uploaded themselves (ids of others' photos are refused)."""
    row = db.session.get(MediaFile, media_id)
    if row is None or row.org_id != org_id or (
            (employee_id is not None and row.uploaded_by_employee_id != employee_id)
            or (openid is not None and row.uploaded_by_openid != openid)
            or (employee_id is None and openid is None)):
        raise NotFound("图片不存在。", fields={"photo_id": "unknown"})
    return row


# --- who may see a photo: whoever may see a record that holds it -------------------------------
# Areas register a check per kind of record that holds photos (check-ins, tickets, handling
# records, material covers); media imports none of them.
_holders: list[Callable] = []


def register_holder(check: Callable) -> None:
    """``check(actor, row) -> bool``: True when a record the actor may see holds photo ``row``."""
    _holders.append(check)


def visible_media(actor, media_id: int) -> MediaFile:
    """The photo, when the actor uploaded it or may see a record holding it; 404 otherwise
    (the same answer as a missing id, so ids cannot be probed)."""
    row = db.session.get(MediaFile, media_id)
    if row is not None and row.org_id == actor.org_id:
        if actor.employee_id is not None and row.uploaded_by_employee_id == actor.employee_id:
            return row
        for check in _holders:
            try:
                if check(actor, row):
                    return row
            except DomainError:  # no permission on that kind of record: it does not grant the photo
                continue
    raise NotFound("图片不存在或您无权查看。")


def read(row: MediaFile, thumb: bool = False) -> tuple[bytes, str]:
    if row.status != "ready":
        raise NotFound("图片尚未就绪。")
    if thumb and row.thumb_key:
        return storage().get(row.thumb_key), "image/jpeg"
    return storage().get(row.storage_key), row.content_type or "application/octet-stream"
