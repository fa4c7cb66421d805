"""Photos uploaded by employees' apps (check-ins, handling records): cleaned and stored."""
from __future__ import annotations

from typing import Literal

from flask import Response, g, request
from pydantic import Field

from crm_core import media
from crm_core.errors import ValidationFailed
from crm_core.media import MediaFile
from wxapp.api import bp
from wxapp.openapi import Model, api

PURPOSES = ("checkin", "work_order", "ticket", "material", "signature", "chat_reply")


class MediaOut(Model):
    id: int
    purpose: str
    status: str
    content_type: str | None
    width: int | None
    height: int | None
    size: int | None


def _out(row: MediaFile) -> dict:
    return {"id": row.id, "purpose": row.purpose, "status": row.status, "content_type": row.content_type,
            "width": row.width, "height": row.height, "size": row.size}


@api.operation(bp, "/media", "POST", summary="Upload a photo (multipart: file, purpose)", tags=("media",),
               response=MediaOut, status=201)
def upload_media():
    """The type is checked by content (JPEG, PNG, WebP, GIF), at most 10 MB; EXIF is removed
    and a thumbnail made. Use the answered `id` as `photo_id`."""
    purpose = request.form.get("purpose", "checkin")
    if purpose not in PURPOSES:
        raise ValidationFailed("图片用途不正确。", fields={"purpose": f"one of {', '.join(PURPOSES)}"})
    f = request.files.get("file")
    if f is None:
        raise ValidationFailed("请以 multipart/form-data 上传图片（字段名 file）。", fields={"file": "required"})
    row = media.save_upload(f.read(media.MAX_IMAGE_BYTES + 1), purpose, org_id=g.actor.org_id,
                            employee_id=g.actor.employee_id)
    return _out(row)


class MediaQuery(Model):
    thumb: bool = False
    format: Literal["image"] = Field(default="image")


@api.operation(bp, "/media/<int:media_id>", "GET", summary="A stored photo (or its thumbnail)", tags=("media",),
               query=MediaQuery)
def get_media(media_id: int, query: MediaQuery):
    row = media.visible_media(g.actor, media_id)  # whoever may see the check-in, ticket or record holding it
    data, content_type = media.read(row, thumb=query.thumb)
    resp = Response(data, mimetype=content_type)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    return resp
