"""`tradebus consume alerts`: rules over the deduplicated topics and the
status topic, delivered to sinks (log, webhook, email) and recorded on
tradebus.alerts.v1 with each sink's delivery status.

Modules: rules (the YAML rule file), evaluate (pure rule evaluation),
cooldown (key suppression), sinks (log/webhook/email), dispatch (delivery off
the consume loop), offsets (commit only what is fully handled), worker (the
run loop), cli (`register(parser)`).
"""
