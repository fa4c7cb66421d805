"""QR previews (扫描二维码预览) and printable posters, rendered once and cached.

The cache key is everything the image depends on (URL, format, logo, version); its SHA-1 is
the ETag. Rendered bytes live in a small in-process LRU and on disk under the media root, so
a restart or another worker re-reads instead of re-rendering.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict

import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont

_lru: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()
LRU_SIZE = 512
FONT_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                   "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")


def etag_for(*parts) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()


def cached(etag: str, root: str, render) -> bytes:
    """The bytes for ``etag``: memory, then disk, else ``render()`` once and keep them."""
    with _lock:
        data = _lru.get(etag)
        if data is not None:
            _lru.move_to_end(etag)
            return data
    path = os.path.join(root, "qr", etag[:2], etag)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        data = render()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    with _lock:
        _lru[etag] = data
        while len(_lru) > LRU_SIZE:
            _lru.popitem(last=False)
    return data


def _qr(url: str, logo: bool) -> qrcode.QRCode:
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_H if logo else qrcode.constants.ERROR_CORRECT_M,
                      box_size=10, border=2)
    q.add_data(url)
    q.make(fit=True)
    return q


def png(url: str, logo: Image.Image | None = None, size: int | None = None) -> bytes:
    """A PNG; with a logo, high error correction (30 %) and the logo over the centre 20 %."""
    img = _qr(url, logo is not None).make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    if logo is not None:
        side = img.size[0] // 5
        mark = logo.convert("RGBA")
        mark.thumbnail((side, side))
        pad = Image.new("RGB", (mark.size[0] + 8, mark.size[1] + 8), "white")
        img.paste(pad, ((img.size[0] - pad.size[0]) // 2, (img.size[1] - pad.size[1]) // 2))
        img.paste(mark, ((img.size[0] - mark.size[0]) // 2, (img.size[1] - mark.size[1]) // 2), mark)
    if size:
        img = img.resize((size, size), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def svg(url: str) -> bytes:
    buf = io.BytesIO()
    _qr(url, False).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buf)
    return buf.getvalue()


def _font(size: int):
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def poster(title: str, summary: str | None, url: str, cover: Image.Image | None = None) -> bytes:
    """A printable poster (750×1200): cover, title, summary and the QR code, as one PNG."""
    w, h = 750, 1200
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    top = 0
    if cover is not None:
        c = cover.convert("RGB")
        c.thumbnail((w, 420))
        img.paste(c, ((w - c.size[0]) // 2, 0))
        top = c.size[1]
    else:
        draw.rectangle((0, 0, w, 200), fill=(7, 193, 96))
        top = 200
    y = top + 40
    for line in _wrap(draw, title, _font(44), w - 80)[:3]:
        draw.text((40, y), line, font=_font(44), fill=(31, 35, 41))
        y += 58
    for line in _wrap(draw, summary or "", _font(28), w - 80)[:4]:
        draw.text((40, y), line, font=_font(28), fill=(110, 110, 110))
        y += 40
    code = Image.open(io.BytesIO(png(url, size=360)))
    img.paste(code, ((w - 360) // 2, h - 360 - 110))
    draw.text((w // 2, h - 80), "微信扫一扫 查看详情", font=_font(28), fill=(110, 110, 110), anchor="mm")
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _wrap(draw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if draw.textlength(line + ch, font=font) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    if line:
        lines.append(line)
    return lines
