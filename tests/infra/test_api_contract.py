"""Walk the OpenAPI document and throw bad input at every operation: the answer is always
the SPEC.md error format with a 4xx status, never a 500."""
from __future__ import annotations

import json

import pytest

from crm_core.db import db
from tests.factories import make_team

ERROR_STATUSES = {400, 401, 403, 404, 405, 409, 413, 415, 422, 429}


@pytest.fixture
def setup(app, client, auth_headers):
    users = make_team()
    db.session.commit()
    spec = client.get("/api/v1/openapi.json").get_json()
    return spec, auth_headers(users["admin"])


def _operations(spec):
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def _url(path, value="999999"):
    import re

    return re.sub(r"\{[^}]+\}", value, path)


def assert_error_format(resp, where):
    assert resp.status_code in ERROR_STATUSES, (where, resp.status_code, resp.get_data(as_text=True)[:300])
    body = resp.get_json()
    assert body is not None, (where, "not JSON")
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["fields"], dict)


def test_openapi_document_is_generated_from_the_routes(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ms in spec["paths"].items() for m in ms}
    import re

    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (method, path) in documented, f"{method} {path} missing from OpenAPI"
    token = spec["paths"]["/api/v1/auth/token"]["post"]
    assert token["security"] == []
    schema_ref = token["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.rsplit("/", 1)[1] in spec["components"]["schemas"]


def test_every_operation_rejects_missing_auth(setup, client):
    spec, _ = setup
    for path, method, op in _operations(spec):
        if op.get("security") == []:
            continue
        resp = client.open(_url(path), method=method.upper())
        assert resp.status_code == 401, (method, path)
        assert_error_format(resp, (method, path))


def test_every_operation_answers_bad_input_with_the_error_format(setup, client):
    spec, headers = setup
    oversize = json.dumps({"x": "长" * 200_000})
    for path, method, op in _operations(spec):
        url = _url(path)
        where = (method, path)
        m = method.upper()
        if "requestBody" in op:
            # missing body, malformed JSON, wrong top-level type, wrong field types, oversize
            for data, ctype in [("", "application/json"), ("{not json", "application/json"),
                                ("[1,2,3]", "application/json"), (oversize, "application/json"),
                                ("name=x", "application/x-www-form-urlencoded")]:
                resp = client.open(url, method=m, data=data, content_type=ctype, headers=headers)
                assert_error_format(resp, where + (data[:20],))
            schema_name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            props = spec["components"]["schemas"][schema_name].get("properties", {})
            wrong = {k: {"nested": ["wrong", "type"]} for k in props}
            resp = client.open(url, method=m, json=wrong, headers=headers)
            assert_error_format(resp, where + ("wrong types",))
            if props:
                assert resp.status_code in (404, 422), where
                if resp.status_code == 422:
                    assert resp.get_json()["error"]["fields"], where
        # bad query parameters
        for param in op.get("parameters", []):
            if param["in"] == "query":
                resp = client.open(url + f"?{param['name']}=%00%ff-not-valid&page=-3&per_page=abc",
                                   method=m, headers=headers, json={} if "requestBody" in op else None)
                assert resp.status_code < 500, where + (param["name"],)
                if resp.status_code >= 400:
                    assert_error_format(resp, where + (param["name"],))
        # unknown ids
        if "{" in path:
            resp = client.open(url, method=m, headers=headers, json={} if "requestBody" in op else None)
            assert_error_format(resp, where + ("unknown id",))
            resp = client.open(_url(path, "not-a-number"), method=m, headers=headers)
            assert_error_format(resp, where + ("non-numeric id",))


def test_unknown_path_and_method_are_json_errors(setup, client):
    resp = client.get("/api/v1/does-not-exist")
    assert_error_format(resp, "404")
    resp = client.put("/api/v1/me")
    assert resp.status_code == 405
    assert_error_format(resp, "405")


def test_upload_larger_than_the_global_limit_is_413(setup, client):
    spec, headers = setup
    resp = client.post("/api/v1/customers", data=b"x" * (17 * 1024 * 1024), content_type="application/json", headers=headers)
    assert resp.status_code == 413
    assert_error_format(resp, "413")
