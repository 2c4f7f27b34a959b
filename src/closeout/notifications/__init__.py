"""Notifications (S10): in-app inbox, e-mail in the recipient's language, signed webhooks."""
