"""JSON endpoints declared once, validated at the edge, documented from the same code.

``api.operation(bp, "/customers", "POST", body=CustomerIn, response=CustomerOut, ...)``
registers a Flask route that authenticates the bearer token (unless ``auth=False``),
parses and validates the JSON body and query string with pydantic (422 with one message
per field), calls the view with ``body=`` / ``query=`` and the path arguments, commits the
request's transaction once, and serialises the answer. :meth:`Api.spec` builds the OpenAPI
3.1 document from the same declarations and pydantic's JSON Schema, so the document cannot
drift from the code.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Callable

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import models_json_schema

from crm_core.errors import DomainError, ValidationFailed
from wxapp import idempotency
from wxapp.guards import MAX_JSON_DEPTH, JSONTooDeep, check_json_depth, check_values

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _to_utc(value: datetime) -> datetime:
    """Store naive UTC. A time without an offset is in the caller's organisation's zone (what its phones and
    people mean: Asia/Shanghai unless the organisation sets another); an explicit offset is honoured."""
    from zoneinfo import ZoneInfo

    from flask import g, has_request_context

    from crm_core.clock import default_timezone, to_utc
    from crm_core.org.settings import org_timezone

    actor = g.get("actor") if has_request_context() else None
    return to_utc(value, assume=ZoneInfo(org_timezone(actor.org_id) if actor is not None else default_timezone()))


UtcDateTime = Annotated[datetime, AfterValidator(_to_utc)]


# money in request bodies: two-decimal numbers or strings ("1280.00"); answers carry strings
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class Model(BaseModel):
    """Base of request models: strips whitespace, ignores unknown keys."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")


class PageQuery(Model):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=1000)


def page_of(item_model: type[BaseModel]) -> type[BaseModel]:
    """A ``{items: [...], total: N}`` model for list answers."""
    return create_model(f"{item_model.__name__}Page", items=(list[item_model], ...), total=(int, ...))


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] = {}
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERROR_STATUSES = {"400": "请求格式不正确", "401": "未登录或令牌无效", "403": "没有权限", "404": "不存在或不在数据权限内",
                  "409": "与当前状态冲突", "413": "请求内容过大", "415": "内容类型不是 JSON", "422": "字段校验失败",
                  "429": "请求过于频繁"}


@dataclass
class Operation:
    method: str
    path: str
    endpoint: str
    summary: str
    tags: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    description: str = ""
    path_params: list[tuple[str, str]] = field(default_factory=list)


def _chinese(err: dict) -> str:
    """pydantic's message in the words staff and customers read (the limit stated)."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "missing":
        return "必填"
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 个字符"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符"
    if kind in ("too_long", "too_short"):
        return f"最多 {ctx.get('max_length')} 项" if kind == "too_long" else f"至少 {ctx.get('min_length')} 项"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {ctx.get('le', ctx.get('lt'))}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "请输入整数"
    if kind in ("float_parsing", "float_type", "decimal_parsing", "decimal_type"):
        return "请输入数字"
    if kind in ("bool_parsing", "bool_type"):
        return "请填写是或否"
    if kind.startswith(("date", "datetime", "time")):
        return "日期或时间格式不正确"
    if kind in ("literal_error", "enum"):
        return f"请选择：{ctx.get('expected', '')}".rstrip("：")
    if kind in ("string_type", "list_type", "dict_type", "model_type", "model_attributes_type"):
        return "格式不正确"
    if kind == "string_pattern_mismatch":
        return "格式不正确"
    return err.get("msg", "格式不正确")


def field_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """pydantic errors as ``{"field.path": "中文说明"}``."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        out[prefix + loc] = _chinese(err)
    return out


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


