"""One decision point: every endpoint whose reply can hold customer data depends on the read plan, and
no reply ever holds more than the policy allows (a property test over generated roles, policies and purposes)."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from obhut.access import masks
from obhut.access.dependencies import read_plan
from obhut.access.policies import FIELD_CATEGORIES
from obhut.access.rules import CompiledPolicy, Effect, MaskStyle, ReadPlan, Rule
from obhut.api.app import create_app
from obhut.container import Container
from obhut.customers.rules import FIELDS
from obhut.customers.schemas import CustomerOut
from obhut.customers.service import CustomerService
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.vault.keyring import SubjectCipher
from tests.conftest import WORKSPACE, jane

PERSONAL = {CustomerOut}


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
    for argument in typing.get_args(annotation):
        yield from _models(argument)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every endpoint, also inside included routers (which FastAPI now nests instead of copying)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def test_every_endpoint_returning_customer_data_goes_through_the_decision_point(container: Container) -> None:
    app = create_app(container=container)
    personal = [r for r in _api_routes(app.routes) if PERSONAL & set(_models(r.response_model))]
    assert len(personal) >= 4  # create, read, update, lookup, break-glass: the check is not vacuous
    missing = [f"{sorted(r.methods)} {r.path}" for r in personal if read_plan not in set(_calls(r.dependant))]
    assert missing == []


_EFFECTS = st.sampled_from(list(Effect))
_STYLES = st.sampled_from(list(MaskStyle))
_PURPOSES = ["support", "billing", "marketing"]
_TARGETS = st.sampled_from(
    ["*", *(f"field:{f}" for f in FIELDS), *(f"category:{c}" for c in set(FIELD_CATEGORIES.values()))]
)
_RULES = st.lists(
    st.builds(Rule, st.sampled_from(["a", "b", "c"]), _TARGETS, st.sampled_from(["*", *_PURPOSES]), _EFFECTS, _STYLES),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rules=_RULES,
    role=st.sampled_from(["a", "b", "c", "nobody"]),
    purpose=st.sampled_from([None, *_PURPOSES]),
    customer=st.fixed_dictionaries(
        {},
        optional={
            "given_name": st.sampled_from(["Jane", "Ömer Can"]),
            "email": st.sampled_from(["q.x@example.com", "Z@example.invalid"]),
            "iban": st.just("DE89370400440532013000"),
            "card_number": st.just("4111111111111111"),
            "notes": st.sampled_from(["Prefers email contact", "Rückruf erbeten"]),
        },
    ),
)
def test_no_reply_holds_more_than_the_policy_allows(
    container: Container, rules: list[Rule], role: str, purpose: str | None, customer: dict[str, Any]
) -> None:
    policy = CompiledPolicy(1, rules, FIELD_CATEGORIES, _PURPOSES)
    plan = ReadPlan(role, purpose, None, 1, policy.plan(role, purpose))
    service: CustomerService = container.customers
    with unit_of_work(container.sessions) as session:
        record = service.create(session, WORKSPACE, {**jane(external_ref=new_id()), **customer})
        view = service.view(session, WORKSPACE, record.id, plan)
        masker = masks.Masker(container.vault.open(session, WORKSPACE).derived_key("mask-hash"))
    reply = CustomerOut.of(view).model_dump(mode="json")
    if purpose is None:  # a read without a purpose gets masked values only
        assert "revealed" not in reply["disclosure"].values()
    for name in FIELDS:
        decision = policy.decide(role, name, purpose) if purpose else plan.decision(name)
        value, clear = reply[name], record.values[name]
        if decision.effect is Effect.DENY or clear is None:
            assert value is None, name
        elif decision.effect is Effect.MASK:
            assert value == _json(masker(name, decision.mask, clear)), name
        else:
            assert value == _json(clear), name
        assert reply["disclosure"][name] in {"withheld", "masked"} or decision.effect is Effect.REVEAL


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items()} | ({"line2": value.get("line2")} if "line1" in value else {})
    return value


def test_a_denied_field_is_never_decrypted(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """The support agent reading for billing: identity masked, financial revealed, notes denied."""
    opened: list[str] = []
    original = SubjectCipher.open_fields

    def spy(self: SubjectCipher, fields: Sequence[str], blobs: Sequence[bytes]) -> list[bytes]:
        opened.extend(fields)
        return original(self, fields, blobs)

    service: CustomerService = container.customers
    with unit_of_work(container.sessions) as session:
        record = service.create(session, WORKSPACE, jane(notes="prefers e-mail", iban="DE89370400440532013000"))
        plan = container.policies.snapshot(session, WORKSPACE).policy.plan("support_agent", "billing")
        denied = {name for name, decision in plan.items() if decision.effect is Effect.DENY}
        monkeypatch.setattr(SubjectCipher, "open_fields", spy)
        view = service.view(session, WORKSPACE, record.id, ReadPlan("support_agent", "billing", None, 1, plan))
    assert "notes" in denied
    assert opened
    assert not denied & set(opened)
    assert CustomerOut.of(view).notes is None
