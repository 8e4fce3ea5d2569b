"""Notification tests and the local fakes they share (imported as `notify.fake_slack`, `notify.fake_webhook`)."""
