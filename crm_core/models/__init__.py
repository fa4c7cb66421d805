"""All models, imported here so metadata is complete for Alembic and ``create_all``."""
from crm_core.models.activity import Activity, WorkPlan
from crm_core.models.audit import AuditEntry
from crm_core.models.checkin import CheckIn
from crm_core.models.auth import ApiToken, Role, RoleDataScope, RolePermission, User, UserRole
from crm_core.models.customer import Contact, ContactRelation, Customer
from crm_core.models.jobs import PeriodicRun, ScheduledJob
from crm_core.models.lead import Lead
from crm_core.models.media import MediaFile
from crm_core.models.opportunity import (Competitor, Opportunity, OpportunityApproval, OpportunityProduct, SalesMethod,
                                         SalesStage)
from crm_core.models.org import Department, Employee, EmployeePosition, Organization, Position
from crm_core.models.outbox import OutboxMessage
from crm_core.models.product import Product, ProductArchive
from crm_core.models.segment import Segment
from crm_core.models.settings import (CollisionClaim, CollisionGram, CollisionKey, CollisionRule, OrgSetting,
                                      ValueIndicator, ValueLevel)
from crm_core.models.sharing import RecordShare
from crm_core.models.ticket import (FeeLine, HandlingRecord, PartRequest, Rating, SmsMessage, StockItem, Ticket,
                                    TicketEvent, VerificationCode, WorkOrder)
from crm_core.models.wechat import CachedCredential, Follower, InboundMessage, SandboxRecord

__all__ = [
    "Activity", "ApiToken", "AuditEntry", "CheckIn", "MediaFile", "CollisionClaim", "CollisionGram", "CollisionKey", "CollisionRule",
    "Competitor", "Contact", "ContactRelation", "Customer", "Department", "Employee", "EmployeePosition", "Lead",
    "Opportunity", "OpportunityApproval", "OpportunityProduct", "Organization", "OrgSetting", "OutboxMessage",
    "PeriodicRun", "Position", "Product", "ProductArchive", "RecordShare", "Role", "RoleDataScope", "RolePermission",
    "SalesMethod", "SalesStage", "ScheduledJob", "Segment", "User", "UserRole", "ValueIndicator", "ValueLevel",
    "WorkPlan", "CachedCredential", "FeeLine", "HandlingRecord", "PartRequest", "Rating", "SmsMessage", "StockItem",
    "Ticket", "TicketEvent", "VerificationCode", "WorkOrder", "Follower", "InboundMessage", "SandboxRecord",
]