def parse_json_body(model: type[BaseModel]) -> BaseModel:
    limit = current_app.config["API_MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"请求内容过大（上限 {limit // 1024} KB）。")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"请求内容过大（上限 {limit // 1024} KB）。")
    if not raw.strip():
        raise ValidationFailed("请求体不能为空，请提交 JSON 对象。", fields={"body": "required"})
    try:
        check_json_depth(raw)
    except JSONTooDeep:
        raise DomainError(f"JSON 嵌套层数过多（上限 {MAX_JSON_DEPTH} 层）。", code="invalid_json") from None
    data = request.get_json(silent=True, force=True)
    if data is None:
        raise DomainError("请求体不是合法的 JSON。", code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed("请求体必须是 JSON 对象。", fields={"body": "must be an object"})
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("提交的数据有误，请检查标出的字段。", fields=field_errors(exc)) from None
    check_values(parsed)
    return parsed


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("查询参数有误。", fields=field_errors(exc)) from None
    check_values(parsed, query=True)
    return parsed


def _to_response(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        result, status = result
    if status == 204:
        return Response(status=204)
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    resp = jsonify(result)
    resp.status_code = status
    return resp


class Api:
    """The registry of JSON operations and the OpenAPI document built from it."""

    def __init__(self, title: str, version: str, description: str = "", security_schemes: dict | None = None):
        self.title, self.version, self.description = title, version, description
        self.operations: list[Operation] = []
        self.security_schemes = security_schemes or {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "POST /api/v1/auth/token"}}

    def _record(self, fn: Callable, rule: str, method: str, endpoint: str, *, description: str, **fields) -> None:
        """Add the operation at full ``rule`` (with converters) to the document."""
        params = [(name, conv or "string") for conv, name in _CONVERTER.findall(rule)]
        self.operations.append(Operation(method=method.lower(), path=_CONVERTER.sub(r"{\2}", rule), endpoint=endpoint,
                                         description=description or (fn.__doc__ or "").strip(), path_params=params, **fields))

    def describe(self, rule: str, method: str = "GET", *, summary: str, tags: tuple[str, ...] = (),
                 body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                 response: type[BaseModel] | None = None, status: int = 200, auth: bool = True,
                 description: str = ""):
        """Document a route whose view parses its own input (the H5 and public calls): the same
        pydantic models it validates with feed the document. ``rule`` is the full rule, with
        converters. A test checks that every H5 and public JSON route is described."""
        def deco(fn: Callable) -> Callable:
            self._record(fn, rule, method, re.sub(r"\W+", "_", f"{method} {rule}").lower(), summary=summary, tags=tags,
                         body=body, query=query, response=response, status=status, auth=auth, description=description)
            return fn

        return deco

    def operation(self, bp: Blueprint, rule: str, method: str = "GET", *, summary: str, tags: tuple[str, ...] = (),
                  body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                  response: type[BaseModel] | None = None, status: int = 200, auth: bool = True,
                  decorators: tuple[Callable, ...] = (), description: str = ""):
        def deco(fn: Callable) -> Callable:
            from wxapp.auth import actor_from_bearer

            @functools.wraps(fn)
            def view(**path_args):
                if auth:
                    actor_from_bearer()
                kwargs = dict(path_args)
                if body is not None:
                    kwargs["body"] = parse_json_body(body)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                result = fn(**kwargs)
                # the request commits once (services only flush), with its idempotent answer if it claimed a key
                return idempotency.commit(_to_response(result, status))

            for d in decorators:
                view = d(view)
            bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
            self._record(fn, (bp.url_prefix or "") + rule, method, f"{bp.name}.{fn.__name__}", summary=summary, tags=tags,
                         body=body, query=query, response=response, status=status, auth=auth, description=description)
            return view

        return deco

    def spec(self, server_url: str = "/") -> dict:
        """The OpenAPI 3.1 document."""
        inputs = {op.body for op in self.operations if op.body} | {op.query for op in self.operations if op.query}
        outputs = {op.response for op in self.operations if op.response} | {ErrorResponse}
        pairs = [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)] + \
                [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)]
        key_map, schema = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
        components = schema.get("$defs", {})
        paths: dict[str, dict] = {}
        for op in sorted(self.operations, key=lambda o: (o.path, o.method)):
            entry: dict[str, Any] = {"operationId": op.endpoint.replace(".", "_"), "summary": op.summary,
                                     "tags": list(op.tags) or ["default"]}
            if op.description:
                entry["description"] = op.description
            params = [{"name": n, "in": "path", "required": True,
                       "schema": {"type": "integer"} if conv == "int" else {"type": "string"}} for n, conv in op.path_params]
            if op.query:
                qschema = op.query.model_json_schema()
                required = set(qschema.get("required", []))
                for name, prop in qschema.get("properties", {}).items():
                    params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
            if params:
                entry["parameters"] = params
            if op.body:
                entry["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": key_map[(op.body, "validation")]}}}
            ok: dict[str, Any] = {"description": "OK"}
            if op.response and op.status != 204:
                ok["content"] = {"application/json": {"schema": key_map[(op.response, "serialization")]}}
            responses = {str(op.status): ok}
            err_ref = key_map[(ErrorResponse, "serialization")]
            for code, text in ERROR_STATUSES.items():  # 401 too without auth: a login answers it
                responses[code] = {"description": text, "content": {"application/json": {"schema": err_ref}}}
            entry["responses"] = responses
            if not op.auth:
                entry["security"] = []
            paths.setdefault(op.path, {})[op.method] = entry
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "servers": [{"url": server_url}],
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": self.security_schemes},
            "security": [{name: []} for name in self.security_schemes],
        }


api = Api("蓝云 WeChat CRM API", "1",
          "Employees' JSON API (mobile app and back office). Errors are "
          "{\"error\": {\"code\", \"message\", \"fields\"}}; lists take page and per_page and answer {items, total}.")

h5_api = Api("蓝云 H5 and public API", "1",
             "Calls made by pages inside WeChat (customers, staff on the phone) with the session WeChat OAuth set "
             "(GET /h5/dev-login?openid= in development), and the public material-page calls. Errors are "
             "{\"error\": {\"code\", \"message\", \"fields\"}}.",
             security_schemes={"wechatSession": {"type": "apiKey", "in": "cookie", "name": "session",
                                                 "description": "set by WeChat OAuth (/h5/oauth/start)"}})
