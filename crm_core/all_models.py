"""Every model, imported so the metadata is complete for Alembic, ``create_all`` and the mappers.

This is an assembly module: the app factory, the migrations and the tests import it; no area
and no infrastructure module does (an import-linter contract keeps it so). Importing it also
imports each area's services that plug into another area's extension points (360 sections,
value measures, collision objects, reference fields) or register periodic jobs, so those
registries are complete wherever the models are.
"""
# infrastructure tables live in their modules; then each area's models; then the modules that plug
# into another area's extension points (activities, collision, opportunities) or register periodic
# jobs (warranty)
from crm_core import audit, idempotency, jobs, media, numbering, outbox, sms  # noqa: F401
from crm_core import imports as _imports  # noqa: F401  (the Excel import jobs and their tables; above the areas)
from crm_core.activities import activities as _activities  # noqa: F401
from crm_core.activities import models as _activities_models  # noqa: F401
from crm_core.customers import collision as _collision  # noqa: F401
from crm_core.customers import models as _customers_models  # noqa: F401
from crm_core.field import models as _field_models  # noqa: F401
from crm_core.org import models as _org_models  # noqa: F401
from crm_core.sales import contract_changes as _contract_changes  # noqa: F401  (registers the change approval type)
from crm_core.sales import documents as _documents  # noqa: F401  (the quote expiry and overdue jobs)
from crm_core.sales import expenses as _expenses  # noqa: F401  (registers the expense approval type)
from crm_core.sales import models as _sales_models  # noqa: F401
from crm_core.sales import opportunities as _opportunities  # noqa: F401
from crm_core.sales import pool as _pool  # noqa: F401  (the 公海 recycle job)
from crm_core.service import models as _service_models  # noqa: F401
from crm_core.service import warranty as _warranty  # noqa: F401
from crm_core.wechat import models as _wechat_models  # noqa: F401
