"""Excel imports: the template, the dry run that names every row's fate and writes nothing, the import
as a job with progress and a result file, bad files refused whole, and a crashed job that resumes."""
from __future__ import annotations

import dataclasses
import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from crm_core import imports as svc
from crm_core.customers.models import Contact, Customer, Product, ProductArchive
from crm_core.db import db
from crm_core.org.models import Employee
from crm_core.sales.models import Lead
from tests.factories import make_customer, make_team

CUSTOMER_HEADERS = ["客户名称*", "类型", "电话", "负责人", "标签", "联系人姓名", "联系人电话"]


@pytest.fixture
def team(app):
    users = make_team()
    db.session.commit()
    return users


def xlsx(headers, rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r in rows:
        ws.append(r)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text someone typed that looks like a formula (as a sheet exported from elsewhere has)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def upload(client, h, kind, data: bytes, dry: bool = False, name: str = "客户.xlsx"):
    return client.post(f"/api/v1/imports/{kind}{'?dry_run=1' if dry else ''}", headers=h,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def saved_by(client, h, name: str) -> None:
    """A customer registered as a person would (so the collision index knows it)."""
    assert client.post("/api/v1/customers", json={"name": name}, headers=h).status_code == 201


def customers_named(*names) -> list[Customer]:
    return list(db.session.scalars(select(Customer).where(Customer.name.in_(names)).order_by(Customer.id)))


def test_the_template_has_the_chinese_headers_with_required_ones_marked_and_a_sheet_that_explains(team, client, auth_headers):
    resp = client.get("/api/v1/imports/customers/template", headers=auth_headers(team["rep1"]))
    assert resp.status_code == 200 and resp.mimetype == svc.XLSX
    assert "filename*=UTF-8''" in resp.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(resp.data))
    headers = [c.value for c in wb.worksheets[0][1]]
    assert headers[:3] == ["客户名称*", "类型", "电话"] and "负责人" in headers and "联系人姓名" in headers
    assert "企业、公司、个人" in wb.worksheets[0]["B1"].comment.text
    notes = {r[0]: r[2] for r in wb["填写说明"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert "工号" in notes["负责人"] and "2026-03-15" in load_workbook(io.BytesIO(client.get(
        "/api/v1/imports/contacts/template", headers=auth_headers(team["rep1"])).data))["填写说明"]["C8"].value
    assert client.get("/api/v1/imports/orders/template", headers=auth_headers(team["rep1"])).status_code == 404
    # a salesperson does not set up the company
    assert client.get("/api/v1/imports/employees/template", headers=auth_headers(team["rep1"])).status_code == 403


def test_a_dry_run_names_each_rows_fate_and_writes_nothing(team, client, auth_headers):
    saved_by(client, auth_headers(team["rep2"]), "宁波已有贸易有限公司")
    before = db.session.scalar(select(func.count(Customer.id)))
    data = xlsx(CUSTOMER_HEADERS, [
        ["杭州新湖净水有限公司", "企业", "13800000001", None, "VIP，净水", "陈经理", "13900000001"],   # 2 new
        ["宁波已有贸易有限公司", None, None, None, None, None, None],                               # 3 collides (saved)
        ["绍兴另一家公司", None, "138-0000-0001", None, None, None, None],                           # 4 same phone as row 2
        [None, None, "13800000009", None, None, None, None],                                       # 5 no name
        ["温州某某公司", "集团", None, None, None, None, None],                                      # 6 bad kind
        ["嘉兴某某公司", None, None, "王五", None, None, None],                                      # 7 unknown owner
        [None, None, None, None, None, None, None],                                               # blank: skipped
        ["湖州个人客户", "个人", 13800000002, "员工rep1", None, None, None],                         # 9 new (phone as number)
    ])
    resp = upload(client, auth_headers(team["rep1"]), "customers", data, dry=True)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    rows = {r["row"]: r for r in body["rows"]}
    assert body["total"] == 7, body["rows"]
    assert body["summary"] == {"new": 2, "collision": 2, "error": 3}
    assert rows[2]["status"] == "new" and rows[9]["status"] == "new"
    # rep1 cannot see rep2's customer: the owner is named, the name masked
    assert rows[3]["status"] == "collision" and "员工rep2" in rows[3]["message"] and "宁波已有贸易有限公司" not in rows[3]["message"]
    assert rows[4] == {"row": 4, "status": "collision", "message": "与文件第 2 行重复"}
    assert rows[5]["status"] == "error" and "「客户名称」必填" in rows[5]["message"]
    assert rows[6]["status"] == "error" and "企业、公司、个人" in rows[6]["message"]
    assert rows[7]["status"] == "error" and "王五" in rows[7]["message"]
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Customer.id))) == before


