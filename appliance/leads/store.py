"""Leads: validation models and tenant-scoped queries. Every query filters by ``business_id``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from appliance.models import Lead

LeadStatus = Literal["new", "contacted", "qualified", "won", "lost"]
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")


def normalize_phone(raw: str) -> str:
    digits = re.sub(r"[\s\-().]", "", raw)
    if not _PHONE.match(digits):
        raise ValueError("must be a phone number of 5 to 20 digits, optionally starting with +")
    return digits


class LeadFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    source: str | None = Field(default=None, min_length=1, max_length=40)
    status: LeadStatus | None = None
    notes: str | None = Field(default=None, max_length=10_000)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalize_phone(value) if value else None


class LeadCreate(LeadFields):
    @model_validator(mode="after")
    def _something_to_reach(self) -> LeadCreate:
        if not (self.name or self.phone or self.email):
            raise ValueError("a lead needs at least one of name, phone or email")
        return self


class LeadPatch(LeadFields):
    pass


def lead_dict(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id, "name": lead.name, "phone": lead.phone, "email": lead.email, "source": lead.source,
        "status": lead.status, "notes": lead.notes,
        "created_at": lead.created_at.isoformat(), "updated_at": lead.updated_at.isoformat(),
    }


def list_leads(session: Session, *, business_id: int, q: str | None, status: str | None, page: int,
               per_page: int) -> tuple[list[dict[str, Any]], int]:
    query = select(Lead).where(Lead.business_id == business_id)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        query = query.where(or_(Lead.name.ilike(like), Lead.phone.ilike(like), Lead.email.ilike(like)))
    if status:
        query = query.where(Lead.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Lead.created_at.desc(), Lead.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return [lead_dict(lead) for lead in rows], total


def create_lead(session: Session, business_id: int, fields: LeadCreate) -> dict[str, Any]:
    lead = Lead(business_id=business_id, **fields.model_dump(exclude_none=True))
    session.add(lead)
    session.flush()
    session.refresh(lead)
    return lead_dict(lead)


def _owned(session: Session, business_id: int, lead_id: int) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.id == lead_id, Lead.business_id == business_id))


def get_lead(session: Session, business_id: int, lead_id: int) -> dict[str, Any] | None:
    lead = _owned(session, business_id, lead_id)
    return lead_dict(lead) if lead else None


def update_lead(session: Session, business_id: int, lead_id: int, patch: LeadPatch) -> dict[str, Any] | None:
    lead = _owned(session, business_id, lead_id)
    if lead is None:
        return None
    for name, value in patch.model_dump(exclude_unset=True).items():
        setattr(lead, name, value)
    session.flush()
    session.refresh(lead)
    return lead_dict(lead)


def delete_lead(session: Session, business_id: int, lead_id: int) -> bool:
    lead = _owned(session, business_id, lead_id)
    if lead is None:
        return False
    session.delete(lead)
    return True
