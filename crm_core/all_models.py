"""Every model, imported so the metadata is complete for Alembic, ``create_all`` and the mappers.

This is an assembly module: the app factory, the migrations and the tests import it; no area
and no infrastructure module does (an import-linter contract keeps it so). Importing it also
imports each area's services that plug into another area's extension points (360 sections,
value measures, collision objects, reference fields), so those registries are complete
wherever the models are.
"""
from crm_core import audit, idempotency, jobs, media, outbox, sms  # noqa: F401  (infrastructure tables)

# modules that plug into another area's extension points or register periodic jobs
from crm_core.activities import activities as _activities_services  # noqa: F401
from crm_core.activities import models as _activities  # noqa: F401
from crm_core.activities.models import Activity, WorkPlan
from crm_core.audit import AuditEntry
from crm_core.customers import collision as _collision  # noqa: F401
from crm_core.customers import models as _customers  # noqa: F401
from crm_core.customers.models import (
                                       CollisionClaim,
                                       CollisionGram,
                                       CollisionKey,
                                       CollisionRule,
                                       Contact,
                                       ContactRelation,
                                       Customer,
                                       Product,
                                       ProductArchive,
                                       Segment,
                                       ValueIndicator,
                                       ValueLevel,
)
from crm_core.field import models as _field  # noqa: F401
from crm_core.field.models import CheckIn
from crm_core.jobs import PeriodicRun, ScheduledJob
from crm_core.media import MediaFile
from crm_core.org import models as _org  # noqa: F401
from crm_core.org.models import (
                                       ApiToken,
                                       Department,
                                       Employee,
                                       EmployeePosition,
                                       Organization,
                                       OrgSetting,
                                       Position,
                                       RecordShare,
                                       Role,
                                       RoleDataScope,
                                       RolePermission,
                                       User,
                                       UserRole,
)
from crm_core.outbox import OutboxMessage
from crm_core.sales import models as _sales  # noqa: F401
from crm_core.sales import opportunities as _opportunities  # noqa: F401
from crm_core.sales.models import (
                                       Competitor,
                                       Lead,
                                       Opportunity,
                                       OpportunityApproval,
                                       OpportunityProduct,
                                       SalesMethod,
                                       SalesStage,
)
from crm_core.service import models as _service  # noqa: F401
from crm_core.service import warranty as _warranty  # noqa: F401
from crm_core.service.models import (
                                       FeeLine,
                                       HandlingRecord,
                                       PartRequest,
                                       Rating,
                                       StockItem,
                                       Ticket,
                                       TicketEvent,
                                       VerificationCode,
                                       WorkOrder,
)
from crm_core.sms import SmsMessage
from crm_core.wechat import models as _wechat  # noqa: F401
from crm_core.wechat.models import CachedCredential, Follower, InboundMessage, SandboxRecord

__all__ = [
    "Activity", "ApiToken", "AuditEntry", "CheckIn", "MediaFile", "CollisionClaim", "CollisionGram", "CollisionKey", "CollisionRule",
    "Competitor", "Contact", "ContactRelation", "Customer", "Department", "Employee", "EmployeePosition", "Lead",
    "Opportunity", "OpportunityApproval", "OpportunityProduct", "Organization", "OrgSetting", "OutboxMessage",
    "PeriodicRun", "Position", "Product", "ProductArchive", "RecordShare", "Role", "RoleDataScope", "RolePermission",
    "SalesMethod", "SalesStage", "ScheduledJob", "Segment", "User", "UserRole", "ValueIndicator", "ValueLevel",
    "WorkPlan", "CachedCredential", "FeeLine", "HandlingRecord", "PartRequest", "Rating", "SmsMessage", "StockItem",
    "Ticket", "TicketEvent", "VerificationCode", "WorkOrder", "Follower", "InboundMessage", "SandboxRecord",
]
