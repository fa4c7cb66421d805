"""Excel imports (SPEC: ``/api/v1/imports/{kind}`` and ``/api/v1/jobs/{id}``): the template, the dry run
that writes nothing, and the import as a job whose progress and result file are read back."""
from __future__ import annotations

from flask import g, request
from pydantic import Field

from crm_core import imports as svc
from crm_core.errors import ValidationFailed
from wxapp.api import bp
from wxapp.exports import file_response
from wxapp.openapi import Model, api


class ImportQuery(Model):
    dry_run: bool = Field(default=False, description="check every row and answer new / collision / error; writes nothing")


class DryRow(Model):
    row: int = Field(description="the row number in Excel (the headers are row 1)")
    status: str = Field(description="new / collision / error")
    message: str | None


class DryRunOut(Model):
    kind: str
    total: int
    summary: dict[str, int]
    rows: list[DryRow]
    ignored_columns: list[str]


class JobResult(Model):
    created: int
    collisions: int
    errors: int
    processed: int
    total: int
    result_file: str | None = Field(description="the uploaded sheet with 导入结果 and 说明 added (when done)")


class JobOut(Model):
    id: int
    kind: str
    kind_label: str
    status: str = Field(description="queued / running / done / failed")
    progress: int = Field(description="per cent of the rows processed")
    file_name: str
    total: int
    processed: int
    result: JobResult | None
    error: str | None
    created_at: str
    finished_at: str | None


class JobStarted(Model):
    job_id: int
    total: int


def uploaded() -> tuple[bytes, str | None]:
    """The multipart ``file`` (read up to one byte past the limit, so a bigger one is refused, not cut)."""
    f = request.files.get("file")
    if f is None:
        raise ValidationFailed("请以 multipart/form-data 上传 Excel 文件（字段名 file）。", fields={"file": "required"})
    return f.read(svc.MAX_BYTES + 1), f.filename


@api.operation(bp, "/imports/<kind>/template", "GET", summary="The .xlsx template of an import (headers in row 1)",
               tags=("imports",))
def import_template(kind: str):
    k = svc.kind_of(kind)
    g.actor.require(*k.permission)
    return file_response(svc.template(kind), f"{k.label}导入模板.xlsx", svc.XLSX)


@api.operation(bp, "/imports/<kind>", "POST", summary="Import an .xlsx (multipart file): dry_run=1 checks each row, "
               "else the import starts as a job", tags=("imports",), query=ImportQuery, response=DryRunOut, status=200,
               description="kind: customers, contacts, leads, employees, product-archives. Without dry_run the answer "
                           "is 202 {job_id}; follow it at /api/v1/jobs/{id}.")
def import_file(kind: str, query: ImportQuery):
    data, name = uploaded()
    if query.dry_run:
        return svc.dry_run(g.actor, kind, data)
    job = svc.start(g.actor, kind, data, name)
    return {"job_id": job.id, "total": job.total}, 202


@api.operation(bp, "/jobs/<int:job_id>", "GET", summary="A background import: status, progress and result",
               tags=("imports",), response=JobOut)
def get_job(job_id: int):
    return svc.job_dict(svc.get_import(g.actor, job_id))


@api.operation(bp, "/jobs/<int:job_id>/result", "GET", summary="The result file of a finished import (.xlsx)",
               tags=("imports",))
def job_result(job_id: int):
    data, name = svc.result_file(g.actor, job_id)
    return file_response(data, name, svc.XLSX)
