"""Sending alert events to their rules' channels.

A placeholder of the evaluation branch: it logs the events the pass hands over (the ones
with `notified` set, after the pass committed). The real sender (mail, webhooks, deliveries)
replaces this module; it keeps the signature `notify(events)`."""

import logging

log = logging.getLogger(__name__)


def notify(events: list) -> None:
    for event in events:
        log.info("alert %s %s of account %s: %s", event.kind, event.state, event.account_id, event.message)
