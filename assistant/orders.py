"""Which order a prior-authorization letter is about, and which payer policy governs it."""

from __future__ import annotations

from retrieval.chart_store import ChartStore
from retrieval.errors import BadInput, NotFound
from retrieval.evidence import Evidence
from retrieval.knowledge import Policy, policies
from retrieval.plans import PENDING_ORDER

ORDER_TYPES = ("ServiceRequest", "MedicationRequest")


def find_order(chart: list[Evidence], order_id: str | None) -> Evidence | None:
    """The named order, or else the newest pending order that some payer policy covers."""
    orders = [e for e in chart if e.resource_type in ORDER_TYPES]
    if order_id:
        ref = order_id if "/" in order_id else None
        for e in orders:
            if e.id == ref or e.id.split("/", 1)[1] == order_id:
                return e
        raise NotFound(f"order {order_id!r} is not in this patient's chart",
                       where="order_id", fix="pass a ServiceRequest or MedicationRequest id")
    # A missing status is not pending (see PENDING_ORDER): never picked for a letter unasked.
    covered = [e for e in orders if policy_for_evidence(e) is not None
               and e.data.get("status") in PENDING_ORDER]
    covered.sort(key=lambda e: e.date or "", reverse=True)
    return covered[0] if covered else None


def policy_for_evidence(order: Evidence) -> Policy | None:
    for p in policies():
        for c in order.codes:
            if p.applies_to_code(c.system, c.code):
                return p
    return None


def policy_for_order(
    store: ChartStore, patient_id: str, order_id: str | None
) -> tuple[Evidence, Policy]:
    """The order a prior-auth letter is about and the payer policy that covers it.

    The pipeline resolves the order once here and hands its id on, so the policy and the order the
    letter cites can never disagree.
    """
    order = find_order(store.evidence_for(patient_id), order_id)
    if order is None:
        raise BadInput(
            f"patient {patient_id!r} has no pending order that a known payer policy covers",
            where="order_id",
            fix="name the order (--order / order_id) or add its policy to the knowledge base",
        )
    policy = policy_for_evidence(order)
    if policy is None:
        raise BadInput(f"no payer policy in the knowledge base covers {order.id} ({order.title})",
                       where="order_id", fix="add the payer's policy to the knowledge base")
    return order, policy
