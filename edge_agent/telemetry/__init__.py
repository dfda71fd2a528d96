"""Telemetry: MQTT topics and payloads, the durable outbox, the client, Home Assistant discovery."""
