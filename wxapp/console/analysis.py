"""销售分析: the sales funnel, the customer value pyramid and customers by source as ECharts charts (vendored, the
Chinese standard), each with its figures as a table beside it; the data is the report services' own JSON."""
from __future__ import annotations

from flask import g, render_template

from crm_core.customers import value
from crm_core.errors import DomainError
from crm_core.sales import reports
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.console.crm import SOURCE_LABELS
from wxapp.pages import denied


@bp.get("/analysis")
@console_login_required
def sales_analysis():
    try:
        funnel = reports.funnel(g.actor)
        sources = reports.customers_by_source(g.actor)
        pyramid = value.pyramid(g.actor, per_page=1)
    except DomainError as exc:
        return denied(exc)
    for row in sources["items"]:
        row["label"] = SOURCE_LABELS.get(row["source"], "未知" if row["source"] == "unknown" else row["source"])
    charts = {
        "funnel": {"title": "销售漏斗（进行中的商机）", "kind": "funnel",
                   "data": [{"name": s["name"], "value": s["count"], "amount": s["amount"]} for s in funnel["stages"]]},
        "pyramid": {"title": "客户金字塔（价值等级）", "kind": "pyramid",
                    "data": [{"name": f"{lv['code']} {lv['name']}", "value": lv["count"]} for lv in pyramid["levels"]]
                    + ([{"name": "未评分", "value": pyramid["unscored"]}] if pyramid.get("unscored") else [])},
        "sources": {"title": "客户来源", "kind": "pie",
                    "data": [{"name": r["label"], "value": r["total"]} for r in sources["items"]]},
    }
    return render_template("console/analysis.html", charts=charts, funnel=funnel, sources=sources, pyramid=pyramid)
