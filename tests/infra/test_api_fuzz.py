"""Property-based fuzzing of the employee API with schemathesis, over the OpenAPI document.

Every operation gets generated input — valid and invalid — sent as a real employee with a
bearer token, against the demo organisation. No answer may be a 5xx, and every answer must
match what the document says (status code documented, body matching its schema).

The number of examples per operation is bounded (``WXCRM_FUZZ_EXAMPLES``, default 6) so the
whole run stays within a minute or two; raise it by hand for a deeper search.
"""
from __future__ import annotations

import os
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from crm_core.db import db
from tests.conftest import _make_app

EXAMPLES = int(os.environ.get("WXCRM_FUZZ_EXAMPLES", "6"))
# operations that would end the fuzzing session itself (revoking its token, disabling its user)
SELF_HARM = [("DELETE", "/api/v1/auth/token"), ("PATCH", "/api/v1/users/{user_id}"), ("PUT", "/api/v1/roles/{role_id}/grants")]


def _fuzz_app():
    """The app under test: built when pytest collects this module, so schemathesis can read its
    document and parametrize one test per operation (its demo data is loaded by ``bearer``)."""
    path = tempfile.mkdtemp(prefix="wxcrm-fuzz-")
    return _make_app(f"sqlite:///{path}/fuzz.db", JOBS_EAGER=False, WXCRM_LOG_LEVEL="ERROR")


FUZZ_APP = _fuzz_app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", FUZZ_APP)
for _method, _path in SELF_HARM:
    schema = schema.exclude(method=_method, path=_path)


@pytest.fixture(scope="module")
def bearer():
    from crm_core.demo import load_demo

    with FUZZ_APP.app_context():
        db.create_all()
        load_demo()
        db.session.commit()
    tokens = {}
    client = FUZZ_APP.test_client()
    for user in ("admin", "sales.zhang"):
        resp = client.post("/api/v1/auth/token", json={"username": user, "password": "demo123456"})
        tokens[user] = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
    return tokens


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_its_schema(case, bearer):
    """As the administrator (sees every path through the code) and as a salesperson (scope "self")."""
    for user in ("admin", "sales.zhang"):
        case.call_and_validate(headers=bearer[user],
                               checks=[not_a_server_error, status_code_conformance, response_schema_conformance])


# --- the H5 and public calls: their own document, fuzzed with a WeChat session -----------------
h5_schema = schemathesis.openapi.from_wsgi("/h5/api/openapi.json", FUZZ_APP)


@pytest.fixture(scope="module")
def wechat_sessions(bearer):
    """A bound customer (demo follower oDEMO0001), a WeChat user who has not verified, and a
    bound salesperson (their own openid, bound by signing in once on the phone)."""
    out = {}
    for key, openid in (("customer", "oDEMO0001"), ("stranger", "oFUZZSTRANGER01"), ("staff", "oFUZZSTAFF0001")):
        c = FUZZ_APP.test_client()
        c.get(f"/h5/dev-login?openid={openid}")
        if key == "staff":
            c.post("/h5/api/staff/bind", json={"username": "sales.zhang", "password": "demo123456"})
        out[key] = {"Cookie": f"{FUZZ_APP.config['SESSION_COOKIE_NAME']}={c.get_cookie(FUZZ_APP.config['SESSION_COOKIE_NAME']).value}"}
    return out


@h5_schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_h5_or_public_call_answers_5xx(case, wechat_sessions):
    for who in ("customer", "stranger", "staff"):
        case.call_and_validate(headers=wechat_sessions[who], checks=[not_a_server_error, status_code_conformance])


def test_every_h5_and_public_json_route_is_in_its_document():
    """SPEC.md: the H5 and public calls are all in /h5/api/openapi.json (no route forgets its entry)."""
    doc = FUZZ_APP.test_client().get("/h5/api/openapi.json").get_json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    missing = []
    for rule in FUZZ_APP.url_map.iter_rules():
        path = str(rule).replace("<int:", "<").replace("<", "{").replace(">", "}")
        json_call = path.startswith("/h5/api/") and path != "/h5/api/openapi.json"
        public_call = path.startswith("/m/") and path.count("/") == 3
        if json_call or public_call:
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if (method, path) not in documented:
                    missing.append(f"{method} {path}")
    assert not missing, missing
