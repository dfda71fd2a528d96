"""The `privacy` section: who is responsible for the display, for the sign next to it."""

from __future__ import annotations

from pydantic import field_validator

from edge_agent.config.base import ConfigModel, setting


class PrivacyConfig(ConfigModel):
    controller: str | None = setting(
        None,
        "Controller",
        "The business responsible for the processing, as it should appear on the sign next to"
        ' the screen (`edge-agent notice`), e.g. "Example Foods GmbH, Hauptstr. 1, Berlin".'
        " Also sent in the retained privacy message. Required by `edge-agent notice`.",
    )
    contact: str | None = setting(
        None,
        "Contact",
        "Where people ask privacy questions or exercise their rights: an e-mail or postal"
        " address. Shown on the sign and sent in the privacy message. Required by"
        " `edge-agent notice`.",
    )
    dpo_contact: str | None = setting(
        None,
        "Data protection officer",
        "Contact of the data protection officer, where the business has one; null: not shown.",
    )
    more_info: str | None = setting(
        None,
        "Full notice",
        'Where the full notice is available, e.g. a URL or "at the customer desk"; null: the'
        " sign refers people to `contact`.",
    )

    @field_validator("controller", "contact", "dpo_contact", "more_info")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        # A blank value would print an empty line on the sign; null is how to leave it unset.
        if value is not None and not value.strip():
            raise ValueError("must not be empty (null leaves it unset)")
        return value