def test_the_import_runs_as_a_job_with_progress_and_a_result_file(team, client, auth_headers):
    saved_by(client, auth_headers(team["rep2"]), "宁波已有贸易有限公司")
    h = auth_headers(team["rep1"])
    data = xlsx(CUSTOMER_HEADERS + ["无关的列"], [
        ["杭州新湖净水有限公司", "企业", "13800000001", None, "VIP，净水", "陈经理", "13900000001", "x"],
        ["宁波已有贸易有限公司", None, None, None, None, None, None, "x"],
        ["绍兴另一家公司", None, "13800000001", None, None, None, None, "x"],
        ["湖州个人客户", "个人", "13800000002", None, None, None, None, "x"],
        ["温州某某公司", "集团", None, None, None, None, None, '=HYPERLINK("http://evil/","点此")'],
    ])
    resp = upload(client, h, "customers", data)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    job = client.get(f"/api/v1/jobs/{job_id}", headers=h).get_json()
    assert job["status"] == "done" and job["progress"] == 100 and job["total"] == 5
    assert job["result"]["created"] == 2 and job["result"]["collisions"] == 2 and job["result"]["errors"] == 1
    db.session.expire_all()
    made = customers_named("杭州新湖净水有限公司", "湖州个人客户")
    assert [c.owner_id for c in made] == [team["rep1"].employee_id] * 2 and made[0].source == "import"
    assert made[0].tags == ["VIP", "净水"] and made[1].kind == "person" and made[0].value_level is not None
    assert db.session.scalars(select(Contact.name).where(Contact.customer_id == made[0].id)).all() == ["陈经理"]
    assert len(customers_named("绍兴另一家公司")) == 0 and len(customers_named("宁波已有贸易有限公司")) == 1

    result = client.get(job["result"]["result_file"], headers=h)
    assert result.status_code == 200
    sheet = list(load_workbook(io.BytesIO(result.data)).active.iter_rows(values_only=True))
    assert sheet[0][:3] == ("导入结果", "说明", "客户名称*") and sheet[0][-1] == "无关的列"
    assert [r[0] for r in sheet[1:]] == ["已导入", "撞单未导入", "撞单未导入", "已导入", "有误未导入"]
    assert "员工rep2" in sheet[2][1] and "集团" in sheet[5][1]
    assert sheet[5][-1] == '\'=HYPERLINK("http://evil/","点此")'  # what was typed comes back as text, not a formula
    # nobody else follows rep1's import; the administrator does
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth_headers(team["rep2"])).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth_headers(team["admin"])).status_code == 200


@pytest.mark.parametrize("payload, fragment", [
    (b"PK\x03\x04 not really a zip", "不是有效的 Excel"),
    ("客户名称,电话\n甲,1\n".encode(), "不是有效的 Excel"),
    (xlsx(["电话", "地址"], [["1", "2"]]), "缺少必填列：客户名称"),
    (xlsx(["客户名称"], []), "没有数据"),
])
def test_a_file_that_cannot_be_read_is_refused_whole_with_the_reason(team, client, auth_headers, payload, fragment):
    for dry in (True, False):
        resp = upload(client, auth_headers(team["rep1"]), "customers", payload, dry=dry)
        assert resp.status_code == 422 and fragment in resp.get_json()["error"]["message"], resp.get_json()
    assert client.post("/api/v1/imports/customers?dry_run=1", headers=auth_headers(team["rep1"])).status_code == 422
    db.session.expire_all()
    assert db.session.scalar(select(func.count(svc.ImportJob.id))) == 0


