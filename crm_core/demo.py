"""The demo organisation (``wxcrm demo``): a Hangzhou company with sales, service and
marketing departments, a three-level reporting line, customers with contacts, products.

Idempotent: every record is looked up by its code before it is created, so re-running it
refreshes the demo instead of duplicating it.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_core import geo
from crm_core.context import acting_as
from crm_core.customers import collision
from crm_core.customers.models import Contact, Customer, Product
from crm_core.db import db
from crm_core.org.organization import (
    create_user,
    ensure_builtin_roles,
    get_or_create_organization,
    upsert_department,
    upsert_employee,
    upsert_position,
)
from crm_core.org.permissions import Actor

DEMO_PASSWORD = "demo123456"

# login, name, role, position code, employee code, phone
DEMO_LOGINS = [
    ("admin", "周敏", "admin", "IT_ADMIN", "E001", "13800000001", "系统管理员，所有功能，全组织数据"),
    ("sales.manager", "孙立", "sales_manager", "SALES_MGR", "E101", "13800000101", "销售经理，看到下属的数据"),
    ("sales.zhang", "张伟", "salesperson", "SALES_REP_1", "E102", "13800000102", "销售员，数据权限：本人"),
    ("sales.li", "李娜", "salesperson", "SALES_REP_2", "E103", "13800000103", "销售员，数据权限：本人"),
    ("service.dispatcher", "吴静", "dispatcher", "SVC_DISPATCH", "E201", "13800000201", "服务调度"),
    ("service.engineer", "郑强", "engineer", "SVC_ENG_1", "E202", "13800000202", "服务工程师"),
    ("service.engineer2", "赵磊", "engineer", "SVC_ENG_2", "E203", "13800000203", "服务工程师（转派、协作）"),
    ("marketing.wang", "王芳", "marketer", "MKT_SPEC", "E301", "13800000301", "市场专员"),
]

CUSTOMERS = [
    # name, phone, address, lat, lng (WGS-84), owner login, contacts
    ("杭州西湖茶业有限公司", "0571-87001234", "杭州市西湖区龙井路 18 号", 30.2270, 120.1230, "sales.zhang",
     [("陈建国", "13905710001", "总经理"), ("林晓", "13905710002", "采购主管")]),
    ("杭州滨江智造科技有限公司", "0571-86002345", "杭州市滨江区网商路 599 号", 30.1930, 120.1900, "sales.zhang",
     [("黄磊", "13905710003", "设备部经理")]),
    ("浙江钱塘物流股份有限公司", "0571-85003456", "杭州市钱塘区 12 号大街 288 号", 30.2950, 120.3650, "sales.li",
     [("徐丽", "13905710004", "行政经理"), ("何斌", "13905710005", "IT 主管")]),
    ("杭州拱墅区仁和社区卫生服务中心", "0571-88004567", "杭州市拱墅区莫干山路 1418 号", 30.3240, 120.1400, "sales.li",
     [("马医生", "13905710006", "院办主任")]),
    ("杭州余杭未来酒店管理有限公司", "0571-89005678", "杭州市余杭区文一西路 969 号", 30.2790, 120.0170, "sales.zhang",
     [("周洁", "13905710007", "工程部经理")]),
    ("杭州上城湖滨餐饮有限公司", "0571-87006789", "杭州市上城区平海路 60 号", 30.2580, 120.1650, "sales.li",
     [("郭涛", "13905710008", "店长")]),
]

# spare parts on hand (配件库存): what engineers use on site; a part missing here is requested and waited for
SPARE_PARTS = [
    ("LY-WP-100", "净水器 WP100 整机（备机）", 2, 3200),
    ("LY-FILTER-1", "WP100 复合滤芯", 40, 180),
    ("LY-SEAL-1", "出水口密封圈", 100, 12),
    ("LY-AP-FILTER", "AP300 HEPA 滤网", 25, 260),
    ("LY-HV-MOTOR", "HV500 风机电机", 3, 1450),
]

PRODUCTS = [  # code, name, model, warranty months, list price, unit cost (元, tax-exclusive; VAT 13 %)
    ("LY-WP-100", "蓝云商用净水器 WP100", "WP100", 24, "1280.00", "800.00"),
    ("LY-AP-300", "蓝云空气净化器 AP300", "AP300", 12, "2680.00", "1650.00"),
    ("LY-HV-500", "蓝云新风系统 HV500", "HV500", 36, "16800.00", "11200.00"),
]


# ``fn(org)`` of the packages above the CRM core (materials), run once with the demo's documents; they register on import
DEMO_EXTRAS: list = []


def load_demo(password: str = DEMO_PASSWORD, documents: bool = False) -> list[tuple[str, str, str]]:
    """Create or refresh the demo organisation. Returns (login, password, who) rows. With ``documents`` (``wxcrm demo``,
    ``make run``, the console tour) also the desks' first records: quotes, a contract with an order, a ticket, a material
    and a plan (:func:`_demo_documents`); the tests that count records start without them."""
    ensure_builtin_roles()
    org = get_or_create_organization("lanyun", "蓝云智联科技（杭州）有限公司")
    with acting_as(Actor.system(org.id, "演示数据")):
        hq = upsert_department(org, "HQ", "总经办")
        sales = upsert_department(org, "SALES", "销售部", hq, "sales")
        sales1 = upsert_department(org, "SALES1", "销售一组", sales, "sales")
        service = upsert_department(org, "SERVICE", "服务部", hq, "service")
        marketing = upsert_department(org, "MKT", "市场部", hq, "marketing")

        gm = upsert_position(org, "GM", "总经理", hq)
        it = upsert_position(org, "IT_ADMIN", "系统管理员", hq, gm)
        sdir = upsert_position(org, "SALES_DIR", "销售总监", sales, gm)
        smgr = upsert_position(org, "SALES_MGR", "销售经理", sales1, sdir)
        rep1 = upsert_position(org, "SALES_REP_1", "销售代表", sales1, smgr)
        rep2 = upsert_position(org, "SALES_REP_2", "销售代表", sales1, smgr)
        svc_mgr = upsert_position(org, "SVC_MGR", "服务经理", service, gm)
        disp = upsert_position(org, "SVC_DISPATCH", "服务调度", service, svc_mgr)
        eng1 = upsert_position(org, "SVC_ENG_1", "服务工程师", service, svc_mgr)
        eng2 = upsert_position(org, "SVC_ENG_2", "服务工程师", service, svc_mgr)
        mmgr = upsert_position(org, "MKT_MGR", "市场经理", marketing, gm)
        mspec = upsert_position(org, "MKT_SPEC", "市场专员", marketing, mmgr)
        positions = {p.code: p for p in (gm, it, sdir, smgr, rep1, rep2, svc_mgr, disp, eng1, eng2, mmgr, mspec)}

        upsert_employee(org, "E000", "陈志远", gm, "13800000000")
        upsert_employee(org, "E100", "刘洋", sdir, "13800000100")
        upsert_employee(org, "E200", "钱坤", svc_mgr, "13800000200")
        upsert_employee(org, "E300", "冯雪", mmgr, "13800000300")

        employees = {}
        rows = []
        for login, name, role, pos_code, emp_code, phone, who in DEMO_LOGINS:
            emp = upsert_employee(org, emp_code, name, positions[pos_code], phone)
            emp.wecom_userid = emp.wecom_userid or login  # their 企业微信 UserID in the sandbox's WeCom
            create_user(org, login, password, [role], emp)
            employees[login] = emp
            rows.append((login, password, f"{name} · {who}"))

        from crm_core.service.models import StockItem

        for code, name, on_hand, price in SPARE_PARTS:
            item = db.session.scalars(select(StockItem).where(StockItem.org_id == org.id, StockItem.code == code)).first()
            if item is None:
                db.session.add(StockItem(org_id=org.id, code=code, name=name, on_hand=on_hand, reserved=0, unit_price=price))

        for code, name, model, months, price, cost in PRODUCTS:
            product = db.session.scalars(select(Product).where(Product.org_id == org.id, Product.code == code)).first()
            if product is None:
                product = Product(org_id=org.id, code=code)
                db.session.add(product)
            product.name, product.model, product.warranty_months = name, model, months
            product.list_price, product.unit_cost = Decimal(price), Decimal(cost)

        for name, phone, address, lat, lng, owner_login, contacts in CUSTOMERS:
            owner = employees[owner_login]
            customer = db.session.scalars(select(Customer).where(Customer.org_id == org.id, Customer.name == name)).first()
            if customer is None:
                customer = Customer(org_id=org.id, name=name)
                db.session.add(customer)
            customer.phone, customer.address, customer.source, customer.trading = phone, address, "demo", True
            customer.site_lat, customer.site_lng, customer.site_coord_system = lat, lng, "wgs84"
            customer.site_wgs_lat, customer.site_wgs_lng, customer.site_cell = lat, lng, geo.cell_of(lat, lng)
            customer.owner_id, customer.department_id = owner.id, owner.department_id
            db.session.flush()
            for cname, cphone, title in contacts:
                contact = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id, Contact.name == cname)).first()
                if contact is None:
                    contact = Contact(org_id=org.id, customer_id=customer.id, name=cname)
                    db.session.add(contact)
                contact.phone, contact.title = cphone, title
                contact.owner_id, contact.department_id = owner.id, owner.department_id
            db.session.flush()
            collision.index_record("customer", customer)
        db.session.flush()
    _demo_business(org, employees)
    if documents:
        _demo_documents(org)
    return rows


def _demo_business(org, employees) -> None:
    """Leads, opportunities, activities and product archives, created through the services
    (so collision keys, scopes and audit entries are real). Skipped when already there."""
    from datetime import date, timedelta

    from crm_core.activities.activities import create_activity
    from crm_core.clock import utcnow
    from crm_core.customers.models import ProductArchive
    from crm_core.customers.products import create_archives
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from crm_core.sales.leads import create_lead
    from crm_core.sales.models import Lead, Opportunity
    from crm_core.sales.opportunities import create_opportunity

    if db.session.scalars(select(Opportunity.id).where(Opportunity.org_id == org.id)).first():
        return
    actors = {login: load_actor(db.session.scalars(select(User).where(User.username == login)).one())
              for login in ("sales.zhang", "sales.li", "marketing.wang")}
    customers = {c.name: c for c in db.session.scalars(select(Customer).where(Customer.org_id == org.id))}
    products = {p.code: p for p in db.session.scalars(select(Product).where(Product.org_id == org.id))}
    today = utcnow().date()
    opps = [("sales.zhang", "杭州西湖茶业有限公司", "茶厂车间净水改造", 180000),
            ("sales.zhang", "杭州余杭未来酒店管理有限公司", "酒店新风系统", 420000),
            ("sales.li", "浙江钱塘物流股份有限公司", "仓库空气净化", 96000),
            ("sales.li", "杭州上城湖滨餐饮有限公司", "门店净水器采购", 36000)]
    for login, cname, name, amount in opps:
        create_opportunity(actors[login], {"name": name, "customer_id": customers[cname].id, "amount": amount,
                                           "expected_close_date": today + timedelta(days=45)})
    now = utcnow()
    for login, cname, subject, kind, hours in [
            ("sales.zhang", "杭州西湖茶业有限公司", "上门测量车间水质", "visit", 26),
            ("sales.zhang", "杭州滨江智造科技有限公司", "电话回访设备使用情况", "call", 3),
            ("sales.li", "浙江钱塘物流股份有限公司", "方案讲解会", "meeting", 50)]:
        create_activity(actors[login], {"subject": subject, "kind": kind, "customer_id": customers[cname].id,
                                        "planned_start": now + timedelta(hours=hours),
                                        "planned_end": now + timedelta(hours=hours + 1)})
    for login, name, company, phone, source in [
            ("marketing.wang", "钱先生", "杭州萧山纺织有限公司", "13811110001", "exhibition"),
            ("marketing.wang", "孙女士", "杭州临平医疗器械有限公司", "13811110002", "wechat_campaign"),
            ("sales.zhang", "吴经理", "西湖茶业集团", "13905710001", "referral")]:
        if not db.session.scalars(select(Lead.id).where(Lead.org_id == org.id, Lead.phone == phone)).first():
            create_lead(actors[login], {"name": name, "company": company, "phone": phone, "source": source})
    if not db.session.scalars(select(ProductArchive.id).where(ProductArchive.org_id == org.id)).first():
        create_archives(actors["sales.zhang"], [
            {"serial_no": "WP100-2024-0001", "product_id": products["LY-WP-100"].id,
             "customer_id": customers["杭州西湖茶业有限公司"].id, "sold_on": date(today.year - 2, today.month, 1)},
            {"serial_no": "AP300-2026-0007", "product_id": products["LY-AP-300"].id,
             "customer_id": customers["杭州滨江智造科技有限公司"].id, "sold_on": today - timedelta(days=90)}])
        create_archives(actors["sales.li"], [
            {"serial_no": "HV500-2025-0003", "product_id": products["LY-HV-500"].id,
             "customer_id": customers["浙江钱塘物流股份有限公司"].id, "sold_on": today - timedelta(days=400)}])
    from crm_core.customers.models import Segment
    from crm_core.customers.segments import create_segment

    if not db.session.scalars(select(Segment.id).where(Segment.org_id == org.id)).first():
        # a target group for the tour's campaign push (营销方案 → 推送给目标客户)
        admin = load_actor(db.session.scalars(select(User).where(User.username == "admin")).one())
        create_segment(admin, {"name": "杭州地区客户", "target": "customer", "match": "all",
                               "conditions": [{"field": "name", "op": "contains", "value": "杭州"}]})
    db.session.flush()


def _demo_documents(org) -> None:
    """What the other desks work on, so every console page has a first record to open: a quote sent and one accepted,
    its contract approved with a two-instalment plan and a first receipt (the rest of the first instalment overdue),
    an order of 5 of its 20 units with 2 shipped (their serials archived),
    a repair ticket dispatched to an engineer, a published material in a campaign, a submitted weekly plan, and an
    expense request for the tea factory's opportunity waiting for the manager.
    Created through the services (numbers, audit, scope and notices as in real use). Skipped when there are quotes."""
    from datetime import timedelta

    from crm_core.activities.activities import create_plan, submit_plan
    from crm_core.clock import local_today
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from crm_core.sales import documents
    from crm_core.sales.models import Opportunity, Quote
    from crm_core.service.tickets import create_for_customer
    from crm_core.service.work_orders import dispatch

    if db.session.scalars(select(Quote.id).where(Quote.org_id == org.id)).first():
        return
    customers = {c.name: c for c in db.session.scalars(select(Customer).where(Customer.org_id == org.id))}
    products = {p.code: p for p in db.session.scalars(select(Product).where(Product.org_id == org.id))}
    who = {login: load_actor(db.session.scalars(select(User).where(User.username == login)).one())
           for login in ("sales.zhang", "sales.li", "sales.manager", "service.dispatcher", "service.engineer",
                         "marketing.wang")}
    opps = {o.name: o for o in db.session.scalars(select(Opportunity).where(Opportunity.org_id == org.id))}
    today = local_today()
    tea = opps["茶厂车间净水改造"]
    sent = documents.create_quote(who["sales.zhang"], {
        "customer_id": tea.customer_id, "opportunity_id": tea.id, "note": "含安装调试，质保两年",
        "lines": [{"product_id": products["LY-WP-100"].id, "quantity": 12, "discount_pct": 5},
                  {"product_id": products["LY-HV-500"].id, "quantity": 2}]})
    documents.move_quote(who["sales.zhang"], sent.id, "send")
    shop = opps["门店净水器采购"]
    accepted = documents.create_quote(who["sales.li"], {
        "customer_id": shop.customer_id, "opportunity_id": shop.id,
        "lines": [{"product_id": products["LY-WP-100"].id, "quantity": 20, "discount_pct": 10}]})
    documents.move_quote(who["sales.li"], accepted.id, "send")
    documents.move_quote(who["sales.li"], accepted.id, "accept", by="客户电话确认")
    half = (accepted.total / 2).quantize(accepted.total)
    contract = documents.create_contract(who["sales.li"], {
        "customer_id": shop.customer_id, "quote_id": accepted.id, "signed_on": (today - timedelta(days=40)).isoformat(),
        "payment_plan": [{"due_date": (today - timedelta(days=10)).isoformat(), "amount": str(half)},
                         {"due_date": (today + timedelta(days=50)).isoformat(), "amount": str(accepted.total - half)}]})
    documents.approve_contract(who["sales.manager"], contract.id, "价格在授权范围内")
    documents.record_receipt(who["sales.li"], {"contract_id": contract.id, "amount": "10000.00",
                                               "received_on": (today - timedelta(days=8)).isoformat(), "method": "bank"})
    from crm_core.sales import orders

    order = orders.create_order(who["sales.li"], contract.id, {"lines": [{"contract_line_id": contract.lines[0].id, "quantity": 5}],
                                                               "address": "杭州市上城区湖滨路 8 号（首批 5 家门店）"})
    orders.record_delivery(who["sales.li"], order.id, {
        "lines": [{"order_line_id": order.lines[0].id, "quantity": 2}], "carrier": "顺丰 SF1400000001",
        "shipped_on": (today - timedelta(days=3)).isoformat(),
        "serial_nos": {str(order.lines[0].id): ["WP100-2026-1001", "WP100-2026-1002"]}})

    from crm_core.customers.models import ProductArchive

    factory = customers["杭州滨江智造科技有限公司"]
    archive = db.session.scalars(select(ProductArchive.id).where(ProductArchive.customer_id == factory.id)).first()
    from crm_core.sales.competitors import create_competitor
    from crm_core.sales.opportunities import set_competitors

    create_competitor(who["sales.manager"], {
        "name": "美的净水", "aliases": ["美的", "Midea"], "market_share": "23.5", "strengths": "品牌知名度高，家用渠道广",
        "weaknesses": "商用机型少，服务网点覆盖不足", "products": [{"name": "美的 商用 RO 净水器", "price": "6999"}]})
    set_competitors(who["sales.zhang"], tea.id, [{"name": "美的", "product": "美的 商用 RO 净水器", "price": "6500", "share": 30}])

    ticket = create_for_customer(who["service.dispatcher"], {
        "customer_id": factory.id, "kind": "repair", "priority": "high", "product_archive_id": archive,
        "description": "AP300 开机后滤网报警灯常亮，复位无效"})
    dispatch(who["service.dispatcher"], ticket.id, [who["service.engineer"].employee_id], note="带一套备用滤网")

    monday = today - timedelta(days=today.weekday())
    plan = create_plan(who["sales.zhang"], {"period": "weekly", "start_date": monday, "end_date": monday + timedelta(days=6),
                                            "title": "本周工作计划", "reviewer_id": who["sales.manager"].employee_id, "content": "1. 茶厂报价跟进，约陈总确认方案\n2. 拜访滨江智造，回访 AP300 使用情况"})
    submit_plan(who["sales.zhang"], plan.id, "报价已发出，等客户确认")
    from crm_core.sales.expenses import expense_from_opportunity

    expense_from_opportunity(who["sales.zhang"], tea.id, {"category": "travel", "title": "拜访茶厂陈总（差旅）", "lines": [
        {"item": "高铁 杭州—龙井往返", "amount": "96.00", "incurred_on": (today - timedelta(days=2)).isoformat()},
        {"item": "客户午餐", "amount": "268.00", "incurred_on": (today - timedelta(days=2)).isoformat()}]})
    db.session.flush()
    for extra in DEMO_EXTRAS:  # the feature packages above the core add theirs (materials: a material and a campaign)
        extra(org)
    db.session.flush()
