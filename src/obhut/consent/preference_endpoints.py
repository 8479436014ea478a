"""The preference centre over HTTP. Staff issue a customer a signed link that expires; with it the customer,
who has no staff account, reads every purpose with its notice and their state, and grants, withdraws,
objects or refuses. What the customer does is logged with the customer as the actor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from obhut.access.dependencies import CurrentPrincipal
from obhut.access.rules import Permission
from obhut.audit import rules as audit
from obhut.audit.dependencies import AuditTrail, Trail, trail_for
from obhut.audit.service import Event
from obhut.consent import preferences
from obhut.consent.endpoints import KEY, Recorded, record_changes, source_of
from obhut.consent.preferences import DEFAULT_MINUTES, MAX_MINUTES, Choice, Link, PurposeView
from obhut.consent.rules import Kind
from obhut.container import container_of
from obhut.kit.web import DbSession
from obhut.vault.keyring import Keyring

router = APIRouter(tags=["preferences"])
PRIVACY_CENTRE = "/privacy/"  # the customers' web pages; the link opens them, the API answers to the token
Token = Annotated[str, Path(max_length=2500, description="The token of a preference link that staff issued")]


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(DEFAULT_MINUTES, ge=1, le=MAX_MINUTES, description="How long the link works (default 7 days)")


class LinkOut(BaseModel):
    token: str
    url: str = Field(description="The customer's privacy centre (a web page): send it to them")
    expires_at: datetime


class NoticeOut(BaseModel):
    version: str
    language: str = Field(description="The language asked for, or the other one where the notice lacks it")
    text: str


class PurposeOut(BaseModel):
    purpose: str
    title: str
    description: str
    legal_basis: str
    data_categories: list[str]
    recipients: str
    retention: str
    notice: NoticeOut | None = Field(description="The newest notice; null where none is published")
    allowed: bool = Field(description="Whether your data may be used for this purpose now")
    reason: str

    @classmethod
    def of(cls, view: PurposeView, language: str) -> PurposeOut:
        about, shown = view.purpose, view.notice
        return cls(
            purpose=about.key,
            title=about.title_de if language == "de" else about.title_en,
            description=about.description_de if language == "de" else about.description_en,
            legal_basis=about.legal_basis,
            data_categories=about.categories.split(),
            recipients=about.recipients,
            retention=about.retention,
            notice=NoticeOut(version=shown.version, language=shown.language, text=shown.text) if shown else None,
            allowed=view.decision.allowed,
            reason=view.decision.reason,
        )


class CentreOut(BaseModel):
    workspace: str
    language: str
    expires_at: datetime = Field(description="When this link stops working")
    purposes: list[PurposeOut]


class ChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(pattern=KEY)
    kind: Literal[Kind.GRANTED, Kind.WITHDRAWN, Kind.OBJECTED, Kind.DENIED]
    notice_version: str | None = Field(
        None, max_length=20, description="Default for a grant: the newest notice, as the centre shows it"
    )
    language: str = Field(preferences.LANGUAGES[0], pattern="^(de|en)$")


@router.post(
    "/workspaces/{workspace_id}/consent/customers/{customer_id}/preference-link",
    status_code=status.HTTP_201_CREATED,
    tags=["consent"],
)
def issue_link(
    workspace_id: str,
    customer_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    body: LinkIn | None = None,
) -> LinkOut:
    """A signed link to the customer's preference centre, for them alone, that expires."""
    principal.require(Permission.CUSTOMERS_WRITE)
    container = container_of(request)
    keyring = container.vault.open(session, workspace_id)
    link = preferences.issue(keyring, customer_id, (body or LinkIn()).minutes)
    verb = audit.action("api", "consent", "link-issue")
    trail.record(Event(verb, customer_id=customer_id, target=_target(link)), keyring)
    url = f"{container.settings.public_url.rstrip('/')}{PRIVACY_CENTRE}{link.token}"
    return LinkOut(token=link.token, url=url, expires_at=link.expires_at)


@router.get("/preferences/{token}")
def show_preferences(
    token: Token,
    request: Request,
    response: Response,
    session: DbSession,
    lang: Annotated[
        str | None, Query(pattern="^(de|en)$", description="Default: from Accept-Language, else de")
    ] = None,
) -> CentreOut:
    """Every purpose of the workspace with its notice, and whether your data may be used for it now."""
    keyring, link = _open(request, session, token)
    language = preferences.language_of(lang, request.headers.get("accept-language", ""))
    views = preferences.centre(session, link.workspace_id, link.customer_id, language)
    read = Event(audit.action("api", "consent", "read"), customer_id=link.customer_id, target=_target(link))
    _customer_trail(request, session, link).record(read, keyring)
    response.headers["Cache-Control"] = "no-store"  # one customer's choices: no shared cache keeps them
    return CentreOut(
        workspace=link.workspace_id,
        language=language,
        expires_at=link.expires_at,
        purposes=[PurposeOut.of(view, language) for view in views],
    )


@router.post("/preferences/{token}/events", status_code=status.HTTP_201_CREATED)
def record_choice(
    token: Token,
    body: ChoiceIn,
    request: Request,
    session: DbSession,
    sec_gpc: Annotated[str | None, Header(alias="Sec-GPC")] = None,
) -> Recorded:
    """Grants, withdraws, objects or refuses, effective at once; answered with signed receipts.
    `Sec-GPC: 1` also records an objection to every sale-or-sharing purpose."""
    keyring, link = _open(request, session, token)
    choice = Choice(body.purpose, body.kind, body.language, body.notice_version)
    change = preferences.change_for(session, link, choice, source_of(request))
    trail = _customer_trail(request, session, link)
    return record_changes(session, keyring, trail, link.customer_id, change, gpc=sec_gpc == "1")


def _open(request: Request, session: Session, token: str) -> tuple[Keyring, Link]:
    return preferences.open_link(container_of(request).vault, session, token)


def _customer_trail(request: Request, session: Session, link: Link) -> Trail:
    return trail_for(request, session, link.workspace_id, preferences.CUSTOMER, preferences.CUSTOMER)


def _target(link: Link) -> str:
    return f"preference-link:{link.link_id}"
