"""All models, imported here so metadata is complete for Alembic and ``create_all``."""
from crm_core.models.audit import AuditEntry
from crm_core.models.auth import ApiToken, Role, RoleDataScope, RolePermission, User, UserRole
from crm_core.models.customer import Contact, Customer
from crm_core.models.jobs import PeriodicRun, ScheduledJob
from crm_core.models.org import Department, Employee, EmployeePosition, Organization, Position
from crm_core.models.outbox import OutboxMessage
from crm_core.models.product import Product
from crm_core.models.sharing import RecordShare

__all__ = [
    "ApiToken", "AuditEntry", "Contact", "Customer", "Department", "Employee", "EmployeePosition",
    "Organization", "OutboxMessage", "PeriodicRun", "Position", "Product", "RecordShare", "Role",
    "RoleDataScope", "RolePermission", "ScheduledJob", "User", "UserRole",
]
