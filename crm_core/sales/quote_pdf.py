"""The quote as a Chinese PDF (报价单) with the company header, drawn with ReportLab.

The font: the TrueType (or TrueType collection) file named by ``WXCRM_PDF_FONT`` when set, else
the first CJK font Debian puts in the usual places (``fonts-wqy-zenhei``, ``fonts-noto-cjk``);
its glyphs are embedded as a subset, so the PDF reads the same on any phone. Without one,
ReportLab's built-in ``STSong-Light`` CID font is used (nothing embedded: the viewer supplies
the glyphs — every Chinese-capable viewer does).
"""
from __future__ import annotations

import io
import os
from functools import lru_cache

from crm_core.sales import money

CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
              "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/arphic/uming.ttc")


@lru_cache(maxsize=1)
def font_name() -> str:
    """Register the PDF font once per process and return its name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    for path in filter(None, (os.environ.get("WXCRM_PDF_FONT"), *CANDIDATES)):
        if os.path.exists(path):
            try:
                pdfmetrics.registerFont(TTFont("WxcrmCJK", path, subfontIndex=0))
                return "WxcrmCJK"
            except Exception:  # not a TrueType outline font ReportLab can embed: try the next
                continue
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _yuan(value) -> str:
    return f"¥{money.money(value):,.2f}"


def render(quote, company: str, customer: str, owner: str | None, issued_on: str) -> bytes:
    """The PDF bytes of ``quote`` (a :class:`~crm_core.sales.models.Quote` with its lines)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = font_name()
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=14)
    title = ParagraphStyle("title", parent=base, fontSize=18, leading=24, alignment=1)
    head = ParagraphStyle("head", parent=base, fontSize=12, leading=16, alignment=1)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
                            title=f"报价单 {quote.number}", author=company, subject=customer)
    version = f"（第 {quote.version} 版）" if quote.version > 1 else ""
    story = [Paragraph(_escape(company), head), Spacer(1, 2 * mm), Paragraph("报 价 单", title), Spacer(1, 4 * mm)]
    info = [[f"报价单号：{quote.number}{version}", f"报价日期：{issued_on}"],  # Table cells are plain text: no markup
            [f"客户：{customer}", f"有效期至：{quote.valid_until.isoformat()}"],
            [f"报价人：{owner or '—'}", "币种：人民币（元）"]]
    t = Table(info, colWidths=[100 * mm, 80 * mm])
    t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 9.5)]))
    story += [t, Spacer(1, 4 * mm)]
    rows = [["序号", "产品", "数量", "单价", "折扣", "不含税金额", "税率", "税额", "价税合计"]]
    for ln in quote.lines:
        rows.append([str(ln.seq), Paragraph(_escape(ln.name), base), f"{ln.quantity.normalize():f}", _yuan(ln.unit_price),
                     f"{ln.discount_pct.normalize():f}%" if ln.discount_pct else "—", _yuan(ln.gross - ln.discount),
                     f"{ln.tax_rate.normalize():f}%", _yuan(ln.tax), _yuan(ln.total)])
    rows += [["", "合计", "", "", _yuan(quote.discount), _yuan(quote.subtotal - quote.discount), "", _yuan(quote.tax),
              _yuan(quote.total)]]
    widths = [10 * mm, 46 * mm, 14 * mm, 20 * mm, 16 * mm, 22 * mm, 12 * mm, 18 * mm, 22 * mm]
    lines = Table(rows, colWidths=widths, repeatRows=1)
    lines.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef3f8")), ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa7b4")),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f7f7f7"))]))
    story += [lines, Spacer(1, 4 * mm),
              Paragraph(f"价税合计（大写）：{upper_yuan(quote.total)}　（小写）{_yuan(quote.total)}", base), Spacer(1, 2 * mm),
              Paragraph(f"以上价格不含税金额合计 {_yuan(quote.subtotal - quote.discount)}，增值税 {_yuan(quote.tax)}。"
                        f"本报价有效期至 {quote.valid_until.isoformat()}，逾期请重新询价。", base)]
    if quote.note:
        story += [Spacer(1, 2 * mm), Paragraph(f"备注：{_escape(quote.note)}", base)]
    doc.build(story)
    return buf.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万亿")


def upper_yuan(value) -> str:
    """An amount in capital Chinese numerals as cheques and invoices write it (人民币大写):
    1305.98 → 壹仟叁佰零伍元玖角捌分, 100 → 壹佰元整."""
    amount = money.money(value)
    if amount < 0:
        return "负" + upper_yuan(-amount)
    fen_total = int(amount * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    out = ""
    if yuan:
        groups, g = [], 0
        while yuan:
            groups.append((yuan % 10000, g))
            yuan //= 10000
            g += 1
        zero_pending = False
        for part, g in reversed(groups):
            if part == 0:
                zero_pending = bool(out)
                continue
            text, zero = "", False
            for i in range(3, -1, -1):
                d = part // 10 ** i % 10
                if d == 0:
                    zero = bool(text) or bool(out)
                    continue
                if zero or (zero_pending and not text):
                    text += "零"
                text += _DIGITS[d] + _UNITS[i]
                zero = zero_pending = False
            out += text + _GROUPS[g]
        out += "元"
    if not jiao and not fen:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif out:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    return out
