"""全员营销 on the staff phone (/h5/staff/materials): the published library, my link, poster and QR on one page, and
my results — a visitor who came by my phone link and left an intent counts as my reach and my lead."""
from __future__ import annotations

import io
import re

from PIL import Image

from crm_core.db import db
from crm_core.sales.models import Lead
from tests.marketing.test_marketing import demo, material, open_page, staff, viewer  # noqa: F401 (fixture)
from tests.service.test_staff_workbench import staff_phone


def test_a_salesperson_shares_a_material_from_the_phone_and_sees_the_reach_and_the_lead(demo, client):  # noqa: F811
    mk = staff(client)
    published = material(client, mk)
    draft = material(client, mk, title="未发布的草稿", publish=False)
    phone = staff_phone(demo, "oWbShare001", "sales.zhang")
    assert 'id="entry-materials"' in phone.get("/h5/staff/").get_data(as_text=True)
    library = phone.get("/h5/staff/materials").get_data(as_text=True)
    assert f'id="material-{published["id"]}"' in library and "未发布的草稿" not in library
    assert phone.get(f"/h5/staff/materials/{draft['id']}").status_code == 404
    assert "没有找到素材" in phone.get("/h5/staff/materials?q=不存在的标题").get_data(as_text=True)

    page = phone.get(f"/h5/staff/materials/{published['id']}").get_data(as_text=True)
    link = re.search(r'id="my-link" value="([^"]+)"', page).group(1)
    token = re.search(r"\?s=([A-Za-z0-9_-]+)", link).group(1)
    assert link.startswith(f"http://localhost/m/{published['code']}?s=")
    poster = re.search(r'id="poster" src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert token in poster
    img = client.get(poster)
    assert img.status_code == 200 and img.mimetype == "image/png" and Image.open(io.BytesIO(img.data)).size[1] > 400
    qr = re.search(r'id="qr" src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert token in qr  # the QR carries my share token: a scan counts as my share
    code = client.get(qr)
    assert code.status_code == 200 and code.mimetype in ("image/png", "image/svg+xml") and len(code.data) > 200
    # the same link again: the same token (what it brings stays mine)
    again = phone.get(f"/h5/staff/materials/{published['id']}").get_data(as_text=True)
    assert f"?s={token}" in again

    visitor = viewer(demo, "oShareVisit1")
    open_page(visitor, link.split("localhost", 1)[1])
    r = visitor.post(f"/m/{published['code']}/intents", json={"name": "钱女士", "phone": "13822223333"})
    assert r.status_code == 201, r.get_json()
    lead = db.session.get(Lead, r.get_json()["lead_id"])
    assert lead.attribution["first_touch"]["employee_id"]
    results = phone.get("/h5/staff/materials").get_data(as_text=True)
    totals = results.split('id="my-results"')[1].split("</div>\n</div>")[0]
    assert re.search(r"<b>1</b><span>触达人数", totals) and re.search(r"<b>1</b><span>获得线索", totals)
    assert "本周营销达人第 1 名" in results
    assert "触达 1 人 · 线索 1 条" in phone.get(f"/h5/staff/materials/{published['id']}").get_data(as_text=True)
