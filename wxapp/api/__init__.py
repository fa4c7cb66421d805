"""The employees' JSON API under ``/api/v1`` (bearer-token auth)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from wxapp.api import (  # noqa: E402,F401
                       activities,
                       approval_flows,
                       audit,
                       auth,
                       competitors,
                       customers,
                       erp,
                       expenses,
                       imports,
                       leads,
                       media,
                       mobile,
                       opportunities,
                       org,
                       org_setup,
                       outbox,
                       pool,
                       products,
                       reports,
                       sales_documents,
                       search,
                       segments,
                       settings,
)
