"""Vocabularies shared by the policy, the detectors and the router.

Kept in one place so a policy file naming an unknown PII kind, sensitivity or action
is rejected with the list of valid names.
"""

from __future__ import annotations

#: PII kinds the detector reports (``privacy.detect_pii``).
PII_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "credit_card",
    "iban",
    "national_id",
    "street_address",
    "postcode",
    "contact_name",
    "person_name",
)

#: Sensitivity labels of personal-context items, from least to most sensitive.
SENSITIVITIES: tuple[str, ...] = ("public", "personal", "secret")

#: What a policy rule may decide.
ACTIONS: tuple[str, ...] = ("local", "cloud", "cloud_redacted", "reject")

#: Behaviour once a budget is spent.
BUDGET_MODES: tuple[str, ...] = ("local", "reject")


def sensitivity_rank(label: str) -> int:
    """0 for public, 1 for personal, 2 for secret; unknown labels count as secret."""
    try:
        return SENSITIVITIES.index(label)
    except ValueError:
        return len(SENSITIVITIES) - 1