def test_employees_contacts_leads_and_product_archives_import_through_their_own_checks(team, client, auth_headers):
    admin = auth_headers(team["admin"])
    people = xlsx(["姓名*", "手机", "岗位*", "企业微信账号"], [
        ["新销售甲", "13700000001", "销售员", None],      # two positions are named 销售员 (R1 and R2)
        ["新销售乙", "13700000002", "R1", "xiaoyi"],
        ["新销售丙", "13700000002", "R2", None],          # phone of the row above
        ["新销售丁", None, "不存在的岗位", None],
        ["新销售戊", None, "R2，MGR", "bad id!"],
    ])
    dry = {r["row"]: r for r in upload(client, admin, "employees", people, dry=True).get_json()["rows"]}
    assert dry[2]["status"] == "error" and "请填写岗位编码" in dry[2]["message"]
    assert dry[3]["status"] == "new" and dry[4] == {"row": 4, "status": "collision", "message": "与文件第 3 行重复"}
    assert "不存在的岗位" in dry[5]["message"] and "企业微信账号" in dry[6]["message"]
    job = client.get(f"/api/v1/jobs/{upload(client, admin, 'employees', people).get_json()['job_id']}", headers=admin).get_json()
    assert job["result"]["created"] == 1 and job["result"]["collisions"] == 1 and job["result"]["errors"] == 3, job
    db.session.expire_all()
    yi = db.session.scalars(select(Employee).where(Employee.name == "新销售乙")).one()
    assert yi.wecom_userid == "xiaoyi" and yi.code.startswith("E")

    rep1 = auth_headers(team["rep1"])
    mine = make_customer(team["rep1"], "我的客户")
    make_customer(team["rep2"], "别人的客户")
    db.session.add(Product(org_id=mine.org_id, code="RO-100", name="RO 净水器", warranty_months=12))
    db.session.commit()
    contacts = xlsx(["客户名称*", "姓名*", "电话", "性别", "生日"], [
        ["我的客户", "王工", "13600000001", "男", "1985/6/1"],
        ["别人的客户", "李工", None, None, None],
        ["我的客户", "赵工", None, "未知", None],
        ["我的客户", "钱工", None, None, "去年"],
    ])
    job = client.get(f"/api/v1/jobs/{upload(client, rep1, 'contacts', contacts).get_json()['job_id']}", headers=rep1).get_json()
    assert (job["result"]["created"], job["result"]["errors"]) == (1, 3)
    db.session.expire_all()
    wang = db.session.scalars(select(Contact).where(Contact.name == "王工")).one()
    assert wang.customer_id == mine.id and wang.gender == "male" and wang.birthday.isoformat() == "1985-06-01"

    leads = xlsx(["姓名*", "公司", "电话", "来源"], [["孙先生", "某展会公司", "13500000001", "展会"], ["周女士", None, None, "地推"]])
    dry = upload(client, rep1, "leads", leads, dry=True).get_json()
    assert dry["summary"] == {"new": 1, "collision": 0, "error": 1} and "展会" in dry["rows"][1]["message"]
    upload(client, rep1, "leads", leads)
    db.session.expire_all()
    assert db.session.scalars(select(Lead.source).where(Lead.name == "孙先生")).one() == "exhibition"

    archives = xlsx(["序列号*", "产品*", "客户名称*", "购买日期*", "保修月数"], [
        ["SN-0001", "RO-100", "我的客户", "2026-03-15", None],
        ["SN-0001", "RO 净水器", "我的客户", "2026-03-15", 24],
        ["SN-0002", "RO-100", "我的客户", "2026-02-30", None],
        ["SN-0003", "RO-100", "我的客户", "2026-03-01", 999],
    ])
    dry = {r["row"]: r for r in upload(client, admin, "product-archives", archives, dry=True).get_json()["rows"]}
    assert dry[2]["status"] == "new" and dry[3]["message"] == "与文件第 2 行重复"
    assert "不是日期" in dry[4]["message"] and "0–240" in dry[5]["message"]
    upload(client, admin, "product-archives", archives)
    db.session.expire_all()
    archive = db.session.scalars(select(ProductArchive).where(ProductArchive.serial_no == "SN-0001")).one()
    assert archive.customer_id == mine.id and archive.warranty_until.isoformat() == "2027-03-15"


def test_a_job_that_crashed_resumes_after_its_last_committed_batch(team, monkeypatch):
    from crm_core.org.permissions import load_actor

    actor = load_actor(team["rep1"])
    data = xlsx(["客户名称"], [[f"续跑客户{i}"] for i in range(5)])
    job = svc.start(actor, "customers", data, "续跑.xlsx", draft=True)
    job.status = "queued"
    db.session.commit()
    monkeypatch.setattr(svc, "BATCH", 2)
    real = svc.KINDS["customers"]

    def crash_on_the_fourth(ctx, values):
        if values["name"] == "续跑客户3":
            raise RuntimeError("the worker died")
        return real.prepare(ctx, values)

    monkeypatch.setitem(svc.KINDS, "customers", dataclasses.replace(real, prepare=crash_on_the_fourth))
    with pytest.raises(RuntimeError):
        svc.run_import(job.id)
    db.session.rollback()
    job = db.session.get(svc.ImportJob, job.id)
    assert job.status == "running" and job.processed == 2
    monkeypatch.setitem(svc.KINDS, "customers", real)
    svc.run_import(job.id)  # the retry
    svc.run_import(job.id)  # and a stray second delivery does nothing
    names = [c.name for c in db.session.scalars(select(Customer).where(Customer.name.like("续跑客户%")))]
    assert sorted(names) == [f"续跑客户{i}" for i in range(5)]
    assert db.session.get(svc.ImportJob, job.id).status == "done"
    # the batch the crash broke left nothing behind (on SQLite too: its savepoints do not commit), so the
    # retry saved each row once, as new — none collides with a copy of itself
    statuses = db.session.scalars(select(svc.ImportRow.status).where(svc.ImportRow.import_id == job.id)).all()
    assert statuses == ["new"] * 5
