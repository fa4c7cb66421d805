"""Reports for managers: funnel, customers by source, value pyramid."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.customers import value as value_svc
from crm_core.sales import reports as svc
from wxapp.api import bp
from wxapp.csv_export import csv_response
from wxapp.openapi import Model, api


class RangeQuery(Model):
    date_from: date | None = None
    date_to: date | None = None


class FunnelQuery(RangeQuery):
    method_id: int | None = None


@api.operation(bp, "/reports/funnel", "GET", summary="Sales funnel within your data scope (销售漏斗)", tags=("reports",),
               query=FunnelQuery)
def funnel(query: FunnelQuery):
    return svc.funnel(g.actor, query.method_id, query.date_from, query.date_to)


@api.operation(bp, "/reports/customers-by-source", "GET", summary="Customers per source (客户来源分析)", tags=("reports",),
               query=RangeQuery)
def by_source(query: RangeQuery):
    return svc.customers_by_source(g.actor, query.date_from, query.date_to)


class PyramidQuery(Model):
    level: str | None = Field(default=None, max_length=8)
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=100)


@api.operation(bp, "/reports/customer-pyramid", "GET", summary="Customer value pyramid (客户金字塔)", tags=("reports",),
               query=PyramidQuery)
def pyramid(query: PyramidQuery):
    """Counts per level; with `level`, that level's customers by score."""
    return value_svc.pyramid(g.actor, query.level, query.page, query.per_page)


class AsOfQuery(Model):
    as_of: date | None = Field(default=None, description="default: today in the organisation's time zone")
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/receivables", "GET", summary="应收款汇总表: outstanding per customer by ageing bucket",
               tags=("reports",), query=AsOfQuery)
def receivables(query: AsOfQuery):
    data = svc.receivables(g.actor, query.as_of)
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("receivables", data))
    return data


class DueQuery(RangeQuery):
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=100, ge=1, le=500)
    format: Literal["json", "csv", "xlsx"] = Field(default="json", description="csv: every row, not a page")


@api.operation(bp, "/reports/overdue", "GET", summary="到期债权表: instalments due and not fully received (a page; totals of all)",
               tags=("reports",), query=DueQuery)
def overdue(query: DueQuery):
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("overdue", svc.overdue(g.actor, query.date_from, query.date_to, 1, 1_000_000)))
    return svc.overdue(g.actor, query.date_from, query.date_to, query.page, query.per_page)


class PerformanceQuery(Model):
    year: int = Field(ge=2000, le=2100)
    by: Literal["person", "department"] = "person"
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/sales-performance", "GET", tags=("reports",), query=PerformanceQuery,
               summary="销售业绩统计: contracted, received and target per person or department and month")
def sales_performance(query: PerformanceQuery):
    data = svc.sales_performance(g.actor, query.year, query.by)
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("performance", data))
    return data


class CompetitorQuery(RangeQuery):
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/competitors", "GET", summary="竞争对手分析: wins and losses by competitor", tags=("reports",),
               query=CompetitorQuery)
def competitor_report(query: CompetitorQuery):
    data = svc.competitors(g.actor, query.date_from, query.date_to)
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("competitors", data))
    return data


class ExecutionQuery(RangeQuery):
    by: Literal["contract", "customer", "owner"] = Field(default="contract", description="contract: 明细; customer / owner: 汇总")
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/contract-execution", "GET", tags=("reports",), query=ExecutionQuery,
               summary="合同执行明细 / 汇总: contracted, ordered, delivered and received per contract, customer or owner")
def contract_execution(query: ExecutionQuery):
    """`date_from` / `date_to` pick contracts by the day they were signed."""
    data = svc.contract_execution(g.actor, query.by, query.date_from, query.date_to)
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("execution", data))
    return data


class CustomerAnalysisQuery(RangeQuery):
    by: Literal["source", "industry", "region", "value_level", "month"] = "source"
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/customers", "GET", tags=("reports",), query=CustomerAnalysisQuery,
               summary="客户分析: customers by source, industry, region, value level or month, with trading and money")
def customer_analysis(query: CustomerAnalysisQuery):
    """`date_from` / `date_to` pick customers by the day they were created."""
    data = svc.customer_analysis(g.actor, query.by, query.date_from, query.date_to)
    if query.format in ("csv", "xlsx"):
        return csv_response(*svc.csv_table("customers", data))
    return data
